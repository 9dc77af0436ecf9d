/* refeval: the plain reading of SPEC §3, used as the oracle (see refeval.h). */
#include "refeval.h"

#include <string.h>

static bool node_owns(const struct moat_node *n, const struct moat_addr *a)
{
    for (size_t i = 0; i < n->naddrs; i++)
        if (addr_cmp(&n->addrs[i], a) == 0)
            return true;
    return false;
}

struct moat_endpoint refeval_identify(const struct moat_policy *p, const struct moat_eval_opts *o,
                                      const struct moat_addr *a)
{
    struct moat_endpoint e = {.kind = MOAT_EP_OUTSIDE, .workload = MOAT_NONE, .addr = *a};
    for (size_t i = 0; i < p->nworkloads; i++)
        for (size_t j = 0; j < p->workloads[i].naddrs; j++)
            if (addr_cmp(&p->workloads[i].addrs[j], a) == 0) {
                e.kind = MOAT_EP_WORKLOAD;
                e.workload = (uint32_t)i;
                return e;
            }
    for (size_t i = 0; i < p->nnodes; i++) {
        const struct moat_node *n = &p->nodes[i];
        if ((!o || !o->node || strcmp(o->node, n->name) == 0) && node_owns(n, a)) {
            e.kind = MOAT_EP_HOST;
            return e;
        }
    }
    return e;
}

/* A workload of cluster `cluster` is itself; anything else is an address. */
static bool is_member(const struct moat_policy *p, const struct moat_endpoint *e, uint32_t cluster)
{
    return e->kind == MOAT_EP_WORKLOAD && p->workloads[e->workload].cluster == cluster;
}

bool refeval_object_matches(const struct moat_policy *p, uint32_t obj, uint32_t cluster,
                            const struct moat_endpoint *e)
{
    const struct moat_object *o = &p->objects[obj];
    const char *cname = p->clusters[cluster].name;
    if (!object_in_cluster(o, cname))
        return false;
    switch (o->kind) {
    case MOAT_OBJ_ANY:
        return true;
    case MOAT_OBJ_HOST:
        return e->kind == MOAT_EP_HOST;
    case MOAT_OBJ_IPBLOCK:
        return !is_member(p, e, cluster) && object_covers_address(o, &e->addr);
    case MOAT_OBJ_SELECTOR:
        return is_member(p, e, cluster) &&
               object_matches_workload(o, &p->workloads[e->workload], cname);
    }
    return false;
}

bool rule_precedes(const struct moat_rule *r, const struct moat_rule *other)
{
    return !other || r->priority < other->priority ||
           (r->priority == other->priority && r->id < other->id);
}

static bool proto_matches(enum moat_proto rule, uint8_t proto)
{
    return rule == MOAT_PROTO_ANY || (uint8_t)rule == proto;
}

static bool has_ports(uint8_t proto)
{
    return proto == MOAT_PROTO_TCP || proto == MOAT_PROTO_UDP;
}

static bool dest_port_matches(const struct moat_dest *d, const struct moat_flow *f)
{
    if (!has_ports(f->proto))
        return d->all_ports;
    for (size_t i = 0; i < d->nports; i++)
        if (f->port >= d->ports[i].lo && f->port <= d->ports[i].hi)
            return true;
    return false;
}

/* Ingress: destination objects pick the destination workload. Egress: ipblocks only. */
static bool rule_dest_matches(const struct moat_policy *p, const struct moat_rule *r,
                              const struct moat_flow *f, enum moat_dir dir)
{
    for (size_t i = 0; i < r->ndests; i++) {
        const struct moat_dest *d = &r->dests[i];
        bool ipblock = p->objects[d->object].kind == MOAT_OBJ_IPBLOCK;
        if (ipblock != (dir == MOAT_DIR_EGRESS))
            continue;
        if (refeval_object_matches(p, d->object, r->cluster, &f->dst) && dest_port_matches(d, f))
            return true;
    }
    return false;
}

static void finish_decision(const struct moat_policy *p, struct moat_decision *out)
{
    const struct moat_cluster *c = &p->clusters[out->cluster];
    if (out->rule != MOAT_NONE) {
        out->action = p->rules[out->rule].action;
        out->rule_id = p->rules[out->rule].id;
    } else {
        out->is_default = true;
        out->action = out->dir == MOAT_DIR_INGRESS ? c->default_action : MOAT_ACTION_ALLOW;
    }
    out->applied = out->action;
    if (c->mode == MOAT_MODE_MONITOR && out->action == MOAT_ACTION_BLOCK)
        out->applied = MOAT_ACTION_ALERT;
}

void refeval_decide(const struct moat_policy *p, const struct moat_eval_opts *o,
                    const struct moat_flow *f, enum moat_dir dir, struct moat_decision *out)
{
    (void)o;
    memset(out, 0, sizeof(*out));
    out->dir = dir;
    out->rule = MOAT_NONE;
    out->action = out->applied = MOAT_ACTION_ALLOW;
    const struct moat_endpoint *subject = dir == MOAT_DIR_INGRESS ? &f->dst : &f->src;
    if (subject->kind != MOAT_EP_WORKLOAD)
        return;
    out->cluster = p->workloads[subject->workload].cluster;
    if (dir == MOAT_DIR_EGRESS && is_member(p, &f->dst, out->cluster))
        return; /* inside the cluster: judged on ingress only */
    out->applies = true;
    if (!p->clusters[out->cluster].defense) {
        out->defense_off = true;
        return;
    }
    const struct moat_endpoint *peer = dir == MOAT_DIR_INGRESS ? &f->src : &f->dst;
    const struct moat_rule *best = NULL;
    for (size_t i = 0; i < p->nrules; i++) {
        const struct moat_rule *r = &p->rules[i];
        if (!r->enabled || r->cluster != out->cluster || !proto_matches(r->proto, f->proto))
            continue;
        bool src_ok = dir == MOAT_DIR_INGRESS
                          ? refeval_object_matches(p, r->source, r->cluster, peer)
                          : refeval_object_matches(p, r->source, r->cluster, subject);
        if (!src_ok || !rule_dest_matches(p, r, f, dir))
            continue;
        out->candidates++;
        if (rule_precedes(r, best)) {
            best = r;
            out->rule = (uint32_t)i;
        }
    }
    finish_decision(p, out);
}
