/*
 * api_agents: what node agents (moatd in cluster mode, SPEC 9) talk to.
 *
 *   POST /agents/register   join token (api_joins.c) -> node credential,
 *        bound to one cluster and node name. A name that is registered is
 *        not given to a new registration (409) until an admin deletes the
 *        node (DELETE /nodes/{id}), so nobody takes a node over.
 *   POST /agents/heartbeat  node facts, the policy revision in force and the
 *        event spool; `certified` is computed here from the kernel-support
 *        table (lib/compat.h). The answer carries the heartbeat interval the
 *        agent keeps to (as does register's).
 *   PUT  /agents/workloads  the node's full workload list (replaces its set).
 *   GET  /agents/policy?revision=N&wait=S  long-poll: answers at once when the
 *        cluster's revision is above N, else its connection is suspended (no
 *        thread waits) until the revision moves or S seconds pass (304 when
 *        nothing changed). The answer holds the cluster's settings, objects,
 *        rules (with their store ids), every workload of the cluster, and the
 *        revision; it is built once per revision and shared by every agent.
 *        With delta=1 it holds, when the server can say it, only what changed
 *        since N: {"revision", "since": N, "delta": true, the cluster and the
 *        quarantine and threat-list members whole, and objects / rules /
 *        workloads as {"set": [records], "removed": [ids]}}; otherwise the
 *        full answer with "delta": false (N is 0, too old, or from a
 *        revision this replica did not build).
 *   POST /agents/events     a batch of events with a batch id; a batch id is
 *        counted once per node. Events become alerts as SPEC 7 says.
 *
 * A node credential acts only for its own cluster and node: a `cluster` or
 * `node` in a body or query that names another gives 403.
 */
#include "audit.h"
#include "auth.h"
#include "fleet.h"
#include "polbuild.h"
#include "server.h"
#include "watch.h"
#include "writer.h"

#include "compat.h"
#include "delta.h"
#include "model.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLL_WAIT_MAX 60   /* seconds a policy long-poll may wait */
#define WORKLOADS_MAX 4096 /* workloads one node may report */
#define LABELS_MAX    64   /* labels of one workload */
#define LABEL_MAX     253  /* bytes of a label key or value */
#define IPS_MAX       16   /* addresses of one workload */
#define SOURCE_MAX    300  /* bytes of a workload's source (RUNTIME:ID or file:PATH) */
#define FACT_MAX      256  /* bytes of os, kernel, agent_version, datapath.reason */

/* A response was set: 1, or the error that kept it from being set. */
static int stop(int err)
{
    return err < 0 ? err : 1;
}

static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > SERVER_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
            return false;
    return true;
}

/* 1 with 400 set when `body` has a key outside `allowed` (NULL-terminated). */
static int known_fields(struct resp *rs, const json_t *body, const char *const *allowed,
                        const char *prefix)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        const char *const *a = allowed;
        while (*a && strcmp(*a, key) != 0)
            a++;
        if (!*a)
            return stop(resp_error(rs, 400, key, "%sunknown field", prefix));
    }
    return 0;
}

/* 0 when `v` is absent or equals `own`; 1 with 403 set otherwise. */
static int own_value(struct resp *rs, const char *what, const char *v, const char *own)
{
    if (!v || strcmp(v, own) == 0)
        return 0;
    return stop(resp_error(rs, 403, what, "this node credential belongs to %s \"%s\"", what, own));
}

/* The credential's cluster and node against the body's and the query's. */
static int own(const struct req *rq, struct resp *rs, const json_t *body)
{
    const char *bc = body ? json_string_value(json_object_get(body, "cluster")) : NULL;
    const char *bn = body ? json_string_value(json_object_get(body, "node")) : NULL;
    int rc = own_value(rs, "cluster", bc, rq->agent_cluster);
    if (!rc)
        rc = own_value(rs, "node", bn, rq->agent_node);
    if (!rc)
        rc = own_value(rs, "cluster", req_query(rq, "cluster"), rq->agent_cluster);
    if (!rc)
        rc = own_value(rs, "node", req_query(rq, "node"), rq->agent_node);
    return rc;
}

/* 1 with 400 set when body[key] is present and not a string of at most `max` bytes. */
static int opt_string(struct resp *rs, const json_t *body, const char *key, size_t max)
{
    const json_t *v = json_object_get(body, key);
    if (v && !json_is_string(v))
        return stop(resp_error(rs, 400, key, "must be a string"));
    if (v && json_string_length(v) > max)
        return stop(resp_error(rs, 400, key, "longer than %zu bytes", max));
    return 0;
}

/* Sets certified, compat_reason and compat_why on a node document from its os and kernel. */
static int node_certify(const struct server *srv, json_t *node)
{
    struct compat_result r = {0};
    const char *os = jstr(node, "os"), *kernel = jstr(node, "kernel");
    const char *reason = "no-table";
    const char *why = "the server has no kernel-support table";
    if (srv->opts.compat) {
        compat_check(srv->opts.compat, os, kernel, &r);
        reason = compat_reason_name(r.reason);
        why = r.certified ? "" : !*os || !*kernel ? "OS or kernel not reported" : r.why;
    }
    if (json_object_set_new(node, "certified", json_boolean(r.certified)) < 0 ||
        json_object_set_new(node, "compat_reason", json_string(reason)) < 0 ||
        json_object_set_new(node, "compat_why", json_string(why)) < 0)
        return -ENOMEM;
    return 0;
}

/* Copies the string fields os, kernel, agent_version given in `body` into `node`. */
static int node_facts(json_t *node, const json_t *body)
{
    static const char *const keys[] = {"os", "kernel", "agent_version"};
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(body, keys[i]);
        if (v && json_object_set(node, keys[i], v) < 0)
            return -ENOMEM;
    }
    return 0;
}

static int set_now(json_t *doc, const char *key)
{
    char now[21];
    time_iso(time(NULL), now);
    return json_object_set_new(doc, key, json_string(now)) < 0 ? -ENOMEM : 0;
}

/* ---- register ------------------------------------------------------------ */

