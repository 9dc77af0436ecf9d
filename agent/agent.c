/* agent: moatd's standalone node logic (see agent.h). */
#include "agent.h"
#include "cluster_det.h"
#include "doc.h"
#include "hold.h"
#include "loader.h"
#include "mem.h"
#include "polstate.h"
#include "remote.h"
#include "remote_live.h"
#include "sync.h"
#include "wsource.h"

#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void agent_log(const char *level, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "moatd: %s: ", level);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* The files, and the discovered workloads when a source reported some. */
static int load_files(const struct moat_agent *a, struct moat_policy **out)
{
    const struct agent_config *cfg = &a->cfg;
    struct policy_source src[32];
    size_t n = 0;
    for (size_t i = 0; i < cfg->nfiles && n < 31; i++)
        src[n++] = (struct policy_source){.path = cfg->files[i]};
    char *text = a->discovered ? json_dumps(a->discovered, JSON_COMPACT) : NULL;
    if (a->discovered && !text)
        return -ENOMEM;
    if (text)
        src[n++] = (struct policy_source){
            .text = text, .len = strlen(text), .name = "discovered workloads"};
    struct moat_diags d;
    diags_init(&d);
    int err = policy_load_sources(out, src, n, &d);
    for (size_t i = 0; i < d.count; i++)
        agent_log("error", "%s", d.items[i].text);
    diags_clear(&d);
    free(text);
    return err;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------- events -> alerts ---------- */

static const struct moat_workload *workload_at(const struct moat_policy *p,
                                               const struct moat_addr *a)
{
    struct moat_endpoint e = refeval_identify(p, NULL, a);
    return e.kind == MOAT_EP_WORKLOAD ? &p->workloads[e.workload] : NULL;
}

static const char *rule_name_of(const struct moat_policy *p, uint32_t id)
{
    for (size_t i = 0; id && i < p->nrules; i++)
        if (p->rules[i].id == id)
            return p->rules[i].name;
    return NULL;
}

/* Kernel event time (monotonic) to wall-clock seconds. */
static time_t wall_time(uint64_t ts_ns)
{
    struct timespec mono, real;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    int64_t now_mono = (int64_t)mono.tv_sec * 1000000000 + mono.tv_nsec;
    int64_t age = now_mono - (int64_t)ts_ns;
    return real.tv_sec - (time_t)(age > 0 ? age / 1000000000 : 0);
}

/* What a spoofing event's drop reason means, for the alert's details. */
static const char *spoofing_details(uint32_t reason)
{
    switch (reason) {
    case MOAT_DROP_ARP_SPOOF:
        return "ARP claiming an address that is not the workload's";
    case MOAT_DROP_ND_SPOOF:
        return "neighbour discovery claiming an address that is not the workload's";
    case MOAT_DROP_ROUTER:
        return "router advertisement or redirect from a workload";
    case MOAT_DROP_DHCP_SERVER:
        return "DHCP server message from a workload";
    case MOAT_DROP_LINK_LOCAL:
        return "link-local or unspecified source outside neighbour discovery and DHCP";
    case MOAT_DROP_MAC_SPOOF:
        return "frame from a MAC address that is not the workload's";
    default:
        return "packet left a workload with a source address that is not its own";
    }
}

/* Counts a hit in the alerts, and in the window for the server (cluster mode). */
static int record_hit(struct moat_agent *a, const struct alert_hit *h)
{
    int err;
    alert_agg_add(a->alerts, h, &err);
    if (!err && a->window) {
        alert_agg_add(a->window, h, &err);
        if (!err && a->window_started == 0)
            a->window_started = mono_now();
    }
    return err;
}

static enum alert_kind alert_kind_of(uint32_t ev_kind)
{
    switch (ev_kind) {
    case MOAT_EV_SPOOFING:
        return ALERT_SPOOFING;
    case MOAT_EV_BRUTE_FORCE:
        return ALERT_BRUTE_FORCE;
    case MOAT_EV_PORT_SCAN:
        return ALERT_PORT_SCAN;
    case MOAT_EV_DNS_HIJACK:
        return ALERT_DNS_HIJACK;
    case MOAT_EV_THREAT:
        return ALERT_THREAT_INTEL;
    default:
        return ALERT_POLICY;
    }
}

static const char *dns_details(uint32_t reason)
{
    switch (reason) {
    case MOAT_DROP_DNS_RESOLVER:
        return "a resolver that is not approved";
    case MOAT_DROP_DNS_NO_QUERY:
        return "no such query";
    case MOAT_DROP_DNS_QUESTION:
        return "question mismatch";
    case MOAT_DROP_DNS_MALFORMED:
        return "malformed DNS message";
    default:
        return "DNS";
    }
}

/*
 * A detection's event as a hit (kind, count, details). Events the datapath
 * made when a burst or scan went quiet carry no action: the cluster's settings
 * say it.
 */
static void detection_hit(const struct moat_agent *a, const struct moat_event *e,
                          struct alert_hit *h, char *details, size_t n)
{
    const struct moat_policy *p = a->policy;
    const struct moat_detections *d = &p->clusters[e->cluster].det;
    h->count = e->count ? e->count : 1;
    h->kind = alert_kind_of(e->kind);
    if (e->kind == MOAT_EV_QUARANTINE)
        h->kind =
            (e->aux & MOAT_Q_REASON_MASK) == MOAT_Q_PORT_SCAN ? ALERT_PORT_SCAN : ALERT_BRUTE_FORCE;
    if (!e->applied) {
        bool block =
            (e->kind == MOAT_EV_BRUTE_FORCE && d->brute_force.c.action == MOAT_ACTION_BLOCK) ||
            (e->kind == MOAT_EV_PORT_SCAN && d->port_scan.c.action == MOAT_ACTION_BLOCK);
        h->configured = h->applied = block ? MOAT_ACTION_BLOCK : MOAT_ACTION_ALERT;
    }
    switch (e->kind) {
    case MOAT_EV_BRUTE_FORCE:
        snprintf(details, n, "more than %u new connections within %u s to port %u%s",
                 d->brute_force.threshold, d->brute_force.window, e->dport,
                 h->applied == MOAT_ACTION_BLOCK ? "; the source is quarantined" : "");
        break;
    case MOAT_EV_PORT_SCAN:
        h->dst.workload = NULL; /* a scan is of many: the pair is only the latest */
        memset(&h->dst.addr, 0, sizeof(h->dst.addr));
        if (addr_is_v4(&h->src.addr))
            addr_parse("0.0.0.0", &h->dst.addr);
        h->dst.port = 0;
        snprintf(details, n, "more than %u distinct (workload, port) pairs within %u s%s",
                 d->port_scan.threshold, d->port_scan.window,
                 h->applied == MOAT_ACTION_BLOCK ? "; the source is quarantined" : "");
        break;
    case MOAT_EV_QUARANTINE:
        h->dst.port = 0; /* apart from the alert of the detection itself */
        snprintf(details, n, "connection attempts from a source quarantined for %s dropped",
                 (e->aux & MOAT_Q_REASON_MASK) == MOAT_Q_PORT_SCAN ? "a port scan" : "brute force");
        break;
    case MOAT_EV_DNS_HIJACK:
        if (e->aux)
            h->dst.port = 0; /* an answer: to the client, whichever port it asked from */
        snprintf(details, n, "%s: %s", e->aux ? "DNS answer" : "DNS query", dns_details(e->reason));
        break;
    case MOAT_EV_THREAT: {
        char addr[MOAT_ADDR_STRLEN];
        struct moat_prefix pf = {.len = (uint8_t)e->count};
        memcpy(pf.addr.b, e->waddr, 16);
        prefix_format(&pf, addr, sizeof(addr));
        h->count = 1;
        const struct moat_threatlist *tl =
            e->cluster < a->nthreats ? a->threats[e->cluster].list : NULL;
        const char *label = tl && e->aux < tl->nlabels ? tl->labels[e->aux] : "listed";
        snprintf(details, n, "%s is listed in the threat list as \"%s\" (%s)",
                 e->dir == MOAT_ABI_DIR_INGRESS ? "the source" : "the destination", label, addr);
        break;
    }
    default:
        break;
    }
    h->details = details;
}

/*
 * Events of one source the datapath's rate limit held back: one alert per
 * (cluster, kind, source, applied action), port 0, no destination, counting them.
 */
static void add_held(struct moat_agent *a, const struct alert_hit *like, const uint8_t *src,
                     uint64_t held)
{
    static const char why[] =
        "events from this source not reported one by one: the datapath's rate limit held them "
        "back (counted here)";
    struct alert_hit h = *like;
    h.rule_id = 0;
    h.rule_name = NULL;
    h.count = held;
    h.details = why;
    memset(&h.dst, 0, sizeof(h.dst));
    memcpy(h.src.addr.b, src, 16);
    h.src.port = 0;
    h.src.workload = workload_at(a->policy, &h.src.addr);
    static const uint8_t zero[16];
    if (!memcmp(src, zero, 16))
        addr_parse("0.0.0.0", &h.src.addr); /* the node-wide limit: many sources */
    if (addr_is_v4(&h.src.addr))
        addr_parse("0.0.0.0", &h.dst.addr);
    if (record_hit(a, &h))
        agent_log("warning", "out of memory: %llu held-back events not counted",
                  (unsigned long long)held);
}

static void on_event(void *ctx, const struct moat_event *e)
{
    struct moat_agent *a = ctx;
    const struct moat_policy *p = a->policy;
    a->events++;
    if (!p || e->cluster >= p->nclusters)
        return;
    struct alert_hit h = {.cluster = p->clusters[e->cluster].name,
                          .node = a->cfg.node,
                          .rule_id = e->rule_id,
                          .rule_name = rule_name_of(p, e->rule_id),
                          .configured = (enum moat_action)e->action,
                          .applied = (enum moat_action)e->applied,
                          .proto = e->proto,
                          .when = wall_time(e->ts_ns)};
    if (e->kind == MOAT_EV_SUMMARY) {
        h.kind = alert_kind_of(e->reason);
        add_held(a, &h, e->saddr, e->held);
        return;
    }
    h.kind = alert_kind_of(e->kind);
    memcpy(h.src.addr.b, e->saddr, 16);
    memcpy(h.dst.addr.b, e->daddr, 16);
    h.src.port = e->sport;
    h.dst.port = e->dport;
    h.src.workload = workload_at(p, &h.src.addr);
    h.dst.workload = workload_at(p, &h.dst.addr);
    char spoof[256];
    if (e->kind >= MOAT_EV_BRUTE_FORCE && e->kind <= MOAT_EV_QUARANTINE) {
        detection_hit(a, e, &h, spoof, sizeof(spoof));
    } else if (e->kind == MOAT_EV_CUT) {
        h.details = "established flow cut after a policy change";
    } else if (e->kind == MOAT_EV_SPOOFING) {
        struct moat_addr real;
        memcpy(real.b, e->waddr, 16);
        h.src.workload = workload_at(p, &real); /* the sender is the interface's workload */
        char claimed[MOAT_ADDR_STRLEN], own[MOAT_ADDR_STRLEN];
        addr_format(&h.src.addr, claimed, sizeof(claimed));
        addr_format(&real, own, sizeof(own));
        snprintf(spoof, sizeof(spoof), "%s (claimed %s, the workload's address is %s)",
                 spoofing_details(e->reason), claimed, own);
        h.details = spoof;
    } else if (h.configured == MOAT_ACTION_BLOCK && h.applied == MOAT_ACTION_ALERT) {
        h.details = "would block (monitor mode)";
    } else if (!e->rule_id) {
        h.details = e->dir == MOAT_ABI_DIR_INGRESS ? "cluster default action" : "egress default";
    }
    if (record_hit(a, &h))
        agent_log("warning", "out of memory: alert dropped");
    if (e->held)
        add_held(a, &h, e->kind == MOAT_EV_SPOOFING ? e->waddr : e->saddr, e->held);
}

/* ---------- threat lists ---------- */

static void threats_free(struct agent_threats *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++) {
        free(t[i].cluster);
        free(t[i].path);
        threatlist_free(t[i].list);
    }
    free(t);
}

