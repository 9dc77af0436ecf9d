/*
 * libFuzzer target: bytes -> YAML/JSON documents -> validated policy ->
 * compiled tables -> a few lookups. Whatever the input, loading must either
 * succeed or report errors, never crash, leak or read out of bounds; a policy
 * that loads must compile, and the tables must agree with the reference
 * evaluator on a handful of flows.
 */
#include "compile.h"
#include "loader.h"
#include "refeval.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_flows(const struct moat_policy *p, const struct moat_tables *t)
{
    for (size_t i = 0; i < p->nworkloads && i < 4; i++)
        for (size_t j = 0; j < p->nworkloads && j < 4; j++) {
            const struct moat_workload *a = &p->workloads[i], *b = &p->workloads[j];
            if (!a->naddrs || !b->naddrs)
                continue;
            struct moat_flow f = {.proto = 6, .port = 80};
            f.src = refeval_identify(p, NULL, &a->addrs[0]);
            f.dst = refeval_identify(p, NULL, &b->addrs[0]);
            struct moat_decision want;
            struct moat_verdict got;
            refeval_decide(p, NULL, &f, MOAT_DIR_INGRESS, &want);
            tables_decide(t, MOAT_DIR_INGRESS, &a->addrs[0], &b->addrs[0], 6, 80, &got);
            if (want.applies != got.applies ||
                (want.applies && (want.applied != got.applied || want.rule_id != got.rule_id)))
                abort(); /* the compiler disagrees with the reference evaluator */
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct moat_diags d;
    diags_init(&d);
    struct moat_policy *p = NULL;
    /* The first byte picks the format: the name decides YAML or JSON. */
    const char *name = size && (data[0] & 1) ? "fuzz.json" : "fuzz.yaml";
    if (policy_load_text(&p, (const char *)data, size, name, &d) == 0) {
        struct moat_tables *t = NULL;
        if (policy_compile(p, NULL, &t) == 0)
            check_flows(p, t);
        tables_free(t);
    }
    policy_free(p);
    diags_clear(&d);
    return 0;
}
