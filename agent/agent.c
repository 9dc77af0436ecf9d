/* agent: moatd's standalone node logic (see agent.h). */
#include "agent.h"
#include "loader.h"
#include "mem.h"

#include <errno.h>
#include <jansson.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
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

static int load_files(const struct agent_config *cfg, struct moat_policy **out)
{
    struct moat_diags d;
    diags_init(&d);
    int err = policy_load_files(out, cfg->files, cfg->nfiles, &d);
    for (size_t i = 0; i < d.count; i++)
        agent_log("error", "%s", d.items[i].text);
    diags_clear(&d);
    return err;
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
    h.kind = e->kind == MOAT_EV_SPOOFING ? ALERT_SPOOFING : ALERT_POLICY;
    memcpy(h.src.addr.b, e->saddr, 16);
    memcpy(h.dst.addr.b, e->daddr, 16);
    h.src.port = e->sport;
    h.dst.port = e->dport;
    h.src.workload = workload_at(p, &h.src.addr);
    h.dst.workload = workload_at(p, &h.dst.addr);
    if (e->kind == MOAT_EV_CUT)
        h.details = "established flow cut after a policy change";
    else if (e->kind == MOAT_EV_SPOOFING)
        h.details = "packet left a workload with a source address that is not its own";
    else if (h.configured == MOAT_ACTION_BLOCK && h.applied == MOAT_ACTION_ALERT)
        h.details = "would block (monitor mode)";
    else if (!e->rule_id)
        h.details = e->dir == MOAT_ABI_DIR_INGRESS ? "cluster default action" : "egress default";
    int err;
    alert_agg_add(a->alerts, &h, &err);
    if (err)
        agent_log("warning", "out of memory: alert dropped");
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

void agent_rescan(struct moat_agent *a)
{
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

/* ---------- policy ---------- */

/* Compiles and applies `p`; on success the agent owns it, else the caller keeps it. */
static int install(struct moat_agent *a, struct moat_policy *p)
{
    struct moat_eval_opts opts = {.node = a->cfg.node};
    struct moat_tables *t;
    int err = policy_compile(p, &opts, &t);
    if (err)
        return err;
    uint32_t gen;
    err = a->ops->apply(a->dp, p, t, &gen);
    if (err) {
        tables_free(t);
        return err;
    }
    tables_free(a->tables);
    policy_free(a->policy);
    a->tables = t;
    a->policy = p;
    a->generation = gen;
    a->status_dirty = true;
    return reconcile_ifaces(a);
}

int agent_start(struct moat_agent *a, const struct agent_config *cfg,
                const struct datapath_ops *ops)
{
    memset(a, 0, sizeof(*a));
    a->cfg = *cfg;
    a->ops = ops;
    a->alerts = alert_agg_new();
    if (!a->alerts)
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
    int err = load_files(cfg, &p);
    if (err)
        return err;
    char why[512];
    err = ops->probe(why, sizeof(why));
    if (err) {
        agent_log("error", "the %s datapath cannot run on this kernel: missing %s", ops->name, why);
        policy_free(p);
        return err;
    }
    err = ops->open(cfg->node, on_event, a, &a->dp);
    if (err) {
        agent_log("error", "cannot load the %s datapath: %s", ops->name, strerror(-err));
        policy_free(p);
        return err;
    }
    err = install(a, p);
    if (err) {
        agent_log("error", "cannot apply the policy: %s", strerror(-err));
        policy_free(p);
        return err;
    }
    agent_log("info", "node %s: policy generation %u applied, %zu local interfaces", cfg->node,
              a->generation, a->nifaces);
    return 0;
}

int agent_reload(struct moat_agent *a)
{
    struct moat_policy *p;
    a->reloads++;
    int err = load_files(&a->cfg, &p);
    if (!err) {
        err = install(a, p);
        if (err)
            policy_free(p);
    }
    a->status_dirty = true;
    if (err) {
        a->reload_failures++;
        agent_log("error", "reload failed (%s): generation %u stays in force",
                  err == -EINVAL ? "invalid files" : strerror(-err), a->generation);
        return err;
    }
    agent_log("info", "policy generation %u applied", a->generation);
    return 0;
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

static json_t *status_json(struct moat_agent *a)
{
    json_t *ifs = json_array(), *rules = json_array();
    for (size_t i = 0; i < a->nifaces; i++) {
        const struct moat_workload *w = &a->policy->workloads[a->ifaces[i].workload];
        json_array_append_new(ifs, json_pack("{s:s,s:s,s:s,s:b}", "interface", a->ifaces[i].name,
                                             "namespace", w->namespace, "workload", w->name,
                                             "attached", a->ifaces[i].attached));
    }
    for (size_t i = 0; i < a->policy->nrules; i++)
        json_array_append_new(rules,
                              json_pack("{s:I,s:s,s:s}", "id", (json_int_t)a->policy->rules[i].id,
                                        "name", a->policy->rules[i].name, "cluster",
                                        a->policy->clusters[a->policy->rules[i].cluster].name));
    return json_pack("{s:s,s:i,s:s,s:I,s:I,s:I,s:I,s:o,s:o}", "node", a->cfg.node, "pid",
                     (int)getpid(), "datapath", a->ops->name, "generation",
                     (json_int_t)a->generation, "reloads", (json_int_t)a->reloads,
                     "reload_failures", (json_int_t)a->reload_failures, "events",
                     (json_int_t)a->events, "interfaces", ifs, "rules", rules);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
    alert_agg_take_dirty(a->alerts, write_alert, a);
    fflush(a->alerts_out);
    write_status(a);
}

void agent_stop(struct moat_agent *a, bool remove)
{
    if (a->dp) {
        a->ops->poll(a->dp, 0);
        agent_flush(a);
        a->ops->close(a->dp, remove);
    }
    if (a->cfg.status_path)
        unlink(a->cfg.status_path);
    if (a->alerts_out && a->alerts_out != stdout)
        fclose(a->alerts_out);
    alert_agg_free(a->alerts);
    tables_free(a->tables);
    policy_free(a->policy);
    free(a->ifaces);
}