static int register_node(struct req *rq, struct resp *rs, const json_t *body)
{
    struct store *st = &rq->srv->store;
    const char *cluster = jstr(body, "cluster"), *name = jstr(body, "node");
    int64_t join_id = 0, id = 0;
    int err = join_use(rq, rs, cluster, jstr(body, "join_token"), &join_id);
    if (err)
        return err < 0 ? err : 0;
    snprintf(rq->actor, sizeof(rq->actor), "join-token:%lld", (long long)join_id);
    err = st->ops->find(st, STORE_NODE, cluster, name, &id);
    if (!err)
        return resp_error(rs, 409, "node",
                          "node \"%s\" of cluster \"%s\" is registered: an admin must delete it "
                          "first (moat node delete) before another agent may take its name",
                          name, cluster);
    if (err != -ENOENT)
        return err;
    json_t *node =
        json_pack("{s:s,s:s,s:{s:s,s:s},s:i}", "name", name, "cluster", cluster, "datapath",
                  "state", "not_installed", "reason", "", "workload_count", 0);
    char token[AUTH_TOKEN_LEN + 1], hash[AUTH_HASH_LEN + 1];
    err = node && set_now(node, "registered") == 0 ? 0 : -ENOMEM;
    if (!err)
        err = auth_token_new(token);
    if (!err)
        err = auth_hash(token, hash);
    if (!err && (node_facts(node, body) < 0 || node_certify(rq->srv, node) < 0 ||
                 set_now(node, "last_heartbeat") < 0))
        err = -ENOMEM;
    if (!err)
        err = st->ops->insert(st, STORE_NODE, cluster, name, node, &id);
    if (!err) /* the credential: one indexed lookup per request (auth.c) */
        err = st->ops->token_add(st, hash, "agent", id, NULL);
    if (!err &&
        (json_object_set_new(node, "id", json_integer(id)) < 0 || node_show(rq->srv, node) < 0))
        err = -ENOMEM;
    if (!err)
        err = audit_record(rq, "register", "node", cluster, name, id, NULL, node);
    if (!err) {
        effects_node(&rq->fx, id);
        err = resp_json(rs, 201,
                        json_pack("{s:s,s:O,s:i}", "token", token, "node", node,
                                  "heartbeat_interval", rq->srv->opts.heartbeat_interval));
    }
    json_decref(node);
    return err;
}

int api_agents_register(struct req *rq, struct resp *rs)
{
    static const char *const fields[] = {"cluster", "node",          "join_token", "os",
                                         "kernel",  "agent_version", NULL};
    static const size_t max[] = {MOAT_NAME_MAX, SERVER_NAME_MAX, 128, FACT_MAX, FACT_MAX, 64};
    json_t *body;
    int rc = req_body_object(rq, rs, &body);
    if (!rc)
        rc = known_fields(rs, body, fields, "");
    for (size_t i = 0; !rc && fields[i]; i++)
        rc = opt_string(rs, body, fields[i], max[i]);
    if (!rc && !json_object_get(body, "cluster"))
        rc = stop(resp_error(rs, 400, "cluster", "required"));
    if (!rc && !name_ok(jstr(body, "node")))
        rc = stop(resp_error(rs, 400, "node", "required: 1-%d letters, digits, '.', '_', '-'",
                             SERVER_NAME_MAX));
    if (!rc && !json_object_get(body, "join_token"))
        rc = stop(resp_error(rs, 400, "join_token", "required"));
    if (!rc) {
        rc = txn_begin(rq);
        if (!rc)
            rc = txn_end(rq, register_node(rq, rs, body), rs);
    }
    json_decref(body);
    return rc < 0 ? rc : 0;
}

/* ---- heartbeat ----------------------------------------------------------- */

/*
 * datapath.backend (the backend the agent runs: ebpf or iptables) and
 * datapath.probes ({"ebpf": "", "iptables": "missing ..."}: each backend's
 * probe, "" when it can run there), both optional.
 */
#define PROBE_TEXT_MAX 1024

static int backend_fields(struct resp *rs, const json_t *dp)
{
    static const char *const backends[] = {"ebpf", "iptables", NULL};
    const json_t *b = json_object_get(dp, "backend");
    if (b && (!json_is_string(b) || (strcmp(json_string_value(b), "ebpf") != 0 &&
                                     strcmp(json_string_value(b), "iptables") != 0)))
        return stop(resp_error(rs, 400, "datapath.backend", "must be \"ebpf\" or \"iptables\""));
    const json_t *pr = json_object_get(dp, "probes");
    if (pr && !json_is_object(pr))
        return stop(resp_error(rs, 400, "datapath.probes",
                               "must be an object {backend: \"\" or what is missing}"));
    int rc = pr ? known_fields(rs, pr, backends, "datapath.probes: ") : 0;
    for (size_t i = 0; !rc && pr && backends[i]; i++) {
        const json_t *v = json_object_get(pr, backends[i]);
        if (v && (!json_is_string(v) || json_string_length(v) > PROBE_TEXT_MAX))
            rc = stop(resp_error(rs, 400, "datapath.probes",
                                 "%s: must be a string of at most %d bytes", backends[i],
                                 PROBE_TEXT_MAX));
    }
    return rc;
}

/*
 * datapath.detections (the detections the node's backend runs for its
 * cluster: distinct names of SPEC §6) and datapath.detection_gaps ({name:
 * why} for one the cluster enables that does not run, or runs with a
 * difference), both optional.
 */