static bool same_file(const struct stat *x, const struct stat *y)
{
    return x->st_dev == y->st_dev && x->st_ino == y->st_ino && x->st_size == y->st_size &&
           x->st_mtim.tv_sec == y->st_mtim.tv_sec && x->st_mtim.tv_nsec == y->st_mtim.tv_nsec;
}

/* Reads and parses a threat list file; NULL (errors logged) when it cannot. */
static struct moat_threatlist *threats_read(const char *cluster, const char *path, struct stat *st)
{
    char *text = NULL;
    size_t len = 0;
    int err = doc_read_file_max(path, MOAT_THREAT_TEXT_MAX, &text, &len);
    if (err) {
        agent_log("error", "cluster %s: threat list %s: %s (the list in force stays)", cluster,
                  path, strerror(-err));
        return NULL;
    }
    struct moat_diags d;
    diags_init(&d);
    struct moat_threatlist *tl = NULL;
    err = threatlist_parse(text, len, path, &tl, &d);
    for (size_t i = 0; i < d.count; i++)
        agent_log("error", "cluster %s: threat list: %s", cluster, d.items[i].text);
    if (err && !d.count)
        agent_log("error", "cluster %s: threat list %s: %s (the list in force stays)", cluster,
                  path, strerror(-err));
    diags_clear(&d);
    free(text);
    if (!err && stat(path, st) != 0)
        memset(st, 0, sizeof(*st));
    return err ? NULL : tl;
}

/*
 * Brings the threat lists in line with the policy in force: each cluster
 * with threat intelligence on and a `file` gets that file's list, read again
 * when the file changed (checked every call: a few stat calls); a list that
 * does not parse leaves the previous one in force. The datapath gets them
 * in one switch when anything changed. `force`: install even if nothing did.
 */
static void threats_sync(struct moat_agent *a, bool force)
{
    const struct moat_policy *p = a->policy;
    if (!p || !a->dp || !a->ops->set_threats)
        return;
    struct agent_threats *next = moat_calloc(p->nclusters ? p->nclusters : 1, sizeof(*next));
    if (!next)
        return;
    bool changed = force || p->nclusters != a->nthreats;
    for (size_t c = 0; c < p->nclusters; c++) {
        const struct moat_cluster *cl = &p->clusters[c];
        const char *want = cl->det.threat_intel.c.enabled ? cl->det.threat_intel.file : NULL;
        struct agent_threats *old = NULL;
        for (size_t k = 0; k < a->nthreats; k++)
            if (a->threats[k].cluster && strcmp(a->threats[k].cluster, cl->name) == 0)
                old = &a->threats[k];
        next[c].cluster = moat_strdup(cl->name);
        if (!want) {
            changed |= old && old->list;
            continue;
        }
        struct stat st;
        bool same_path = old && old->path && strcmp(old->path, want) == 0;
        if (same_path && stat(want, &st) == 0 && same_file(&st, &old->st)) {
            next[c] = *old; /* unchanged: taken over */
            old->cluster = old->path = NULL;
            old->list = NULL;
            free(next[c].cluster);
            next[c].cluster = moat_strdup(cl->name);
            continue;
        }
        struct moat_threatlist *tl = threats_read(cl->name, want, &st);
        changed = true;
        next[c].path = moat_strdup(want);
        if (tl) {
            next[c].list = tl;
            next[c].st = st;
            agent_log("info", "cluster %s: threat list %s: %zu prefixes", cl->name, want, tl->n);
        } else if (same_path && old->list) { /* keep the one in force; try again on change */
            next[c].list = old->list;
            old->list = NULL;
            stat(want, &next[c].st);
        }
    }
    if (changed) {
        struct moat_threatlist **lists =
            moat_calloc(p->nclusters ? p->nclusters : 1, sizeof(*lists));
        for (size_t c = 0; lists && c < p->nclusters; c++)
            lists[c] = next[c].list;
        int err = lists ? a->ops->set_threats(a->dp, lists, p->nclusters) : -ENOMEM;
        if (err)
            agent_log("error", "cannot install the threat lists: %s", strerror(-err));
        free(lists);
    }
    threats_free(a->threats, a->nthreats);
    a->threats = next;
    a->nthreats = p->nclusters;
}

