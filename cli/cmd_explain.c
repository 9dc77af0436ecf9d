/*
 * cmd_explain: `moat explain` — the decision for one flow, from files, using
 * the reference evaluator (SPEC §3 read plainly), with the reason.
 *
 * Which direction speaks: a flow to a workload is judged on ingress by the
 * destination's cluster. A flow from a workload to an address outside its
 * cluster is also judged on egress (ipblock rules). When both apply, the
 * egress verdict is shown if it blocks (the packet never leaves), otherwise
 * the ingress one; the JSON form carries both.
 *
 * Without -f the policy is the server's (policy_fetch.c: clusters, objects,
 * rules and reported workloads), judged by the same code as files.
 */
#include "apicmd.h"
#include "loader.h"
#include "refeval.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct explain_args {
    struct cli_files files;
    const char *from, *to, *node;
    const char *cluster, *server, *token; /* without -f: the server's policy */
    long port;
    int proto;
    size_t nfiles_inventory; /* how many of `files` came from -i */
    enum cli_format format;
};

static const struct cli_command *self(void)
{
    return cli_find("explain");
}

static int parse_proto(const char *s)
{
    if (strcmp(s, "tcp") == 0)
        return MOAT_PROTO_TCP;
    if (strcmp(s, "udp") == 0)
        return MOAT_PROTO_UDP;
    if (strcmp(s, "icmp") == 0)
        return 1;
    char *end;
    long v = strtol(s, &end, 10);
    return (*s && !*end && v >= 0 && v <= 255) ? (int)v : -1;
}