static int detection_fields(struct resp *rs, const json_t *dp)
{
    static const char *const names[] = {"brute_force", "port_scan",    "dns_hijack",
                                        "spoofing",    "threat_intel", NULL};
    const json_t *d = json_object_get(dp, "detections");
    if (d && (!json_is_array(d) || json_array_size(d) > 5))
        return stop(resp_error(rs, 400, "datapath.detections",
                               "must be an array of at most 5 detection names"));
    size_t i;
    const json_t *v;
    json_array_foreach(d, i, v)
    {
        bool known = false;
        for (size_t k = 0; names[k] && json_is_string(v); k++)
            known |= strcmp(json_string_value(v), names[k]) == 0;
        for (size_t j = 0; known && j < i; j++)
            known = !json_equal(json_array_get(d, j), v);
        if (!known)
            return stop(resp_error(rs, 400, "datapath.detections",
                                   "item %zu: must be a distinct one of brute_force, port_scan, "
                                   "dns_hijack, spoofing, threat_intel",
                                   i));
    }
    const json_t *g = json_object_get(dp, "detection_gaps");
    if (g && !json_is_object(g))
        return stop(resp_error(rs, 400, "datapath.detection_gaps",
                               "must be an object {detection: why it does not run as configured}"));
    int rc = g ? known_fields(rs, g, names, "datapath.detection_gaps: ") : 0;
    const char *k;
    json_object_foreach((json_t *)g, k, v)
    {
        if (!rc && (!json_is_string(v) || json_string_length(v) > PROBE_TEXT_MAX))
            rc = stop(resp_error(rs, 400, "datapath.detection_gaps",
                                 "%s: must be a string of at most %d bytes", k, PROBE_TEXT_MAX));
    }
    return rc;
}

static int heartbeat_body(struct resp *rs, const json_t *body)
{
    static const char *const fields[] = {
        "cluster",         "node",  "os", "kernel", "agent_version", "datapath", "workload_count",
        "policy_revision", "spool", NULL};
    static const char *const dp_fields[] = {"state",      "reason",         "backend", "probes",
                                            "detections", "detection_gaps", NULL};
    static const char *const spool_fields[] = {"pending", "dropped", "dropped_events", NULL};
    static const size_t max[] = {MOAT_NAME_MAX, SERVER_NAME_MAX, FACT_MAX, FACT_MAX, 64};
    int rc = known_fields(rs, body, fields, "");
    for (size_t i = 0; !rc && i < 5; i++)
        rc = opt_string(rs, body, fields[i], max[i]);
    const json_t *dp = json_object_get(body, "datapath");
    if (!rc && dp && !json_is_object(dp))
        rc = stop(resp_error(rs, 400, "datapath", "must be an object {state, reason}"));
    if (!rc && dp)
        rc = known_fields(rs, dp, dp_fields, "datapath: ");
    const char *state = jstr(dp, "state");
    if (!rc && dp && strcmp(state, "enforcing") != 0 && strcmp(state, "unsupported") != 0 &&
        strcmp(state, "not_installed") != 0)
        rc = stop(resp_error(rs, 400, "datapath.state",
                             "must be enforcing, unsupported or not_installed"));
    const json_t *reason = json_object_get(dp, "reason");
    if (!rc && reason && (!json_is_string(reason) || json_string_length(reason) > FACT_MAX))
        rc = stop(resp_error(rs, 400, "datapath.reason", "must be a string of at most %d bytes",
                             FACT_MAX));
    if (!rc && dp)
        rc = backend_fields(rs, dp);
    if (!rc && dp)
        rc = detection_fields(rs, dp);
    const json_t *wc = json_object_get(body, "workload_count");
    if (!rc && wc && (!json_is_integer(wc) || json_integer_value(wc) < 0))
        rc = stop(resp_error(rs, 400, "workload_count", "must be an integer >= 0"));
    const json_t *pr = json_object_get(body, "policy_revision");
    if (!rc && pr && (!json_is_integer(pr) || json_integer_value(pr) < 0))
        rc = stop(resp_error(rs, 400, "policy_revision", "must be an integer >= 0"));
    const json_t *sp = json_object_get(body, "spool");
    if (!rc && sp && !json_is_object(sp))
        rc = stop(resp_error(rs, 400, "spool",
                             "must be an object {pending, dropped, "
                             "dropped_events}"));
    if (!rc && sp)
        rc = known_fields(rs, sp, spool_fields, "spool: ");
    for (size_t i = 0; !rc && sp && spool_fields[i]; i++) {
        const json_t *v = json_object_get(sp, spool_fields[i]);
        if (v && (!json_is_integer(v) || json_integer_value(v) < 0))
            rc = stop(resp_error(rs, 400, spool_fields[i], "spool: must be an integer >= 0"));
    }
    return rc;
}

static int heartbeat(struct req *rq, struct resp *rs, const json_t *body)
{
    struct store *st = &rq->srv->store;
    json_t *node = NULL;
    int err = st->ops->get(st, STORE_NODE, rq->node_id, &node, NULL);
    if (err == -ENOENT)
        return resp_error(rs, 403, "Authorization", "this node was removed");
    json_object_del(node, "id");
    const json_t *dp = json_object_get(body, "datapath");
    const json_t *wc = json_object_get(body, "workload_count");
    if (!err && (node_facts(node, body) < 0 || node_certify(rq->srv, node) < 0 ||
                 set_now(node, "last_heartbeat") < 0))
        err = -ENOMEM;
    json_t *dpn =
        dp ? json_pack("{s:s,s:s}", "state", jstr(dp, "state"), "reason", jstr(dp, "reason"))
           : NULL;
    if (dpn && json_object_get(dp, "backend"))
        json_object_set(dpn, "backend", json_object_get(dp, "backend"));
    static const char *const kept[] = {"probes", "detections", "detection_gaps"};
    for (size_t i = 0; dpn && i < 3; i++)
        if (json_object_get(dp, kept[i]))
            json_object_set(dpn, kept[i], json_object_get(dp, kept[i]));
    if (!err && dp && (!dpn || json_object_set_new(node, "datapath", dpn) < 0))
        err = -ENOMEM;
    else if (err || !dp)
        json_decref(dpn);
    if (!err && wc && json_object_set(node, "workload_count", (json_t *)wc) < 0)
        err = -ENOMEM;
    static const char *const copied[] = {"policy_revision", "spool"};
    for (size_t i = 0; !err && i < 2; i++) {
        json_t *v = json_object_get(body, copied[i]);
        if (v && json_object_set(node, copied[i], v) < 0)
            err = -ENOMEM;
    }
    if (!err)
        err = st->ops->update(st, STORE_NODE, rq->node_id, rq->agent_node, node);
    if (!err)
        effects_node(&rq->fx, rq->node_id);
    if (!err && (json_object_set_new(node, "id", json_integer(rq->node_id)) < 0 ||
                 node_show(rq->srv, node) < 0 ||
                 json_object_set_new(node, "heartbeat_interval",
                                     json_integer(rq->srv->opts.heartbeat_interval)) < 0))
        err = -ENOMEM;
    if (!err)
        err = resp_json(rs, 200, json_incref(node));
    json_decref(node);
    return err;
}