/* ---------- interfaces ---------- */

static bool is_local(const struct moat_agent *a, const struct moat_workload *w)
{
    return w->interface && w->node && strcmp(w->node, a->cfg.node) == 0;
}

static int attach_workload(struct moat_agent *a, struct agent_iface *ifc)
{
    const struct moat_workload *w = &a->policy->workloads[ifc->workload];
    int err = a->ops->attach(a->dp, ifc->name, w->cluster, w->addrs, w->naddrs);
    if (err == -ENODEV)
        return err; /* not there yet: the next rescan tries again */
    if (err) {
        agent_log("error", "interface '%s': attach failed: %s", ifc->name, strerror(-err));
        return err;
    }
    if (!ifc->attached) {
        agent_log("info", "interface '%s': enforcing for workload %s/%s", ifc->name, w->namespace,
                  w->name);
        a->status_dirty = true;
    }
    ifc->attached = true;
    return 0;
}

/* Rebuilds the interface list from the policy; detaches interfaces no longer local. */
static int reconcile_ifaces(struct moat_agent *a)
{
    const struct moat_policy *p = a->policy;
    struct agent_iface *next = moat_calloc(p->nworkloads ? p->nworkloads : 1, sizeof(*next));
    if (!next)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < p->nworkloads; i++)
        if (is_local(a, &p->workloads[i])) {
            snprintf(next[n].name, sizeof(next[n].name), "%s", p->workloads[i].interface);
            next[n++].workload = (uint32_t)i;
        }
    for (size_t i = 0; i < a->nifaces; i++) {
        bool kept = false;
        for (size_t j = 0; j < n && !kept; j++)
            if (strcmp(a->ifaces[i].name, next[j].name) == 0) {
                kept = true;
                next[j].attached = a->ifaces[i].attached; /* still enforcing: no new log line */
            }
        if (!kept && a->ifaces[i].attached) {
            a->ops->detach(a->dp, a->ifaces[i].name);
            agent_log("info", "interface '%s': detached (workload gone)", a->ifaces[i].name);
        }
    }
    free(a->ifaces);
    a->ifaces = next;
    a->nifaces = n;
    for (size_t i = 0; i < n; i++)
        attach_workload(a, &a->ifaces[i]); /* also refreshes the workload's addresses */
    return 0;
}

static void report_quarantines(struct moat_agent *a);

void agent_rescan(struct moat_agent *a)
{
    report_quarantines(a);
    double now = mono_now();
    if (now - a->threats_checked_at >= 0.25) { /* a changed list is in force within 1 s */
        a->threats_checked_at = now;
        threats_sync(a, false);
    }
    for (size_t i = 0; i < a->nifaces; i++) {
        struct agent_iface *ifc = &a->ifaces[i];
        if (ifc->attached && !if_nametoindex(ifc->name)) {
            ifc->attached = false; /* gone: its filters went with it */
            a->status_dirty = true;
            agent_log("info", "interface '%s': gone", ifc->name);
        } else if (!ifc->attached) {
            attach_workload(a, ifc);
        }
    }
}

/* ---------- cluster mode: the server's policy + this node's inventory ---------- */

static bool local_to(const struct moat_agent *a, const struct moat_workload *w)
{
    return w->node && strcmp(w->node, a->cfg.node) == 0 &&
           strcmp(w->cluster_ref, a->cfg.cluster) == 0;
}

static json_t *addrs_json(const struct moat_addr *addrs, size_t n)
{
    json_t *ips = json_array();
    for (size_t i = 0; ips && i < n; i++) {
        char text[MOAT_ADDR_STRLEN];
        addr_format(&addrs[i], text, sizeof(text));
        if (json_array_append_new(ips, json_string(text)) < 0) {
            json_decref(ips);
            return NULL;
        }
    }
    return ips;
}