static int parse_args(int argc, char **argv, struct explain_args *a)
{
    static const struct option longopts[] = {{"file", required_argument, NULL, 'f'},
                                             {"inventory", required_argument, NULL, 'i'},
                                             {"from", required_argument, NULL, 'F'},
                                             {"to", required_argument, NULL, 'T'},
                                             {"port", required_argument, NULL, 'p'},
                                             {"proto", required_argument, NULL, 'P'},
                                             {"node", required_argument, NULL, 'n'},
                                             {"output", required_argument, NULL, 'o'},
                                             {"cluster", required_argument, NULL, 'C'},
                                             {"server", required_argument, NULL, 'S'},
                                             {"token", required_argument, NULL, 'K'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof(*a));
    a->port = -1;
    a->proto = MOAT_PROTO_TCP;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":f:i:o:h", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'i':
            a->nfiles_inventory++;
            /* fall through */
        case 'f':
            if (cli_files_add(&a->files, optarg) < 0)
                return cli_usage_error(self(), "too many files");
            break;
        case 'F':
            a->from = optarg;
            break;
        case 'T':
            a->to = optarg;
            break;
        case 'n':
            a->node = optarg;
            break;
        case 'C':
            a->cluster = optarg;
            break;
        case 'S':
            a->server = optarg;
            break;
        case 'K':
            a->token = optarg;
            break;
        case 'p':
            a->port = strtol(optarg, &end, 10);
            if (!*optarg || *end || a->port < 0 || a->port > 65535)
                return cli_usage_error(self(), "--port: \"%s\" is not a port 0..65535", optarg);
            break;
        case 'P':
            a->proto = parse_proto(optarg);
            if (a->proto < 0)
                return cli_usage_error(self(), "--proto: \"%s\" is not tcp, udp, icmp or 0..255",
                                       optarg);
            break;
        case 'o':
            if (cli_parse_format(optarg, &a->format) < 0)
                return cli_usage_error(self(), "-o: \"%s\" is not table or json", optarg);
            break;
        case 'h':
            cli_print_help(stdout, self());
            return -1;
        case ':':
            return cli_usage_error(self(), "%s: needs a value", argv[optind - 1]);
        default:
            return cli_usage_error(self(), "%s: unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error(self(), "unexpected argument \"%s\"", argv[optind]);
    if (a->files.count == 0 && a->nfiles_inventory)
        return cli_usage_error(self(), "-i: inventory files go with -f policy files");
    if (a->files.count && (a->cluster || a->server || a->token))
        return cli_usage_error(self(), "--cluster, --server and --token are for the server's "
                                       "policy: leave out -f");
    if (!a->from || !a->to)
        return cli_usage_error(self(), "%s: required", !a->from ? "--from" : "--to");
    bool ports = a->proto == MOAT_PROTO_TCP || a->proto == MOAT_PROTO_UDP;
    if (ports && a->port < 1)
        return cli_usage_error(self(), "--port: required for tcp and udp (1..65535)");
    if (!ports)
        a->port = 0;
    return 0;
}

/* Matches NAME, NAMESPACE/NAME or CLUSTER/NAMESPACE/NAME. */
static bool workload_named(const struct moat_policy *p, const struct moat_workload *w,
                           const char *text)
{
    char full[512];
    snprintf(full, sizeof(full), "%s/%s/%s", p->clusters[w->cluster].name, w->namespace, w->name);
    size_t fl = strlen(full), tl = strlen(text);
    return tl <= fl && strcmp(full + fl - tl, text) == 0 && (tl == fl || full[fl - tl - 1] == '/');
}

static int resolve_host(const struct moat_policy *p, const char *node, struct moat_endpoint *e)
{
    e->kind = MOAT_EP_HOST;
    for (size_t i = 0; i < p->nnodes; i++)
        if ((!node || strcmp(node, p->nodes[i].name) == 0) && p->nodes[i].naddrs) {
            e->addr = p->nodes[i].addrs[0];
            return 0;
        }
    return 0;
}

static int resolve_endpoint(const struct moat_policy *p, const struct moat_eval_opts *o,
                            const char *opt, const char *text, struct moat_endpoint *e)
{
    memset(e, 0, sizeof(*e));
    e->workload = MOAT_NONE;
    struct moat_addr a;
    if (addr_parse(text, &a) == 0) {
        *e = refeval_identify(p, o, &a);
        return 0;
    }
    if (strcmp(text, "host") == 0)
        return resolve_host(p, o->node, e);
    size_t found = 0;
    for (size_t i = 0; i < p->nworkloads; i++) {
        if (!workload_named(p, &p->workloads[i], text))
            continue;
        if (found++) {
            fprintf(stderr,
                    "moat: explain: %s: \"%s\" names several workloads; write "
                    "CLUSTER/NAMESPACE/NAME\n",
                    opt, text);
            return MOAT_EXIT_INVALID;
        }
        e->kind = MOAT_EP_WORKLOAD;
        e->workload = (uint32_t)i;
        if (p->workloads[i].naddrs)
            e->addr = p->workloads[i].addrs[0];
    }
    if (!found) {
        fprintf(stderr, "moat: explain: %s: no workload named \"%s\" and not an IP address\n", opt,
                text);
        return MOAT_EXIT_INVALID;
    }
    return 0;
}

static void describe_endpoint(const struct moat_policy *p, const struct moat_endpoint *e, char *buf,
                              size_t n)
{
    char addr[MOAT_ADDR_STRLEN];
    addr_format(&e->addr, addr, sizeof(addr));
    if (e->kind == MOAT_EP_WORKLOAD) {
        const struct moat_workload *w = &p->workloads[e->workload];
        snprintf(buf, n, "workload %s/%s/%s", p->clusters[w->cluster].name, w->namespace, w->name);
    } else if (e->kind == MOAT_EP_HOST) {
        snprintf(buf, n, "host %s", addr);
    } else {
        snprintf(buf, n, "address %s", addr);
    }
}

static void reason_of(const struct moat_policy *p, const struct moat_decision *d, char *buf,
                      size_t n)
{
    if (!d->applies) {
        snprintf(buf, n,
                 "not judged: the destination is not a workload and no egress rule "
                 "applies; the packet passes");
        return;
    }
    const struct moat_cluster *c = &p->clusters[d->cluster];
    const char *dir = d->dir == MOAT_DIR_INGRESS ? "ingress" : "egress";
    if (d->defense_off) {
        snprintf(buf, n, "defense is off in cluster %s: allowed, nothing recorded", c->name);
        return;
    }
    int len;
    if (d->rule != MOAT_NONE) {
        const struct moat_rule *r = &p->rules[d->rule];
        len = snprintf(buf, n, "%s: rule %u \"%s\" (priority %u, %s) wins among %u matching rule%s",
                       dir, r->id, r->name, r->priority, rule_type_name(r->type), d->candidates,
                       d->candidates == 1 ? "" : "s");
    } else if (d->dir == MOAT_DIR_INGRESS) {
        len = snprintf(buf, n, "ingress: no rule matches; cluster %s default_action is %s", c->name,
                       action_name(c->default_action));
    } else {
        len = snprintf(buf, n, "egress: no rule matches; egress default is allow");
    }
    if (d->applied != d->action && len > 0 && (size_t)len < n)
        snprintf(buf + len, n - (size_t)len, "; monitor mode: would block, applied as alert");
}

/* The decision to show (see the top of the file). */
static const struct moat_decision *pick(const struct moat_decision *in,
                                        const struct moat_decision *out)
{
    if (out->applies && out->applied == MOAT_ACTION_BLOCK)
        return out;
    return in->applies ? in : out;
}

static json_t *decision_json(const struct moat_policy *p, const struct moat_decision *d)
{
    char reason[512];
    reason_of(p, d, reason, sizeof(reason));
    json_t *rule = json_null();
    if (d->rule != MOAT_NONE)
        rule = json_pack("{s:I,s:s}", "id", (json_int_t)p->rules[d->rule].id, "name",
                         p->rules[d->rule].name);
    return json_pack("{s:s,s:s,s:o,s:b,s:s,s:s,s:s*}", "action", action_name(d->action),
                     "applied_action", action_name(d->applied), "rule", rule, "default",
                     d->applies && !d->defense_off && d->is_default, "reason", reason, "direction",
                     d->dir == MOAT_DIR_INGRESS ? "ingress" : "egress", "cluster",
                     d->applies ? p->clusters[d->cluster].name : NULL);
}

static int print_json(const struct moat_policy *p, const struct moat_decision *in,
                      const struct moat_decision *out)
{
    const struct moat_decision *d = pick(in, out);
    json_t *j = decision_json(p, d);
    if (j && in->applies && out->applies)
        json_object_set_new(j, d == in ? "egress" : "ingress",
                            decision_json(p, d == in ? out : in));
    return cli_print_json(j);
}

static void print_table(const struct moat_policy *p, const struct moat_flow *f,
                        const struct moat_decision *in, const struct moat_decision *out)
{
    const struct moat_decision *d = pick(in, out);
    char src[300], dst[300], reason[512];
    describe_endpoint(p, &f->src, src, sizeof(src));
    describe_endpoint(p, &f->dst, dst, sizeof(dst));
    reason_of(p, d, reason, sizeof(reason));
    printf("from            %s\n", src);
    const char *proto = f->proto == MOAT_PROTO_TCP   ? "tcp"
                        : f->proto == MOAT_PROTO_UDP ? "udp"
                        : f->proto == 1              ? "icmp"
                                                     : NULL;
    if (proto)
        printf("to              %s port %u %s\n", dst, f->port, proto);
    else
        printf("to              %s protocol %u\n", dst, f->proto);
    printf("action          %s\n", action_name(d->action));
    printf("applied_action  %s\n", action_name(d->applied));
    if (d->rule != MOAT_NONE)
        printf("rule            %u %s\n", p->rules[d->rule].id, p->rules[d->rule].name);
    else
        printf("rule            -\n");
    printf("default         %s\n", d->applies && !d->defense_off && d->is_default ? "yes" : "no");
    printf("reason          %s\n", reason);
    if (in->applies && out->applies) {
        const struct moat_decision *other = d == in ? out : in;
        reason_of(p, other, reason, sizeof(reason));
        printf("also            %s -> %s\n", reason, action_name(other->applied));
    }
}

/* The node of endpoint e when it is a workload placed on one, else NULL. */
static const char *node_of(const struct moat_policy *p, const struct moat_endpoint *e)
{
    if (e->kind != MOAT_EP_WORKLOAD || e->workload == MOAT_NONE)
        return NULL;
    const char *n = p->workloads[e->workload].node;
    return n && *n ? n : NULL;
}

/*
 * Judges the flow of `a` in `p` and prints the decision; returns an exit code.
 * Without --node, each direction is judged where the datapath judges it:
 * ingress on the destination workload's node, egress on the source's, so
 * that another node's address is not `host` there (as on the real node).
 */
static int explain_policy(const struct explain_args *a, const struct moat_policy *p)
{
    struct moat_eval_opts o = {.node = a->node};
    struct moat_flow f = {.proto = (uint8_t)a->proto, .port = (uint16_t)a->port};
    if (a->node && policy_find_node(p, a->node) == MOAT_NONE && a->node[0])
        fprintf(stderr, "moat: explain: note: --node %s: no Node document names it\n", a->node);
    int rc = resolve_endpoint(p, &o, "--from", a->from, &f.src);
    if (!rc)
        rc = resolve_endpoint(p, &o, "--to", a->to, &f.dst);
    if (rc)
        return rc;
    struct moat_eval_opts oin = o, oout = o;
    struct moat_flow fin = f, fout = f;
    if (!a->node && node_of(p, &f.dst)) { /* the source as the destination's node sees it */
        oin.node = node_of(p, &f.dst);
        rc = resolve_endpoint(p, &oin, "--from", a->from, &fin.src);
    }
    if (!rc && !a->node && node_of(p, &f.src)) {
        oout.node = node_of(p, &f.src);
        rc = resolve_endpoint(p, &oout, "--to", a->to, &fout.dst);
    }
    if (rc)
        return rc;
    struct moat_decision in, out;
    refeval_decide(p, &oin, &fin, MOAT_DIR_INGRESS, &in);
    refeval_decide(p, &oout, &fout, MOAT_DIR_EGRESS, &out);
    if (a->format == CLI_FORMAT_JSON)
        return print_json(p, &in, &out);
    print_table(p, &f, &in, &out);
    return MOAT_EXIT_OK;
}

/* The server's policy (every cluster, or --cluster's). */
static int load_from_server(const struct explain_args *a, struct moat_policy **p)
{
    struct api_client *c;
    int rc = api_client_new(a->server, a->token, &c);
    if (!rc)
        rc = api_fetch_policy(c, "explain", a->cluster, p);
    api_client_free(c);
    return rc;
}

int cmd_explain(int argc, char **argv)
{
    struct explain_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc < 0 ? MOAT_EXIT_OK : rc;
    struct moat_policy *p;
    rc = a.files.count ? cli_load_policy(a.files.items, a.files.count, &p)
                       : load_from_server(&a, &p);
    if (rc)
        return rc;
    rc = explain_policy(&a, p);
    policy_free(p);
    return rc;
}