int api_agents_heartbeat(struct req *rq, struct resp *rs)
{
    json_t *body;
    int rc = req_body_object(rq, rs, &body);
    if (!rc)
        rc = own(rq, rs, body);
    if (!rc)
        rc = heartbeat_body(rs, body);
    if (!rc) {
        rc = txn_begin(rq);
        if (!rc)
            rc = txn_end(rq, heartbeat(rq, rs, body), rs);
    }
    json_decref(body);
    return rc < 0 ? rc : 0;
}

/* ---- workloads ----------------------------------------------------------- */

/* Adds {"field": "workloads[i].F", "message": msg} to errs. */
static int wl_error(json_t *errs, size_t i, const char *field, const char *msg)
{
    char f[MOAT_BODY_KEY_MAX + 32];
    snprintf(f, sizeof(f), "workloads[%zu]%s%s", i, *field ? "." : "", field);
    return errs_add(errs, f, "%s", msg);
}

static bool ip_ok(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* The longest a workload's string field may be, in bytes. */
static size_t wl_string_max(const char *field)
{
    return strcmp(field, "image") == 0    ? MOAT_IMAGE_MAX
           : strcmp(field, "source") == 0 ? SOURCE_MAX
                                          : 253;
}

/* Checks one reported workload; problems go to errs. */
static int wl_check(json_t *errs, size_t i, const json_t *w, const struct req *rq)
{
    static const char *const fields[] = {
        "kind",   "cluster", "node",      "name",   "namespace",        "image",
        "labels", "ips",     "interface", "source", "namespace_labels", NULL};
    int err = 0;
    if (!json_is_object(w))
        return wl_error(errs, i, "", "must be an object");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)w, key, v)
    {
        const char *const *a = fields;
        while (*a && strcmp(*a, key) != 0)
            a++;
        if (!err && !*a)
            err = wl_error(errs, i, key, "unknown field");
        else if (!err && strcmp(key, "labels") && strcmp(key, "namespace_labels") &&
                 strcmp(key, "ips") && !json_is_string(v))
            err = wl_error(errs, i, key, "must be a string");
        else if (!err && json_is_string(v) && json_string_length(v) > wl_string_max(key)) {
            char msg[48];
            snprintf(msg, sizeof(msg), "too long (at most %zu bytes)", wl_string_max(key));
            err = wl_error(errs, i, key, msg);
        }
    }
    if (!err && !name_ok(jstr(w, "name")))
        err = wl_error(errs, i, "name", "required: letters, digits, '.', '_', '-'");
    if (!err && !name_ok(jstr(w, "namespace")))
        err = wl_error(errs, i, "namespace", "required: letters, digits, '.', '_', '-'");
    if (!err && json_object_get(w, "kind") && strcmp(jstr(w, "kind"), "Workload") != 0)
        err = wl_error(errs, i, "kind", "must be Workload");
    if (!err && json_object_get(w, "cluster") && strcmp(jstr(w, "cluster"), rq->agent_cluster))
        err = wl_error(errs, i, "cluster", "must be this node's cluster");
    if (!err && json_object_get(w, "node") && strcmp(jstr(w, "node"), rq->agent_node))
        err = wl_error(errs, i, "node", "must be this node");
    static const char *const maps[] = {"labels", "namespace_labels"};
    for (size_t m = 0; !err && m < 2; m++) {
        const json_t *labels = json_object_get(w, maps[m]);
        bool ok = !labels || (json_is_object(labels) && json_object_size(labels) <= LABELS_MAX);
        json_object_foreach((json_t *)labels, key, v) ok = ok && json_is_string(v) &&
                                                           strlen(key) <= LABEL_MAX &&
                                                           json_string_length(v) <= LABEL_MAX;
        if (!ok)
            err = wl_error(errs, i, maps[m],
                           "must be a map of at most 64 strings (keys and values of at most 253 "
                           "bytes)");
    }
    const char *source = jstr(w, "source");
    if (!err && json_object_get(w, "source") && strpbrk(source, " \t\n"))
        err = wl_error(errs, i, "source", "must be RUNTIME:ID or file:PATH (no spaces)");
    const json_t *ips = json_object_get(w, "ips");
    if (!err && ips && (!json_is_array(ips) || json_array_size(ips) > IPS_MAX))
        err = wl_error(errs, i, "ips", "must be a list of at most 16 addresses");
    for (size_t k = 0; !err && json_is_array(ips) && k < json_array_size(ips); k++) {
        const char *ip = json_string_value(json_array_get(ips, k));
        if (!ip || !ip_ok(ip))
            err = wl_error(errs, i, "ips", "holds something that is not an IP address");
    }
    return err;
}

/* The names ("NAMESPACE/NAME") of a list of workloads, for the audit record. */
static json_t *workload_names(const json_t *list)
{
    json_t *names = json_array();
    size_t i;
    const json_t *w;
    json_array_foreach(list, i, w)
    {
        char name[2 * SERVER_NAME_MAX + 2];
        snprintf(name, sizeof(name), "%s/%s", jstr(w, "namespace"), jstr(w, "name"));
        if (names && json_array_append_new(names, json_string(name)) < 0) {
            json_decref(names);
            names = NULL;
        }
    }
    return names;
}

static int audit_workloads(struct req *rq, const json_t *old, const json_t *list)
{
    json_t *before = workload_names(old), *after = workload_names(list);
    int err = before && after ? audit_record(rq, "report", "workloads", rq->agent_cluster,
                                             rq->agent_node, rq->node_id, before, after)
                              : -ENOMEM;
    json_decref(before);
    json_decref(after);
    return err;
}

/* A stored workload by NAMESPACE/NAME, for matching a new report against. */
struct wl_key {
    char key[2 * SERVER_NAME_MAX + 2];
    size_t at;  /* index in the stored list */
    bool taken; /* matched by a reported workload */
};