/* A workload as PUT /agents/workloads takes it (name, namespace, image, labels, ips, interface). */
static json_t *workload_json(const struct moat_workload *w)
{
    json_t *labels = json_object();
    for (size_t i = 0; labels && i < w->nlabels; i++)
        if (json_object_set_new(labels, w->labels[i].key, json_string(w->labels[i].value)) < 0) {
            json_decref(labels);
            labels = NULL;
        }
    json_t *ips = addrs_json(w->addrs, w->naddrs);
    if (!labels || !ips) {
        json_decref(labels);
        json_decref(ips);
        return NULL;
    }
    json_t *j =
        json_pack("{s:s,s:s,s:s*,s:o,s:o,s:s*}", "name", w->name, "namespace", w->namespace,
                  "image", w->image, "labels", labels, "ips", ips, "interface", w->interface);
    char src[4200];
    snprintf(src, sizeof(src), "file:%s", w->at.file ? w->at.file : "");
    if (j && json_object_set_new(j, "source", json_string(w->source ? w->source : src)) < 0) {
        json_decref(j);
        return NULL;
    }
    json_t *nsl = w->nns_labels ? json_object() : NULL;
    for (size_t i = 0; nsl && i < w->nns_labels; i++)
        json_object_set_new(nsl, w->ns_labels[i].key, json_string(w->ns_labels[i].value));
    if (j && nsl && json_object_set_new(j, "namespace_labels", nsl) < 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/*
 * This node's workloads (of its cluster) from the inventory `inv`: into
 * `report` in the API's form and into `docs` as Workload/Node documents.
 */
static int local_docs(const struct moat_agent *a, const struct moat_policy *inv, json_t *report,
                      json_t *docs)
{
    for (size_t i = 0; i < inv->nworkloads; i++) {
        const struct moat_workload *w = &inv->workloads[i];
        if (!local_to(a, w))
            continue;
        json_t *r = workload_json(w), *d = r ? json_deep_copy(r) : NULL;
        int bad = !r || !d || json_array_append(report, r) < 0 ||
                  json_object_set_new(d, "kind", json_string("Workload")) < 0 ||
                  json_object_set_new(d, "cluster", json_string(a->cfg.cluster)) < 0 ||
                  json_object_set_new(d, "node", json_string(a->cfg.node)) < 0 ||
                  json_array_append(docs, d) < 0;
        json_decref(r);
        json_decref(d);
        if (bad)
            return -ENOMEM;
    }
    for (size_t i = 0; i < inv->nnodes; i++) {
        const struct moat_node *n = &inv->nodes[i];
        if (strcmp(n->name, a->cfg.node) != 0)
            continue;
        json_t *d = json_pack("{s:s,s:s,s:s,s:o}", "kind", "Node", "name", n->name, "cluster",
                              a->cfg.cluster, "ips", addrs_json(n->addrs, n->naddrs));
        if (!d || json_array_append_new(docs, d) < 0)
            return -ENOMEM;
    }
    return 0;
}

static void log_diags(struct moat_diags *d, const char *prefix)
{
    for (size_t i = 0; i < d->count; i++)
        agent_log("error", "%s%s", prefix, d->items[i].text);
    diags_clear(d);
}

static int add_remote_workloads(void *arg, struct moat_policy *p)
{
    const struct moat_agent *a = arg;
    return remote_workloads_add(a->remote_wl, p);
}

/*
 * The server's documents (a->remote_text, prepared by agent_set_remote),
 * this node's own (`local`) and the other nodes' workloads (a->remote_wl,
 * shared, not parsed again) loaded as one policy, with the server's rule ids.
 */
static int load_remote(struct moat_agent *a, const json_t *local, struct moat_policy **out)
{
    /* the slots deltas left empty go: the live link to the policy in force with them */
    if (a->remote_wl && a->remote_wl->holes) {
        remote_live_free(a->live);
        a->live = NULL;
        remote_workloads_compact(a->remote_wl);
    }
    char *text = json_dumps(local, JSON_COMPACT);
    if (!text)
        return -ENOMEM;
    char name[64];
    snprintf(name, sizeof(name), "server policy revision %lld", (long long)a->remote_revision);
    struct policy_source src[2] = {
        {.text = a->remote_text,
         .len = strlen(a->remote_text),
         .name = name,
         .limits = &doc_limits_server},
        {.text = text, .len = strlen(text), .name = "this node's inventory"}};
    struct moat_diags d;
    diags_init(&d);
    int err = policy_load_sources_then(out, src, 2, add_remote_workloads, a, &d);
    free(text);
    log_diags(&d, "");
    if (!err)
        remote_take_ids(*out, a->remote_rules);
    return err;
}

/* Cluster mode: reads the inventory, refreshes the workloads to report, loads the policy. */
static int load_cluster(struct moat_agent *a, struct moat_policy **out)
{
    *out = NULL;
    struct moat_policy *inv;
    int err = load_files(a, &inv);
    if (err)
        return err;
    json_t *reported = json_array(), *docs = json_array();
    err = reported && docs ? local_docs(a, inv, reported, docs) : -ENOMEM;
    policy_free(inv);
    if (!err) {
        json_decref(a->local_workloads);
        a->local_workloads = json_incref(reported);
    }
    if (!err && !a->remote_text)
        err = -EAGAIN; /* nothing from the server yet */
    if (!err)
        err = load_remote(a, docs, out);
    json_decref(reported);
    json_decref(docs);
    return err;
}

static int load_policy(struct moat_agent *a, struct moat_policy **out)
{
    return a->cfg.cluster ? load_cluster(a, out) : load_files(a, out);
}

/* Cluster mode: tells the server the datapath state, the revision and the workloads. */
static void report(struct moat_agent *a)
{
    if (!a->cfg.sync)
        return;
    uint32_t c =
        a->policy && a->cfg.cluster ? policy_find_cluster(a->policy, a->cfg.cluster) : MOAT_NONE;
    json_t *det = c == MOAT_NONE ? NULL : cluster_det_running(a->ops, &a->policy->clusters[c]);
    struct sync_report r = {.datapath_state = a->dp_state,
                            .datapath_reason = a->dp_reason,
                            .datapath_backend = a->ops->name,
                            .datapath_probes = a->cfg.probes,
                            .datapath_detections = det,
                            .revision = a->revision,
                            .workloads = a->local_workloads};
    if (sync_set_report(a->cfg.sync, &r) < 0)
        agent_log("warning", "out of memory: report to the server delayed");
    json_decref(det);
}

static void set_dp_state(struct moat_agent *a, const char *state, const char *reason)
{
    snprintf(a->dp_state, sizeof(a->dp_state), "%s", state);
    snprintf(a->dp_reason, sizeof(a->dp_reason), "%s", reason);
}

/* ---------- policy ---------- */

/* Compiles and applies `p`; on success the agent owns it, else the caller keeps it. */
static int install(struct moat_agent *a, struct moat_policy *p)
{
    if (!a->dp)
        return -EOPNOTSUPP;
    struct moat_eval_opts opts = {.node = a->cfg.node};
    struct moat_tables *t;
    double t0 = mono_now();
    int err = policy_compile(p, &opts, &t);
    if (err)
        return err;
    double t1 = mono_now();
    uint32_t gen;
    err = a->ops->apply(a->dp, p, t, &gen);
    agent_log("info", "compile %.1f ms, datapath apply %.1f ms", (t1 - t0) * 1e3,
              (mono_now() - t1) * 1e3);
    if (err) {
        tables_free(t);
        return err;
    }
    remote_live_free(a->live);
    a->live = NULL;
    tables_free(a->tables);
    policy_free(a->policy);
    a->tables = t;
    a->policy = p;
    a->generation = gen;
    if (a->documents_only) { /* the remote workloads kept (install_documents) */
        a->applies_objects_rules++;
        a->last_apply_path = "objects_rules";
    } else {
        a->applies_full++;
        a->last_apply_path = "full";
    }
    a->stale = false;
    if (a->cfg.cluster && a->remote_wl && remote_live_new(a->remote_wl, p, t, &a->live) < 0)
        agent_log("warning", "workload deltas will take the full path: %s",
                  "the policy does not end with the remote workloads");
    a->status_dirty = true;
    a->applied_at = wall_now();
    if (a->remote_text)
        a->revision = a->remote_revision;
    set_dp_state(a, "enforcing", "");
    threats_sync(a, false);
    return reconcile_ifaces(a);
}

/* Cluster mode: a datapath that cannot run is reported, not fatal. */
static int open_datapath(struct moat_agent *a)
{
    char why[512];
    int err = a->ops->probe(why, sizeof(why));
    if (err) {
        agent_log("error", "the %s datapath cannot run on this kernel: missing %s", a->ops->name,
                  why);
        char reason[600];
        snprintf(reason, sizeof(reason), "%s datapath: missing %s", a->ops->name, why);
        set_dp_state(a, "unsupported", reason);
        return err;
    }
    err = a->ops->open(a->cfg.node, on_event, a, &a->dp);
    if (err) {
        agent_log("error", "cannot load the %s datapath: %s", a->ops->name, strerror(-err));
        char reason[600];
        snprintf(reason, sizeof(reason), "cannot load the %s datapath: %s", a->ops->name,
                 strerror(-err));
        set_dp_state(a, "unsupported", reason);
    }
    return err;
}

int agent_start(struct moat_agent *a, const struct agent_config *cfg,
                const struct datapath_ops *ops)
{
    memset(a, 0, sizeof(*a));
    a->cfg = *cfg;
    a->discovered = cfg->discovered;
    a->cfg.discovered = NULL;
    a->ops = ops;
    set_dp_state(a, "not_installed", "waiting for the first policy");
    a->alerts = alert_agg_new();
    if (!a->alerts)
        return -ENOMEM;
    if (cfg->cluster && !(a->window = alert_agg_new()))
        return -ENOMEM;
    a->alerts_out = stdout;
    if (cfg->alerts_path) {
        a->alerts_out = fopen(cfg->alerts_path, "a");
        if (!a->alerts_out) {
            agent_log("error", "--alerts %s: %s", cfg->alerts_path, strerror(errno));
            return -errno;
        }
    }
    struct moat_policy *p;
    int err = load_policy(a, &p);
    if (err == -EAGAIN)
        p = NULL; /* cluster mode, no policy yet: the datapath waits for one */
    else if (err)
        return err;
    err = open_datapath(a);
    if (err && cfg->cluster) {
        policy_free(p); /* keep running: the server learns why this node cannot enforce */
        report(a);
        return 0;
    }
    if (err) {
        policy_free(p);
        return err;
    }
    if (p) {
        err = install(a, p);
        if (err) {
            agent_log("error", "cannot apply the policy: %s", strerror(-err));
            if (a->policy != p) /* not taken yet (see refresh) */
                policy_free(p);
            return err;
        }
        agent_log("info", "node %s: policy generation %u applied, %zu local interfaces", cfg->node,
                  a->generation, a->nifaces);
    } else {
        agent_log("info", "node %s: waiting for the policy of cluster %s from the server",
                  cfg->node, cfg->cluster);
    }
    report(a);
    return 0;
}

/* Loads and applies the policy again; on any error the running one stays. */
static int refresh(struct moat_agent *a, const char *what)
{
    struct moat_policy *p;
    a->reloads++;
    double t0 = mono_now();
    int err = load_policy(a, &p);
    double t1 = mono_now();
    if (!err) {
        err = install(a, p);
        if (err && a->policy != p) /* install() may fail after it took p (attaching interfaces) */
            policy_free(p);
    }
    double t2 = mono_now();
    a->status_dirty = true;
    if (!err)
        a->last_apply_ms = (t2 - t0) * 1e3;
    report(a);
    if (err == -EAGAIN || (err == -EOPNOTSUPP && a->cfg.cluster))
        return 0; /* nothing to apply yet, or nowhere to apply it: reported */
    if (err) {
        a->reload_failures++;
        agent_log("error", "%s failed (%s): generation %u stays in force", what,
                  err == -EINVAL ? "invalid policy" : strerror(-err), a->generation);
        return err;
    }
    if (a->remote_text)
        agent_log("info",
                  "policy revision %lld applied (generation %u; load %.1f ms, compile and "
                  "install %.1f ms)",
                  (long long)a->revision, a->generation, (t1 - t0) * 1e3, (t2 - t1) * 1e3);
    else
        agent_log("info",
                  "policy generation %u applied (load %.1f ms, compile and install %.1f ms)",
                  a->generation, (t1 - t0) * 1e3, (t2 - t1) * 1e3);
    return 0;
}

int agent_reload(struct moat_agent *a)
{
    return refresh(a, "reload");
}

int agent_set_discovered(struct moat_agent *a, json_t *docs)
{
    json_decref(a->discovered);
    a->discovered = docs;
    return refresh(a, "applying the discovered workloads");
}

/*
 * Keeps the server's answer as the text of its cluster, objects and rules
 * documents (small) and its other nodes' workloads as pooled records built
 * straight from the answer (remote.h), not as a JSON tree nor as document
 * text to parse again at every reload: 100,000 workloads must fit in 1.5 KiB
 * each (issue 17; docs/decisions.md, "Cluster scale").
 */
#define TRIM_ABOVE 2000 /* workloads in an answer worth a malloc_trim */

/*
 * The cluster record of the answer, with its threat list where this node
 * keeps it: in cluster mode the list comes from the server (sync.h), never
 * from a path named in the settings.
 */
static json_t *remote_cluster(struct moat_agent *a, const json_t *policy)
{
    json_t *c = json_deep_copy(json_object_get(policy, "cluster"));
    json_t *ti = json_object_get(json_object_get(c, "detections"), "threat_intel");
    if (!c || !json_is_object(ti))
        return c;
    json_object_del(ti, "file");
    if (json_is_object(json_object_get(policy, "threat_intel"))) {
        char path[4200];
        sync_threat_path(a->cfg.sync, path, sizeof(path));
        json_object_set_new(ti, "file", json_string(path));
    }
    return c;
}

/*
 * Takes over the server's documents `text` and the `objects` and `rules` they were
 * made from, as of `answer` (a full answer or a delta: its revision, quarantines
 * and releases).
 */
static void take_documents(struct moat_agent *a, char *text, json_t *objects, json_t *rules,
                           const json_t *answer)
{
    free(a->remote_text);
    json_decref(a->remote_objects);
    json_decref(a->remote_rules);
    a->remote_text = text;
    a->remote_objects = objects;
    a->remote_rules = rules;
    a->remote_revision = json_integer_value(json_object_get(answer, "revision"));
    json_decref(a->remote_quarantines);
    json_decref(a->remote_releases);
    a->remote_quarantines = json_incref(json_object_get(answer, "quarantines"));
    a->remote_releases = json_incref(json_object_get(answer, "quarantine_releases"));
}

/* Keeps the answer; *same when its documents are those already in force. */
static int keep_remote(struct moat_agent *a, const json_t *policy, bool *same)
{
    *same = false;
    json_t *clusters = json_array(), *docs = json_array(), *cluster = remote_cluster(a, policy);
    int err = clusters && docs && cluster && !json_array_append(clusters, cluster) ? 0 : -ENOMEM;
    const json_t *objects = json_object_get(policy, "objects");
    if (!err)
        err = remote_docs_compact(clusters, objects, json_object_get(policy, "rules"), NULL,
                                  a->cfg.node, docs);
    char *text = err ? NULL : json_dumps(docs, JSON_COMPACT);
    json_decref(docs);
    json_t *rules = json_deep_copy(json_object_get(policy, "rules"));
    json_t *objects_kept = json_deep_copy(objects);
    struct remote_workloads *wl = NULL;
    char name[64];
    int64_t revision = json_integer_value(json_object_get(policy, "revision"));
    snprintf(name, sizeof(name), "server policy revision %lld", (long long)revision);
    struct moat_diags d;
    diags_init(&d);
    if (!err)
        err = remote_workloads_build(clusters, objects, json_object_get(policy, "workloads"),
                                     a->cfg.node, name, &wl, &d);
    json_decref(clusters);
    if (!err && (!text || !rules || !objects_kept))
        err = -ENOMEM;
    if (err) {
        diags_clear(&d);
        free(text);
        json_decref(rules);
        json_decref(objects_kept);
        json_decref(cluster);
        remote_workloads_free(wl);
        return err;
    }
    json_decref(a->remote_cluster);
    json_decref(a->remote_ti);
    a->remote_cluster = cluster;
    a->remote_ti = json_incref(json_object_get(policy, "threat_intel"));
    if (wl->left_out)
        agent_log("error",
                  "%zu workloads of other nodes left out of the server's policy:", wl->left_out);
    log_diags(&d, "");
    *same = !a->stale && a->policy && a->remote_text && a->revision == a->remote_revision &&
            strcmp(text, a->remote_text) == 0 && json_equal(rules, a->remote_rules) &&
            remote_workloads_equal(wl, a->remote_wl);
    remote_live_free(a->live); /* it points into the remote workloads replaced here */
    a->live = NULL;
    remote_workloads_free(a->remote_wl);
    a->remote_wl = wl;
    take_documents(a, text, objects_kept, rules, policy);
    a->docs_staged = false; /* a whole answer: nothing is ahead of it */
    return 0;
}

/* The index of this node's cluster in the policy in force, or MOAT_NONE. */
static uint32_t own_cluster(const struct moat_agent *a)
{
    return a->policy && a->cfg.cluster ? policy_find_cluster(a->policy, a->cfg.cluster) : MOAT_NONE;
}

/* Cluster mode: the server's quarantines and releases into the kernel. */
static void apply_remote_quarantines(struct moat_agent *a)
{
    uint32_t c = own_cluster(a);
    if (!a->dp || c == MOAT_NONE || (!a->remote_quarantines && !a->remote_releases))
        return;
    int n = cluster_det_apply(a->ops, a->cfg.node, c, a->remote_quarantines, a->remote_releases);
    if (n > 0)
        agent_log("info", "quarantines from the server: %d kernel entries changed", n);
    else if (n < 0 && n != -EOPNOTSUPP)
        agent_log("warning", "cannot apply the server's quarantines: %s", strerror(-n));
}

/* Cluster mode: the quarantines this node's kernel started, to the server (once a second). */
static void report_quarantines(struct moat_agent *a)
{
    double now = mono_now();
    uint32_t c = own_cluster(a);
    if (!a->cfg.sync || !a->dp || c == MOAT_NONE || now - a->quarantines_checked_at < 1.0)
        return;
    a->quarantines_checked_at = now;
    int err;
    json_t *list = cluster_det_local(a->ops, a->cfg.node, c, &err);
    if (list && sync_set_quarantines(a->cfg.sync, list) < 0)
        agent_log("warning", "out of memory: quarantines not reported");
    json_decref(list);
}

int agent_set_remote(struct moat_agent *a, json_t *policy)
{
    /* the newest, even when it fails here: a fixed inventory uses it */
    bool same;
    double t0 = mono_now();
    int err = keep_remote(a, policy, &same);
    if (!err && !same)
        agent_log("info",
                  "server policy revision %lld taken: %zu workloads of other nodes (%.1f ms)",
                  (long long)a->remote_revision, a->remote_wl->n, (mono_now() - t0) * 1e3);
    const json_t *at = json_object_get(policy, SYNC_RECEIVED_AT);
    double received = json_is_real(at) ? json_real_value(at) : -1;
    bool large = json_array_size(json_object_get(policy, "workloads")) > TRIM_ABOVE;
    json_decref(policy); /* the answer's tree is consumed: free it before compiling */
    if (large)
        malloc_trim(0);
    if (err) {
        agent_log("error", "out of memory: the server's policy is not applied");
        return err;
    }
    if (same) { /* only quarantines or the revision moved: nothing to compile */
        a->revision = a->remote_revision;
        a->status_dirty = true;
        report(a);
    } else {
        err = refresh(a, "applying the server's policy");
        if (!err) {
            a->last_apply_ms = (mono_now() - t0) * 1e3;
            a->last_received_ms = received < 0 ? -1 : (mono_now() - received) * 1e3;
        }
    }
    apply_remote_quarantines(a);
    if (large)
        malloc_trim(0); /* give back what loading and compiling a large answer took */
    return err;
}

/* ---------- workload deltas in place ---------- */

/* How long delta `d` took from the sync thread receiving it to being in force. */
static void note_received(struct moat_agent *a, const json_t *d)
{
    const json_t *at = json_object_get(d, SYNC_RECEIVED_AT);
    a->last_received_ms = json_is_real(at) ? (mono_now() - json_real_value(at)) * 1e3 : -1;
}

/* Record bytes churn may add to the pool before a rebuild: half what it was built with, 8 MiB
 * at least (issue 17's memory bound holds; at 100 workloads/s a rebuild every few minutes). */
#define POOL_GROWTH_MIN ((size_t)8 << 20)

/* The full policy kept by the sync thread, applied whole (when a delta cannot be). */
static int apply_kept(struct moat_agent *a, const char *reason)
{
    agent_log("info", "policy delta: %s; applying the full policy kept", reason);
    char why[300];
    json_t *full = sync_full_policy(a->cfg.sync, why, sizeof(why));
    if (!full) {
        agent_log("error", "cannot apply the full policy: %s; asking the server for it", why);
        sync_refetch(a->cfg.sync);
        return -ENOENT;
    }
    int err = agent_set_remote(a, full);
    if (err == -ENOMEM)
        sync_refetch(a->cfg.sync); /* nothing newer may come for a while: ask again */
    return err;
}

/* Why delta `d` cannot be applied to what is in force (since it, same cluster and threat list). */
static const char *not_on_top(struct moat_agent *a, const json_t *d)
{
    int64_t since = json_integer_value(json_object_get(d, "since"));
    /* staged objects and rules (agent_apply_deltas) stand for the revision in force */
    if (since != a->remote_revision || (a->revision != a->remote_revision && !a->docs_staged))
        return "it is not since the revision in force";
    json_t *c = remote_cluster(a, d);
    bool same = c && json_equal(c, a->remote_cluster);
    json_decref(c);
    if (!same)
        return "it changes the cluster's settings";
    const json_t *ti = json_object_get(d, "threat_intel");
    if (!(ti == a->remote_ti || (ti && a->remote_ti && json_equal(ti, a->remote_ti))))
        return "it changes the threat list";
    return NULL;
}

/* Why delta `d` cannot be applied in place, or NULL. */
static const char *not_in_place(struct moat_agent *a, const json_t *d)
{
    if (!a->live || !a->dp || !a->policy || !a->tables || a->docs_staged)
        return "nothing in force to change in place";
    const char *why = not_on_top(a, d);
    if (why)
        return why;
    if (!polstate_workloads_only(d))
        return "it changes objects or rules with the workloads";
    size_t growth_max = a->remote_wl->pool_built / 2;
    if (remote_live_pool_growth(a->live) >
        (growth_max > POOL_GROWTH_MIN ? growth_max : POOL_GROWTH_MIN))
        return "the remote workloads' pool is due a rebuild";
    if (tables_compaction_due(a->tables))
        return "identities no address uses any more are due a compaction";
    return NULL;
}

/* The datapath after tables changed in place: update() when it can, else a whole apply. */
static int datapath_after(struct moat_agent *a, const struct remote_change *c, bool *in_place)
{
    uint32_t gen;
    int err = -EOPNOTSUPP;
    *in_place = false;
    if (a->ops->update && !c->resolvers)
        err = a->ops->update(a->dp, a->policy, a->tables, c->first_new, c->addrs, c->naddrs, &gen);
    if (!err) {
        *in_place = true;
    } else {
        if (err != -EOPNOTSUPP && err != -ENOSPC)
            agent_log("warning", "datapath update in place failed (%s): applying it whole",
                      strerror(-err));
        err = a->ops->apply(a->dp, a->policy, a->tables, &gen);
    }
    if (!err)
        a->generation = gen;
    return err;
}

static int install_documents(struct moat_agent *a, const json_t *d, double t0);

/*
 * The objects and rules of delta `d` applied to those in force into *objects and
 * *rules (new references), or why not (then nothing is changed).
 */
static const char *documents_after(struct moat_agent *a, const json_t *d, json_t **objects,
                                   json_t **rules)
{
    *objects = *rules = NULL;
    if (!a->dp || !a->policy || a->stale || !a->remote_wl || !a->remote_objects || !a->remote_rules)
        return "nothing in force to build on";
    if (!polstate_no_workload_change(d))
        return "it changes workloads with the objects or rules";
    const char *why = not_on_top(a, d);
    if (why)
        return why;
    json_t *base = json_pack("{s:I,s:O,s:O,s:[]}", "revision", (json_int_t)a->remote_revision,
                             "objects", a->remote_objects, "rules", a->remote_rules, "workloads");
    json_t *now = NULL;
    char err_why[300];
    int err = base ? delta_apply(base, d, &now, err_why, sizeof(err_why)) : -ENOMEM;
    json_decref(base);
    if (err)
        return err == -ENOMEM ? "out of memory"
                              : "it does not apply to the objects and rules in force";
    *objects = json_incref(json_object_get(now, "objects"));
    *rules = json_incref(json_object_get(now, "rules"));
    json_decref(now);
    if (!json_is_array(*objects) || !json_is_array(*rules))
        why = "it does not apply to the objects and rules in force";
    else if (!remote_workloads_fit(a->remote_wl, *objects))
        why = "its objects select on other label keys: the remote workloads are built anew";
    if (why) {
        json_decref(*objects);
        json_decref(*rules);
        *objects = *rules = NULL;
    }
    return why;
}

/*
 * A delta of objects and rules only: the server's documents are made anew from them,
 * the other nodes' workloads are kept as they are (what they hold is what a rebuild
 * would make while objects select on the same label keys), then load, compile and
 * apply. Skips what the full path spends most on at 100,000 workloads: parsing the
 * whole answer and building the remote workloads again. *why_not: NULL when taken
 * (the result is returned), else why not (nothing changed).
 */
static int apply_documents(struct moat_agent *a, const json_t *d, bool stage, const char **why_not)
{
    double t0 = mono_now();
    json_t *objects, *rules;
    *why_not = documents_after(a, d, &objects, &rules);
    if (*why_not)
        return 0;
    json_t *clusters = json_pack("[O]", a->remote_cluster), *docs = json_array();
    int err = clusters && docs
                  ? remote_docs_compact(clusters, objects, rules, NULL, a->cfg.node, docs)
                  : -ENOMEM;
    char *text = err ? NULL : json_dumps(docs, JSON_COMPACT);
    json_decref(clusters);
    json_decref(docs);
    if (!text) {
        json_decref(objects);
        json_decref(rules);
        *why_not = "out of memory";
        return 0;
    }
    take_documents(a, text, objects, rules, d);
    if (stage) { /* the next delta changes objects and rules too: one compile */
        a->docs_staged = true;
        agent_log("info", "policy %lld: objects and rules changed; staged with the next delta",
                  (long long)a->remote_revision);
        return 0;
    }
    agent_log("info",
              "policy %lld: objects and rules changed; the %zu workloads of other nodes kept",
              (long long)a->remote_revision, a->remote_wl->n);
    return install_documents(a, d, t0);
}

/* The staged or changed objects and rules (a->remote_text) loaded, compiled and applied. */
static int install_documents(struct moat_agent *a, const json_t *d, double t0)
{
    a->docs_staged = false;
    a->documents_only = true;
    int err = refresh(a, "applying the server's objects and rules");
    a->documents_only = false;
    if (!err && a->revision == a->remote_revision) {
        a->last_apply_ms = (mono_now() - t0) * 1e3;
        if (d)
            note_received(a, d);
    }
    apply_remote_quarantines(a);
    return err;
}

/* True when delta `d` changes objects or rules and no workload (the objects_rules path). */
static bool documents_delta(const json_t *d)
{
    return !polstate_workloads_only(d) && polstate_no_workload_change(d);
}

static int apply_one(struct moat_agent *a, json_t *d, bool stage);

int agent_apply_deltas(struct moat_agent *a, json_t *deltas)
{
    int err = 0;
    size_t n = json_array_size(deltas);
    for (size_t k = 0; k < n; k++) {
        const json_t *d = json_array_get(deltas, k);
        bool stage =
            k + 1 < n && documents_delta(d) && documents_delta(json_array_get(deltas, k + 1));
        int e = apply_one(a, json_incref((json_t *)d), stage);
        err = err ? err : e;
    }
    if (a->docs_staged) { /* staged, then the next one went another way and failed */
        int e = install_documents(a, NULL, mono_now());
        err = err ? err : e;
    }
    json_decref(deltas);
    return err;
}

int agent_apply_delta(struct moat_agent *a, json_t *d)
{
    return apply_one(a, d, false);
}

/* agent_apply_delta; `stage`: a delta of objects and rules only waits for the next one. */
static int apply_one(struct moat_agent *a, json_t *d, bool stage)
{
    double t0 = mono_now();
    int64_t rev = json_integer_value(json_object_get(d, "revision"));
    if (rev <= a->remote_revision) { /* a full policy taken since has it */
        json_decref(d);
        return 0;
    }
    const char *why;
    if (documents_delta(d)) {
        int err = apply_documents(a, d, stage, &why);
        if (!why) {
            json_decref(d);
            return err;
        }
    } else {
        why = not_in_place(a, d);
    }
    if (why) {
        json_decref(d);
        return apply_kept(a, why);
    }
    struct remote_change c;
    struct moat_diags diags;
    diags_init(&diags);
    char reason[300] = "";
    int err = remote_live_apply(a->live, json_object_get(d, "workloads"), &c, &diags, reason,
                                sizeof(reason));
    log_diags(&diags, "");
    double t1 = mono_now();
    bool in_place = false;
    if (!err)
        err = datapath_after(a, &c, &in_place);
    double t2 = mono_now();
    if (err) {
        /* the remote workloads and tables may be half changed: neither is used again */
        remote_change_clear(&c);
        remote_live_free(a->live);
        a->live = NULL;
        a->stale = true; /* the full policy is applied even when it looks the same */
        json_decref(d);
        char what[400];
        snprintf(what, sizeof(what), "cannot apply it in place (%s)",
                 err == -EINVAL ? reason : strerror(-err));
        err = apply_kept(a, what);
        if (err) { /* what is in force no longer matches the tables: only a full apply now */
            agent_log("error", "policy revision %lld not applied", (long long)rev);
        }
        return err;
    }
    a->remote_revision = a->revision = rev;
    json_decref(a->remote_quarantines);
    json_decref(a->remote_releases);
    a->remote_quarantines = json_incref(json_object_get(d, "quarantines"));
    a->remote_releases = json_incref(json_object_get(d, "quarantine_releases"));
    a->applies_incremental++;
    a->last_apply_path = "incremental";
    a->last_apply_ms = (mono_now() - t0) * 1e3;
    note_received(a, d);
    a->applied_at = wall_now();
    a->status_dirty = true;
    agent_log("info",
              "policy revision %lld applied in place (generation %u; %zu workloads set, %zu "
              "removed, %zu left out; tables %.2f ms, datapath %.2f ms%s)",
              (long long)rev, a->generation, c.set, c.removed, c.left_out, (t1 - t0) * 1e3,
              (t2 - t1) * 1e3, in_place ? "" : ", snapshot rebuilt");
    remote_change_clear(&c);
    json_decref(d);
    report(a);
    apply_remote_quarantines(a);
    return 0;
}

/* ---------- events -> server ---------- */

static void add_event(void *ctx, const struct alert *al)
{
    json_t *events = ctx;
    json_t *e = alert_to_event(al, al->attempts);
    if (!e || json_array_append_new(events, e) < 0)
        agent_log("warning", "out of memory: an alert event was dropped");
}

#define WINDOW_S   0.5  /* hits go to the server at most this late */
#define WINDOW_MAX 5000 /* alerts per batch (the server takes 10,000 events) */

/* Cluster mode: the window's alerts, with the hits counted since the last batch, to the spool. */
static void send_window(struct moat_agent *a, bool now)
{
    if (!a->window || !a->window_started)
        return;
    if (!now && mono_now() - a->window_started < WINDOW_S &&
        alert_agg_count(a->window) < WINDOW_MAX)
        return;
    json_t *events = json_array();
    if (events)
        alert_agg_take_dirty(a->window, add_event, events);
    int err = events ? sync_send_events(a->cfg.sync, events) : -ENOMEM;
    if (err)
        agent_log("warning", "cannot spool %zu alert events: %s", json_array_size(events),
                  strerror(-err));
    json_decref(events);
    struct alert_agg *fresh = alert_agg_new();
    if (fresh) {
        alert_agg_free(a->window);
        a->window = fresh;
    }
    a->window_started = 0;
}

/* ---------- output ---------- */

static void write_alert(void *ctx, const struct alert *al)
{
    struct moat_agent *a = ctx;
    char *line = alert_to_json(al);
    if (line) {
        fprintf(a->alerts_out, "%s\n", line);
        free(line);
    }
}

/* Names of MOAT_DROP_* in moatd status (stable: scripts read them). */
static const char *const drop_names[MOAT_DROP_MAX] = {
    [MOAT_DROP_NONE] = "none",
    [MOAT_DROP_POLICY] = "policy",
    [MOAT_DROP_SPOOFED] = "spoofed_source",
    [MOAT_DROP_CUT] = "cut",
    [MOAT_DROP_TRUNCATED] = "truncated",
    [MOAT_DROP_EXTHDR_CHAIN] = "ipv6_header_chain",
    [MOAT_DROP_ROUTING_HDR] = "ipv6_routing_header",
    [MOAT_DROP_FRAG_NO_FIRST] = "fragment_without_first",
    [MOAT_DROP_FRAG_SHORT] = "short_first_fragment",
    [MOAT_DROP_ICMP_ERROR] = "icmp_error_unmatched",
    [MOAT_DROP_NOT_ADDRESSED] = "not_addressed_to_workload",
    [MOAT_DROP_ETHERTYPE] = "ethertype",
    [MOAT_DROP_ARP_SPOOF] = "arp_spoofing",
    [MOAT_DROP_ND_SPOOF] = "nd_spoofing",
    [MOAT_DROP_ROUTER] = "router_from_workload",
    [MOAT_DROP_DHCP_SERVER] = "dhcp_server_from_workload",
    [MOAT_DROP_LINK_LOCAL] = "link_local_source",
    [MOAT_DROP_MAC_SPOOF] = "mac_spoofing",
    [MOAT_DROP_NO_WORKLOAD] = "unknown_interface",
    [MOAT_DROP_QUARANTINED] = "quarantined_source",
    [MOAT_DROP_DNS_RESOLVER] = "dns_resolver_not_approved",
    [MOAT_DROP_DNS_NO_QUERY] = "dns_answer_no_query",
    [MOAT_DROP_DNS_QUESTION] = "dns_answer_question_mismatch",
    [MOAT_DROP_DNS_MALFORMED] = "dns_malformed",
    [MOAT_DROP_THREAT] = "threat_listed",
};

static const char *const event_stat_names[MOAT_EVS_MAX] = {
    [MOAT_EVS_SENT] = "sent",
    [MOAT_EVS_SUPPRESSED] = "held_per_source",
    [MOAT_EVS_NODE_LIMIT] = "held_node_limit",
    [MOAT_EVS_LOST] = "lost",
};

const char *agent_drop_name(uint32_t reason)
{
    return reason > MOAT_DROP_NONE && reason < MOAT_DROP_MAX ? drop_names[reason] : NULL;
}

const char *agent_event_stat_name(uint32_t which)
{
    return which < MOAT_EVS_MAX ? event_stat_names[which] : NULL;
}

/* The datapath's drop and event counters, {"drops": {...}, "events": {...}}; NULL if none. */
static json_t *stats_json(struct moat_agent *a)
{
    struct datapath_stats st;
    if (!a->dp || !a->ops->stats || a->ops->stats(a->dp, &st) != 0)
        return NULL;
    json_t *drops = json_object(), *events = json_object();
    for (uint32_t i = 1; drops && i < MOAT_DROP_MAX; i++)
        json_object_set_new(drops, agent_drop_name(i), json_integer((json_int_t)st.drops[i]));
    for (uint32_t i = 0; events && i < MOAT_EVS_MAX; i++)
        json_object_set_new(events, agent_event_stat_name(i),
                            json_integer((json_int_t)st.events[i]));
    return json_pack("{s:o,s:o}", "drops", drops, "event_stats", events);
}

static json_t *status_json(struct moat_agent *a)
{
    json_t *ifs = json_array(), *rules = json_array();
    for (size_t i = 0; i < a->nifaces; i++) {
        const struct moat_workload *w = &a->policy->workloads[a->ifaces[i].workload];
        json_t *e = workload_json(w); /* name, namespace, image, labels, ips, source */
        if (!e)
            continue;
        json_object_del(e, "name");
        json_object_set_new(e, "workload", json_string(w->name));
        json_object_set_new(e, "interface", json_string(a->ifaces[i].name));
        json_object_set_new(e, "attached", json_boolean(a->ifaces[i].attached));
        json_array_append_new(ifs, e);
    }
    for (size_t i = 0; a->policy && i < a->policy->nrules; i++)
        json_array_append_new(rules,
                              json_pack("{s:I,s:s,s:s}", "id", (json_int_t)a->policy->rules[i].id,
                                        "name", a->policy->rules[i].name, "cluster",
                                        a->policy->clusters[a->policy->rules[i].cluster].name));
    json_t *j =
        json_pack("{s:s,s:i,s:s,s:s,s:s,s:I,s:I,s:f,s:I,s:I,s:I,s:o,s:o}", "node", a->cfg.node,
                  "pid", (int)getpid(), "datapath", a->ops->name, "state", a->dp_state, "reason",
                  a->dp_reason, "generation", (json_int_t)a->generation, "revision",
                  (json_int_t)a->revision, "applied_at", a->applied_at, "reloads",
                  (json_int_t)a->reloads, "reload_failures", (json_int_t)a->reload_failures,
                  "events", (json_int_t)a->events, "interfaces", ifs, "rules", rules);
    if (j) /* which path the last policy took, and how long it took to be in force */
        json_object_set_new(
            j, "policy_apply",
            json_pack("{s:I,s:I,s:I,s:s?,s:f,s:f,s:I,s:I}", "incremental",
                      (json_int_t)a->applies_incremental, "objects_rules",
                      (json_int_t)a->applies_objects_rules, "full", (json_int_t)a->applies_full,
                      "last_path", a->last_apply_path, "last_ms", a->last_apply_ms,
                      "last_received_ms", a->last_received_ms, "identities",
                      (json_int_t)(a->tables ? tables_identity_count(a->tables) : 0),
                      "identities_idle",
                      (json_int_t)(a->tables ? tables_idle_identity_count(a->tables) : 0)));
    if (j && a->cfg.sync)
        json_object_set_new(j, "cluster", sync_status(a->cfg.sync));
    if (j && a->cfg.probes) /* what each backend's probe said ("": it can run) */
        json_object_set_new(j, "probes", json_deep_copy(a->cfg.probes));
    json_t *det = json_object(); /* per cluster: the detections that run here, and gaps */
    for (size_t i = 0; det && a->policy && i < a->policy->nclusters; i++)
        json_object_set_new(det, a->policy->clusters[i].name,
                            cluster_det_running(a->ops, &a->policy->clusters[i]));
    if (j && det)
        json_object_set_new(j, "detections", det);
    else
        json_decref(det);
    json_t *names = json_array(); /* by index: what the datapath's cluster numbers mean */
    for (size_t i = 0; names && a->policy && i < a->policy->nclusters; i++)
        json_array_append_new(names, json_string(a->policy->clusters[i].name));
    if (j && names)
        json_object_set_new(j, "clusters", names);
    else
        json_decref(names);
    json_t *st = j ? stats_json(a) : NULL;
    if (st)
        json_object_update(j, st);
    json_decref(st);
    if (j && a->cfg.source)
        json_object_set_new(j, "discovery", wsource_status(a->cfg.source));
    if (j && a->cfg.hold)
        json_object_set_new(j, "hold", hold_status(a->cfg.hold));
    return j;
}

/* Written when something it shows changed, else every 5 s (event counts): with
 * thousands of rules the file is large, and moatd must stay off the CPU. */
static void write_status(struct moat_agent *a)
{
    if (!a->cfg.status_path)
        return;
    double now = mono_now();
    if (!a->status_dirty && now - a->status_written_at < 5.0)
        return;
    a->status_dirty = false;
    a->status_written_at = now;
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", a->cfg.status_path);
    json_t *j = status_json(a);
    if (j && json_dump_file(j, tmp, JSON_INDENT(2)) == 0)
        rename(tmp, a->cfg.status_path);
    json_decref(j);
}

void agent_flush(struct moat_agent *a)
{
    send_window(a, false);
    alert_agg_take_dirty(a->alerts, write_alert, a);
    fflush(a->alerts_out);
    write_status(a);
}

void agent_stop(struct moat_agent *a, bool remove)
{
    if (a->dp) {
        a->ops->poll(a->dp, 0);
        agent_flush(a);
        send_window(a, true);
        a->ops->close(a->dp, remove);
    }
    if (a->cfg.status_path)
        unlink(a->cfg.status_path);
    if (a->alerts_out && a->alerts_out != stdout)
        fclose(a->alerts_out);
    alert_agg_free(a->alerts);
    alert_agg_free(a->window);
    remote_live_free(a->live);
    json_decref(a->remote_cluster);
    json_decref(a->remote_ti);
    free(a->remote_text);
    remote_workloads_free(a->remote_wl);
    json_decref(a->remote_rules);
    json_decref(a->remote_objects);
    json_decref(a->remote_quarantines);
    json_decref(a->remote_releases);
    json_decref(a->local_workloads);
    json_decref(a->discovered);
    tables_free(a->tables);
    policy_free(a->policy);
    free(a->ifaces);
    threats_free(a->threats, a->nthreats);
}
