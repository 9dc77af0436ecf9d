/*
 * cmd_compile: `moat compile -f FILE...` — prints the tables the policy
 * compiler makes (identities, address map, policy intervals, clusters), the
 * same tables a node's datapath loads. The text form is what the golden
 * tests compare.
 */
#include "cli.h"
#include "compile.h"
#include "model.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_command *self(void)
{
    return cli_find("compile");
}

static const char *pclass_name(enum moat_pclass pc)
{
    return pc == MOAT_PCLASS_TCP ? "tcp" : pc == MOAT_PCLASS_UDP ? "udp" : "other";
}

static const char *ident_kind_name(enum moat_ident_kind k)
{
    static const char *const names[] = {"world", "workload", "host", "outside"};
    return names[k];
}

static void identity_objects(const struct moat_policy *p, const struct moat_tables *t, uint32_t id,
                             char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (uint32_t o = 0; o < p->nobjects && len < n; o++)
        if (tables_identity_has(t, id, o))
            len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? "," : "", p->objects[o].name);
}

static void print_identities(const struct moat_policy *p, const struct moat_tables *t)
{
    printf("identities\n");
    for (uint32_t id = 1; id < tables_identity_count(t); id++) {
        struct moat_ident_info info = tables_identity(t, id);
        char objs[1024];
        identity_objects(p, t, id, objs, sizeof(objs));
        printf("  %u %s", id, ident_kind_name(info.kind));
        if (info.kind == MOAT_IDENT_WORKLOAD)
            printf(" cluster=%s", p->clusters[info.cluster].name);
        printf(" objects=[%s]\n", objs);
    }
}

static void print_addresses(const struct moat_tables *t)
{
    printf("addresses\n");
    for (size_t i = 0; i < tables_addr_count(t); i++) {
        struct moat_addr_entry e = tables_addr_entry(t, i);
        char buf[MOAT_ADDR_STRLEN + 8];
        prefix_format(&e.prefix, buf, sizeof(buf));
        printf("  %s -> %u\n", buf, e.identity);
    }
}

static void peer_name(uint32_t peer, char *buf, size_t n)
{
    if (peer == MOAT_ID_ANY)
        snprintf(buf, n, "any");
    else
        snprintf(buf, n, "%u", peer);
}

static int print_entry(void *ctx, const struct moat_policy_entry *e)
{
    (void)ctx;
    char peer[16];
    peer_name(e->peer, peer, sizeof(peer));
    printf("  %s %s subject=%u peer=%s ports=%u/%u -> %s rule=%u priority=%u\n",
           e->dir == MOAT_DIR_INGRESS ? "ingress" : "egress", pclass_name(e->pclass), e->subject,
           peer, e->port_lo, e->port_hi, action_name(e->action), e->rule_id, e->priority);
    return 0;
}

static void print_text(const struct moat_policy *p, const struct moat_tables *t)
{
    printf("# %zu identities, %zu address entries, %zu policy intervals (%zu LPM entries)\n",
           tables_identity_count(t) - 1, tables_addr_count(t), tables_policy_count(t),
           tables_lpm_entry_count(t));
    printf("clusters\n");
    for (size_t c = 0; c < p->nclusters; c++)
        printf("  %s defense=%s mode=%s default_action=%s\n", p->clusters[c].name,
               p->clusters[c].defense ? "on" : "off", mode_name(p->clusters[c].mode),
               action_name(p->clusters[c].default_action));
    print_identities(p, t);
    print_addresses(t);
    printf("policy\n");
    tables_policy_foreach(t, print_entry, NULL);
}

static int json_entry(void *ctx, const struct moat_policy_entry *e)
{
    char peer[16];
    peer_name(e->peer, peer, sizeof(peer));
    return json_array_append_new(
        ctx,
        json_pack("{s:s,s:s,s:I,s:s,s:i,s:i,s:s,s:I,s:i}", "direction",
                  e->dir == MOAT_DIR_INGRESS ? "ingress" : "egress", "class",
                  pclass_name(e->pclass), "subject", (json_int_t)e->subject, "peer", peer,
                  "port_lo", e->port_lo, "port_hi", e->port_hi, "action", action_name(e->action),
                  "rule", (json_int_t)e->rule_id, "priority", e->priority));
}

static int print_json(const struct moat_policy *p, const struct moat_tables *t)
{
    json_t *ids = json_array(), *addrs = json_array(), *policy = json_array();
    for (uint32_t id = 1; id < tables_identity_count(t); id++) {
        struct moat_ident_info info = tables_identity(t, id);
        json_t *objs = json_array();
        for (uint32_t o = 0; o < p->nobjects; o++)
            if (tables_identity_has(t, id, o))
                json_array_append_new(objs, json_string(p->objects[o].name));
        json_array_append_new(
            ids, json_pack("{s:I,s:s,s:s*,s:o}", "id", (json_int_t)id, "kind",
                           ident_kind_name(info.kind), "cluster",
                           info.kind == MOAT_IDENT_WORKLOAD ? p->clusters[info.cluster].name : NULL,
                           "objects", objs));
    }
    for (size_t i = 0; i < tables_addr_count(t); i++) {
        struct moat_addr_entry e = tables_addr_entry(t, i);
        char buf[MOAT_ADDR_STRLEN + 8];
        prefix_format(&e.prefix, buf, sizeof(buf));
        json_array_append_new(
            addrs, json_pack("{s:s,s:I}", "prefix", buf, "identity", (json_int_t)e.identity));
    }
    tables_policy_foreach(t, json_entry, policy);
    json_t *j = json_pack("{s:o,s:o,s:o}", "identities", ids, "addresses", addrs, "policy", policy);
    return cli_print_json(j);
}

int cmd_compile(int argc, char **argv)
{
    static const struct option longopts[] = {{"file", required_argument, NULL, 'f'},
                                             {"node", required_argument, NULL, 'n'},
                                             {"output", required_argument, NULL, 'o'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    struct cli_files files = {0};
    enum cli_format format = CLI_FORMAT_TABLE;
    const char *node = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":f:i:o:h", longopts, NULL)) != -1) {
        if ((c == 'f' || c == 'i') && cli_files_add(&files, optarg) < 0)
            return cli_usage_error(self(), "too many files");
        else if (c == 'n')
            node = optarg;
        else if (c == 'o' && cli_parse_format(optarg, &format) < 0)
            return cli_usage_error(self(), "-o: \"%s\" is not table or json", optarg);
        else if (c == 'h')
            return cli_print_help(stdout, self()), MOAT_EXIT_OK;
        else if (c == ':' || c == '?')
            return cli_usage_error(self(), "%s: %s", argv[optind - 1],
                                   c == ':' ? "needs a value" : "unknown option");
    }
    if (optind < argc)
        return cli_usage_error(self(), "unexpected argument \"%s\"", argv[optind]);
    if (files.count == 0)
        return cli_usage_error(self(), "-f: at least one file is required");
    struct moat_policy *p;
    int rc = cli_load_policy(files.items, files.count, &p);
    if (rc)
        return rc;
    struct moat_eval_opts o = {.node = node};
    struct moat_tables *t;
    if (policy_compile(p, &o, &t) < 0) {
        fprintf(stderr, "moat: compile: out of memory\n");
        policy_free(p);
        return MOAT_EXIT_ERROR;
    }
    if (format == CLI_FORMAT_JSON)
        rc = print_json(p, t);
    else
        print_text(p, t);
    tables_free(t);
    policy_free(p);
    return rc;
}