static int wl_key_cmp(const void *a, const void *b)
{
    return strcmp(((const struct wl_key *)a)->key, ((const struct wl_key *)b)->key);
}

static void wl_key_of(const json_t *w, char *key, size_t n)
{
    snprintf(key, n, "%s/%s", jstr(w, "namespace"), jstr(w, "name"));
}

/*
 * Replaces the node's workloads with `list`. A workload reported again keeps
 * its store id, and is written only when it changed: the policy's deltas by
 * revision (GET /agents/policy?delta=1) then carry only what changed.
 */
static int replace_workloads(struct req *rq, struct resp *rs, const json_t *list)
{
    struct store *st = &rq->srv->store;
    char prefix[SERVER_NAME_MAX + 2]; /* its records' names: "NODE/NAMESPACE/NAME" */
    snprintf(prefix, sizeof(prefix), "%s/", rq->agent_node);
    struct store_query q = {.cluster = rq->agent_cluster, .limit = -1, .name_prefix = prefix};
    q.filters[q.nfilters++] = (struct store_filter){"node", rq->agent_node};
    json_t *old = NULL;
    int64_t total;
    int err = st->ops->list(st, STORE_WORKLOAD, &q, &old, &total);
    if (!err)
        err = audit_workloads(rq, old, list);
    size_t nold = json_array_size(old), nnew = json_array_size(list);
    struct wl_key *keys = err ? NULL : calloc(nold ? nold : 1, sizeof(*keys));
    long *match = err ? NULL : calloc(nnew ? nnew : 1, sizeof(*match));
    if (!err && (!keys || !match))
        err = -ENOMEM;
    for (size_t i = 0; !err && i < nold; i++) {
        wl_key_of(json_array_get(old, i), keys[i].key, sizeof(keys[i].key));
        keys[i].at = i;
    }
    if (!err)
        qsort(keys, nold, sizeof(*keys), wl_key_cmp);
    for (size_t i = 0; !err && i < nnew; i++) {
        struct wl_key k = {.at = 0};
        wl_key_of(json_array_get(list, i), k.key, sizeof(k.key));
        struct wl_key *hit = nold ? bsearch(&k, keys, nold, sizeof(*keys), wl_key_cmp) : NULL;
        match[i] = -1;
        if (hit && hit->taken) {
            free(keys);
            free(match);
            json_decref(old);
            return resp_error(rs, 400, "workloads", "workloads[%zu]: %s is listed twice", i, k.key);
        }
        if (hit) {
            hit->taken = true;
            match[i] = (long)hit->at;
        }
    }
    for (size_t i = 0; !err && i < nold; i++) /* gone from the node */
        if (!keys[i].taken)
            err = st->ops->remove(
                st, STORE_WORKLOAD,
                json_integer_value(json_object_get(json_array_get(old, keys[i].at), "id")));
    for (size_t i = 0; !err && i < nnew; i++) {
        json_t *w = json_deep_copy(json_array_get(list, i));
        char name[3 * SERVER_NAME_MAX + 3];
        int64_t id;
        json_object_del(w, "kind");
        if (!w || json_object_set_new(w, "cluster", json_string(rq->agent_cluster)) < 0 ||
            json_object_set_new(w, "node", json_string(rq->agent_node)) < 0)
            err = -ENOMEM;
        snprintf(name, sizeof(name), "%s/%s/%s", rq->agent_node, jstr(w, "namespace"),
                 jstr(w, "name"));
        json_t *was = !err && match[i] >= 0 ? json_deep_copy(json_array_get(old, match[i])) : NULL;
        int64_t was_id = json_integer_value(json_object_get(was, "id"));
        json_object_del(was, "id");
        if (!err && match[i] >= 0 && !was)
            err = -ENOMEM;
        else if (!err && was && !json_equal(was, w))
            err = st->ops->update(st, STORE_WORKLOAD, was_id, name, w);
        else if (!err && !was)
            err = st->ops->insert(st, STORE_WORKLOAD, rq->agent_cluster, name, w, &id);
        json_decref(was);
        json_decref(w);
        if (err == -EEXIST) {
            free(keys);
            free(match);
            json_decref(old);
            return resp_error(rs, 400, "workloads", "workloads[%zu]: %s is listed twice", i,
                              name + strlen(rq->agent_node) + 1);
        }
    }
    free(keys);
    free(match);
    json_decref(old);
    json_t *node = NULL;
    if (!err)
        err = st->ops->get(st, STORE_NODE, rq->node_id, &node, NULL);
    json_object_del(node, "id");
    if (!err && json_object_set_new(node, "workload_count",
                                    json_integer((json_int_t)json_array_size(list))) < 0)
        err = -ENOMEM;
    if (!err)
        err = st->ops->update(st, STORE_NODE, rq->node_id, rq->agent_node, node);
    json_decref(node);
    if (!err)
        effects_node(&rq->fx, rq->node_id);
    int64_t rev = 0;
    if (!err)
        err = revision_bump(rq, rq->agent_cluster);
    if (!err)
        err = revision_get(rq->srv, rq->agent_cluster, &rev);
    if (!err)
        err = resp_json(rs, 200,
                        json_pack("{s:I,s:I}", "workloads", (json_int_t)json_array_size(list),
                                  "revision", (json_int_t)rev));
    return err;
}

int api_agents_workloads(struct req *rq, struct resp *rs)
{
    static const char *const fields[] = {"cluster", "node", "workloads", NULL};
    json_t *body, *errs = NULL;
    int rc = req_body_object(rq, rs, &body);
    if (!rc)
        rc = own(rq, rs, body);
    if (!rc)
        rc = known_fields(rs, body, fields, "");
    const json_t *list = json_object_get(body, "workloads");
    if (!rc && !json_is_array(list))
        rc = stop(resp_error(rs, 400, "workloads", "required: a list of workloads"));
    if (!rc && json_array_size(list) > WORKLOADS_MAX)
        rc = stop(resp_error(rs, 400, "workloads", "at most %d workloads per node", WORKLOADS_MAX));
    if (!rc && !(errs = json_array()))
        rc = -ENOMEM;
    for (size_t i = 0; !rc && i < json_array_size(list); i++)
        rc = wl_check(errs, i, json_array_get(list, i), rq);
    if (!rc && json_array_size(errs) > 0)
        rc = stop(resp_json(rs, 400, json_pack("{s:O}", "errors", errs)));
    if (!rc) {
        rc = txn_begin(rq);
        if (!rc)
            rc = txn_end(rq, replace_workloads(rq, rs, list), rs);
    }
    json_decref(errs);
    json_decref(body);
    return rc < 0 ? rc : 0;
}

