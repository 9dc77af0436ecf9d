/*
 * refeval: the reference evaluator — SPEC §3 read plainly, first match by
 * priority over every rule, with no tables and no cleverness. Tests use it as
 * the oracle that the compiled tables (and the datapath) must agree with, and
 * `moat explain` uses it to say why a flow gets its verdict.
 *
 * Directions: a flow destined for a workload of cluster C is judged on
 * ingress by C's rules. A flow leaving a workload of cluster C for an address
 * outside C (no workload of C) is judged on egress by C's rules whose
 * destination is an ipblock object; the egress default is allow.
 */
#ifndef MOAT_REFEVAL_H
#define MOAT_REFEVAL_H

#include "model.h"

#include <stdbool.h>
#include <stdint.h>

enum moat_dir { MOAT_DIR_INGRESS = 0, MOAT_DIR_EGRESS = 1 };

enum moat_endpoint_kind {
    MOAT_EP_WORKLOAD = 0, /* a workload of the policy */
    MOAT_EP_HOST = 1,     /* an address of the node (see opts.node) */
    MOAT_EP_OUTSIDE = 2,  /* any other address */
};

struct moat_endpoint {
    enum moat_endpoint_kind kind;
    uint32_t workload; /* index, for MOAT_EP_WORKLOAD */
    struct moat_addr addr;
};

struct moat_flow {
    struct moat_endpoint src, dst;
    uint8_t proto; /* IP protocol number; 6 tcp, 17 udp, others have no ports */
    uint16_t port; /* destination port (ignored for portless protocols) */
};

struct moat_eval_opts {
    const char *node; /* addresses of this node are `host`; NULL: of every Node document */
};

struct moat_decision {
    bool applies; /* false: no cluster judges the flow in this direction */
    enum moat_dir dir;
    uint32_t cluster;         /* index of the judging cluster */
    bool defense_off;         /* defense off: allowed, nothing recorded */
    bool is_default;          /* no rule matched: the default applied */
    enum moat_action action;  /* configured outcome */
    enum moat_action applied; /* what the datapath does (monitor: block -> alert) */
    uint32_t rule;            /* index of the winning rule, MOAT_NONE when none */
    uint32_t rule_id;         /* 0 when none */
    uint32_t candidates;      /* how many rules matched */
};

/* Identifies an address as the datapath would: workload, host or outside. */
struct moat_endpoint refeval_identify(const struct moat_policy *p, const struct moat_eval_opts *o,
                                      const struct moat_addr *a);
/* Judges `f` in direction `dir` (see above). `p` must be finished. */
void refeval_decide(const struct moat_policy *p, const struct moat_eval_opts *o,
                    const struct moat_flow *f, enum moat_dir dir, struct moat_decision *out);
/* True when object `obj` matches endpoint `e` seen from cluster `cluster`. */
bool refeval_object_matches(const struct moat_policy *p, uint32_t obj, uint32_t cluster,
                            const struct moat_endpoint *e);
/* True when `r` has (winning) precedence over `other`: smaller priority, then smaller id. */
bool rule_precedes(const struct moat_rule *r, const struct moat_rule *other);

#endif