/* ---- policy long-poll ---------------------------------------------------- */

/* A query argument as an integer 0..hi (def when absent); false when it is something else. */
static bool query_int(const struct req *rq, const char *key, int64_t hi, int64_t def, int64_t *out)
{
    const char *s = req_query(rq, key);
    *out = def;
    if (!s)
        return true;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!isdigit((unsigned char)*s) || *end || v < 0 || v > hi)
        return false;
    *out = v;
    return true;
}

/* Every record of kind k (of `cluster`, for kinds that have one). */
static int all(struct store *st, enum store_kind k, const char *cluster, json_t **items)
{
    struct store_query q = {.cluster = cluster, .limit = -1};
    int64_t total;
    return st->ops->list(st, k, &q, items, &total);
}

static int policy_body(struct req *rq, int64_t rev, json_t **out)
{
    struct store *st = &rq->srv->store;
    const char *c = rq->agent_cluster;
    json_t *cluster = NULL, *objects = NULL, *rules = NULL, *workloads = NULL;
    int64_t id;
    int err = st->ops->find(st, STORE_CLUSTER, NULL, c, &id);
    if (!err)
        err = st->ops->get(st, STORE_CLUSTER, id, &cluster, NULL);
    if (!err && json_object_set_new(cluster, "id", json_string(c)) < 0)
        err = -ENOMEM;
    if (!err)
        err = all(st, STORE_OBJECT, NULL, &objects);
    for (size_t i = 0; !err && i < json_array_size(objects);) {
        const json_t *oc = json_object_get(json_array_get(objects, i), "cluster");
        if (oc && strcmp(json_string_value(oc) ? json_string_value(oc) : "", c) != 0)
            json_array_remove(objects, i); /* restricted to another cluster */
        else
            i++;
    }
    if (!err)
        err = all(st, STORE_RULE, c, &rules);
    if (!err)
        err = all(st, STORE_WORKLOAD, c, &workloads);
    if (!err) {
        *out = json_pack("{s:I,s:O,s:O,s:O,s:O}", "revision", (json_int_t)rev, "cluster", cluster,
                         "objects", objects, "rules", rules, "workloads", workloads);
        if (!*out)
            err = -ENOMEM;
    }
    if (!err)
        err = detect_policy_fields(st, c, *out);
    json_decref(cluster);
    json_decref(objects);
    json_decref(rules);
    json_decref(workloads);
    return err;
}

/*
 * Delta answers (GET /agents/policy?delta=1). Each cluster's cache entry
 * keeps the newest snapshot it built (its text is the shared full answer,
 * with every record's span; polbuild.h builds the next one from it at the
 * cost of the records whose stored text changed) and the record changes
 * between the snapshots it built, by exact comparison of their texts:
 * whatever write moved the revision, the change is what the agents would
 * see in two full answers. A
 * snapshot is read in one store transaction with the revision it is
 * labelled with, and that revision moves in the transaction of every write
 * the answer shows, so a label names one content on every replica; a delta
 * is answered only from a revision this process built a snapshot of, and
 * otherwise the full answer (always correct) goes out. Bounds
 * (docs/server.md): HIST_STEPS snapshots, HIST_BYTES of changed records per
 * cluster; a delta above DELTA_MAX or half the full answer is answered in
 * full; DELTA_CACHED deltas per cluster are kept for its newest revision.
 */
#define HIST_STEPS   1000
#define HIST_BYTES   ((size_t)32 << 20)
#define DELTA_MAX    ((size_t)8 << 20)
#define DELTA_CACHED 8
#define BUILD_WAIT_S 5.0 /* a request that finds the answer being built waits up to (woken) */

struct delta_cached {
    int64_t since;
    struct shared_text *text; /* NULL: answered in full */
};

struct policy_hist {
    int64_t cluster_id;
    struct shared_text *text; /* the newest snapshot's full answer (a reference) */
    struct delta_snap snap;   /* its records, spans into text */
    struct delta_log log;
    struct delta_cached cached[DELTA_CACHED]; /* for snap.revision */
    size_t ncached, next;
};

static void hist_uncache(struct policy_hist *h)
{
    for (size_t i = 0; i < h->ncached; i++)
        shared_text_unref(h->cached[i].text);
    h->ncached = h->next = 0;
}

static void hist_free(struct policy_hist *h)
{
    if (!h)
        return;
    hist_uncache(h);
    delta_log_clear(&h->log);
    delta_snap_free(&h->snap);
    shared_text_unref(h->text);
    free(h);
}

/* Takes the new snapshot `snap` (of full answer `t`) into the history. Under cache_lock. */
static void hist_take(struct policy_cache *c, int64_t cluster_id, struct shared_text *t,
                      struct delta_snap *snap)
{
    struct policy_hist *h = c->hist;
    if (h && h->cluster_id != cluster_id) { /* deleted and made again: another history */
        hist_free(h);
        h = c->hist = NULL;
    }
    if (!h && (h = c->hist = calloc(1, sizeof(*h)))) {
        h->cluster_id = cluster_id;
        h->log.max_steps = HIST_STEPS;
        h->log.max_bytes = HIST_BYTES;
    }
    if (!h || (h->text && snap->revision <= h->snap.revision)) {
        delta_snap_free(snap); /* the same revision again, or an older read: nothing new */
        return;
    }
    if (h->text && delta_log_add(&h->log, &h->snap, snap) < 0)
        fprintf(stderr, "moat-server: policy history of %s: out of memory, starts again\n",
                c->cluster);
    hist_uncache(h);
    delta_snap_free(&h->snap);
    shared_text_unref(h->text);
    h->snap = *snap;
    h->text = shared_text_ref(t);
}

/* The cluster's cache entry (made empty when missing); NULL on OOM. Under server.cache_lock. */
static struct policy_cache *cache_entry(struct server *srv, const char *cluster)
{
    struct policy_cache *c = srv->policy_cache;
    while (c && strcmp(c->cluster, cluster) != 0)
        c = c->next;
    if (!c && (c = calloc(1, sizeof(*c)))) {
        snprintf(c->cluster, sizeof(c->cluster), "%s", cluster);
        snprintf(c->build_key, sizeof(c->build_key), "#build:%s", cluster);
        c->next = srv->policy_cache;
        srv->policy_cache = c;
    }
    return c;
}

/*
 * MOAT_POLICY_VERIFY=1 (tests): every answer built from the last one is
 * compared with one built from scratch (every record read, parsed and
 * dumped, as before polbuild), and the server says on stderr which it was:
 * "policy verify: ... same" or "... DIFFERS at byte N" (the scratch one is
 * then served). A write the incremental build missed shows there.
 */
static void verify_build(struct req *rq, int64_t rev, struct shared_text **t)
{
    json_t *body = NULL;
    size_t len;
    const char *have = shared_text_bytes(*t, &len);
    int err = policy_body(rq, rev, &body);
    char *want = err ? NULL : json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!want) {
        fprintf(stderr, "moat-server: policy verify: %s revision %lld: no scratch build (%d)\n",
                rq->agent_cluster, (long long)rev, err);
        return;
    }
    size_t wlen = strlen(want), at = 0;
    while (at < len && at < wlen && have[at] == want[at])
        at++;
    if (at == len && at == wlen) {
        fprintf(stderr, "moat-server: policy verify: %s revision %lld: same (%zu bytes)\n",
                rq->agent_cluster, (long long)rev, len);
    } else {
        fprintf(stderr, "moat-server: policy verify: %s revision %lld: DIFFERS at byte %zu\n",
                rq->agent_cluster, (long long)rev, at);
        struct shared_text *w = shared_text_new(want, wlen);
        if (w) {
            shared_text_unref(*t);
            *t = w;
        }
    }
    free(want);
}

static bool verifying(void)
{
    const char *v = getenv("MOAT_POLICY_VERIFY");
    return v && strcmp(v, "1") == 0;
}

/*
 * Makes sure the cluster's entry holds the policy at revision `rev` or
 * newer, built once per revision: every agent of the cluster gets the same
 * shared text. A hit reads nothing from the store. The first to ask for a
 * newer revision builds it, without the lock, from the store and the last
 * build's records (polbuild.h: only the records that changed are parsed);
 * other requests, and other clusters, go on meanwhile. Called and returns
 * with cache_lock held; *out is the entry. 0, 1 when another request is
 * building it (ask again soon), or -errno.
 */
static int current_answer(struct req *rq, int64_t rev, struct policy_cache **out)
{
    struct server *srv = rq->srv;
    struct store *st = &srv->store;
    struct policy_cache *c = cache_entry(srv, rq->agent_cluster);
    *out = c;
    if (!c)
        return -ENOMEM;
    if (c->text && c->revision >= rev)
        return 0;
    if (c->building)
        return 1;
    c->building = true;
    uint64_t gen = c->generation;
    struct pol_recs *prev = c->recs, *next = NULL; /* the builder's alone until it is done */
    c->recs = NULL;
    pthread_mutex_unlock(&srv->cache_lock);
    int64_t now, id;
    struct delta_buf buf = {0};
    struct delta_snap snap = {0};
    struct pol_stats stats;
    double t0 = watch_now();
    int err = st->ops->find(st, STORE_CLUSTER, NULL, rq->agent_cluster, &id);
    if (!err)
        err = revision_get(srv, rq->agent_cluster, &now); /* the snapshot's */
    if (!err)
        err = pol_build(st, rq->agent_cluster, now, prev, &buf, &snap, &next, &stats);
    pol_recs_free(prev);
    struct shared_text *t = err || !buf.p ? NULL : shared_text_take(buf.p, buf.len);
    if (!t)
        free(buf.p);
    if (!err && !t)
        err = -ENOMEM;
    if (!err) {
        __atomic_add_fetch(&srv->policy_builds, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&srv->policy_build_us, (uint64_t)((watch_now() - t0) * 1e6),
                           __ATOMIC_RELAXED);
        __atomic_add_fetch(&srv->policy_parsed, stats.parsed, __ATOMIC_RELAXED);
        __atomic_add_fetch(&srv->policy_reused, stats.reused, __ATOMIC_RELAXED);
        size_t len;
        snap.text = shared_text_bytes(t, &len);
        pol_recs_bind(next, t);
        if (verifying()) {
            struct shared_text *was = t;
            verify_build(rq, now, &t);
            if (t != was) { /* not the text the snapshot and records are of: start again */
                delta_snap_free(&snap);
                pol_recs_free(next);
                next = NULL;
            }
        }
    }
    pthread_mutex_lock(&srv->cache_lock);
    c->building = false;
    watch_wake(srv->watch, c->build_key); /* who waits for this build looks again */
    if (!err && c->generation != gen) {   /* forgotten meanwhile (the cluster went) */
        shared_text_unref(t);
        delta_snap_free(&snap);
        pol_recs_free(next);
        return 1;
    }
    if (err) {
        delta_snap_free(&snap);
        pol_recs_free(next);
        return err;
    }
    shared_text_unref(c->text);
    c->text = t;
    c->revision = now;
    c->cluster_id = id;
    c->recs = next;
    if (snap.text)
        hist_take(c, id, t, &snap);
    else
        delta_snap_free(&snap);
    return 0;
}

/* The delta since `since` to the entry's revision (a new reference), or NULL: answer in full. */
static struct shared_text *delta_text(struct policy_cache *c, int64_t since)
{
    struct policy_hist *h = c->hist;
    if (!h || !h->text || h->cluster_id != c->cluster_id || h->snap.revision != c->revision ||
        since <= 0 || since >= c->revision)
        return NULL;
    for (size_t i = 0; i < h->ncached; i++)
        if (h->cached[i].since == since)
            return shared_text_ref(h->cached[i].text);
    size_t full_len;
    shared_text_bytes(c->text, &full_len);
    size_t max = full_len / 2 < DELTA_MAX ? full_len / 2 : DELTA_MAX;
    struct delta_buf buf = {0};
    int err = delta_answer(&h->log, &h->snap, since, max, &buf);
    struct shared_text *t = err ? NULL : shared_text_new(buf.p, buf.len);
    free(buf.p);
    if (err == -ENOMEM || (!err && !t))
        return NULL; /* not kept: the next ask tries again */
    struct delta_cached *slot = &h->cached[h->next];
    if (h->ncached < DELTA_CACHED)
        h->ncached++;
    else
        shared_text_unref(slot->text);
    *slot = (struct delta_cached){since, t};
    h->next = (h->next + 1) % DELTA_CACHED;
    return shared_text_ref(t);
}

/* The full answer with "delta": false first: `{"delta":false,` then the shared text after its `{`.
 */
static const char full_head[] = "{\"delta\":false,";
#define FULL_HEAD_LEN (sizeof(full_head) - 1)

static ssize_t full_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    size_t len, n = 0;
    const char *text = shared_text_bytes(cls, &len);
    size_t total = FULL_HEAD_LEN + len - 1;
    if (pos >= total)
        return MHD_CONTENT_READER_END_OF_STREAM;
    while (n < max && pos + n < total) {
        size_t at = (size_t)pos + n, chunk;
        const char *from;
        if (at < FULL_HEAD_LEN) {
            from = full_head + at;
            chunk = FULL_HEAD_LEN - at;
        } else {
            from = text + 1 + (at - FULL_HEAD_LEN);
            chunk = total - at;
        }
        if (chunk > max - n)
            chunk = max - n;
        memcpy(buf + n, from, chunk);
        n += chunk;
    }
    return (ssize_t)n;
}

static void full_release(void *cls)
{
    shared_text_unref(cls);
}

static int full_marked(struct resp *rs, struct shared_text *t)
{
    size_t len;
    shared_text_bytes(t, &len);
    if (len < 2) {
        shared_text_unref(t);
        return -EINVAL;
    }
    rs->mhd = MHD_create_response_from_callback(FULL_HEAD_LEN + len - 1, 64 * 1024, full_read, t,
                                                full_release);
    if (!rs->mhd) {
        shared_text_unref(t);
        return -ENOMEM;
    }
    MHD_add_response_header(rs->mhd, "Content-Type", "application/json");
    return 0;
}

/* Answers with the policy at `rev` or newer: in full, or (delta) the changes since `since`. */
static int cached_answer(struct req *rq, int64_t rev, bool delta, int64_t since, struct resp *rs)
{
    struct server *srv = rq->srv;
    struct policy_cache *c = NULL;
    struct shared_text *full = NULL, *d = NULL;
    pthread_mutex_lock(&srv->cache_lock);
    int err = current_answer(rq, rev, &c);
    if (!err) {
        full = shared_text_ref(c->text);
        d = delta ? delta_text(c, since) : NULL;
    }
    pthread_mutex_unlock(&srv->cache_lock);
    if (err == 1) { /* another request builds it: this connection waits (not its thread)
                     * until the builder is done and wakes the entry's build key (entries
                     * live as long as the server, so the key does) */
        rs->wait_key = c->build_key;
        rs->wait_until = watch_now() + BUILD_WAIT_S;
        return 0;
    }
    if (err)
        return err;
    rs->status = 200;
    if (!delta) {
        rs->shared = full;
        return 0;
    }
    if (d) {
        shared_text_unref(full);
        rs->shared = d;
        return 0;
    }
    return full_marked(rs, full);
}

void agents_cache_forget(struct server *srv, const char *cluster)
{
    pthread_mutex_lock(&srv->cache_lock);
    for (struct policy_cache *c = srv->policy_cache; c; c = c->next)
        if (strcmp(c->cluster, cluster) == 0) {
            shared_text_unref(c->text);
            c->text = NULL;
            c->revision = 0;
            hist_free(c->hist); /* the cluster is gone: so are its deltas */
            c->hist = NULL;
            pol_recs_free(c->recs);
            c->recs = NULL;
            c->generation++;
        }
    pthread_mutex_unlock(&srv->cache_lock);
}

int api_agents_policy(struct req *rq, struct resp *rs)
{
    static const char *const args[] = {"revision", "wait", "delta", "cluster", "node", NULL};
    struct store_query q = {0};
    int64_t since, wait, delta;
    int rc = req_query_check(rq, rs, args, false, &q);
    if (!rc)
        rc = own(rq, rs, NULL);
    if (!rc && !query_int(rq, "revision", INT64_MAX / 2, 0, &since))
        rc = stop(resp_error(rs, 400, "revision", "must be an integer >= 0"));
    if (!rc && !query_int(rq, "wait", POLL_WAIT_MAX, 0, &wait))
        rc = stop(resp_error(rs, 400, "wait", "must be an integer 0..%d", POLL_WAIT_MAX));
    if (!rc && !query_int(rq, "delta", 1, 0, &delta))
        rc = stop(resp_error(rs, 400, "delta", "must be 0 or 1"));
    if (rc)
        return rc < 0 ? rc : 0;
    double now = watch_now();
    if (!rq->resumed)
        rq->deadline = now + (double)wait;
    int64_t rev = fleet_revision(rq->srv->fleet, rq->agent_cluster);
    if (rev <= since && now < rq->deadline && !rq->srv->stopping) {
        rs->wait_key = rq->agent_cluster; /* suspended until it moves (watch.h) */
        return 0;
    }
    if (rev <= since) {
        rs->status = 304; /* nothing newer */
        return 0;
    }
    int err = cached_answer(rq, rev, delta == 1, since, rs);
    if (err == -ENOENT)
        return resp_error(rs, 403, "cluster", "cluster \"%s\" no longer exists", rq->agent_cluster);
    return err;
}

void agents_cache_free(struct server *srv)
{
    while (srv->policy_cache) {
        struct policy_cache *c = srv->policy_cache;
        srv->policy_cache = c->next;
        shared_text_unref(c->text);
        hist_free(c->hist);
        pol_recs_free(c->recs);
        free(c);
    }
}
