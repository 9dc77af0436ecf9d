/*
 * api_nodes: /api/v1/nodes and /api/v1/workloads — what agents reported
 * (SPEC 4, 9) — and the states derived from it: a node's datapath state
 * (offline after three missed heartbeats, outdated below the minimum agent
 * version, else what the agent reported) and a cluster's health
 * (normal / abnormal / unknown).
 */
#include "audit.h"
#include "fleet.h"
#include "server.h"
#include "writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const node_filters[] = {"cluster", "name", NULL};
static const char *const workload_filters[] = {"cluster", "node", "namespace", "name", NULL};

/* Compares dotted versions by their numeric parts: <0, 0, >0. */
static int version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        char *ea, *eb;
        unsigned long x = strtoul(a, &ea, 10), y = strtoul(b, &eb, 10);
        if (x != y)
            return x < y ? -1 : 1;
        if (ea == a && eb == b)
            break;
        a = *ea == '.' ? ea + 1 : ea;
        b = *eb == '.' ? eb + 1 : eb;
        if (ea == a && eb == b)
            break;
    }
    return 0;
}

bool node_outdated(const struct server *srv, const char *agent_version)
{
    return version_cmp(agent_version, srv->opts.min_agent_version) < 0;
}

const char *node_state(const struct server *srv, time_t heartbeat, const char *agent_version,
                       const char *reported, const char *reported_reason, char *reason, size_t n)
{
    const char *state = *reported ? reported : "not_installed";
    if (!heartbeat || time(NULL) - heartbeat > 3 * (time_t)srv->opts.heartbeat_interval) {
        snprintf(reason, n, "no heartbeat for %d s", 3 * srv->opts.heartbeat_interval);
        return "offline";
    }
    if (node_outdated(srv, agent_version)) {
        snprintf(reason, n, "agent version below %s", srv->opts.min_agent_version);
        return "outdated";
    }
    snprintf(reason, n, "%s", reported_reason);
    return state;
}

int node_show(const struct server *srv, json_t *node)
{
    const json_t *dp = json_object_get(node, "datapath");
    char reason[512];
    time_t hb;
    if (!time_parse(jstr(node, "last_heartbeat"), &hb))
        hb = 0;
    const char *state = node_state(srv, hb, jstr(node, "agent_version"), jstr(dp, "state"),
                                   jstr(dp, "reason"), reason, sizeof(reason));
    if (json_object_set_new(node, "state", json_string(state)) < 0 ||
        json_object_set_new(node, "reason", json_string(reason)) < 0)
        return -ENOMEM;
    return 0;
}

int cluster_health(struct server *srv, const char *cluster, json_t *out)
{
    return fleet_health(srv, cluster, out, NULL, NULL);
}

int api_nodes_list(struct req *rq, struct resp *rs)
{
    struct store_query q = {0};
    int rc = req_query_check(rq, rs, node_filters, true, &q); /* documents hold `cluster` */
    if (rc)
        return rc < 0 ? rc : 0;
    json_t *items;
    int64_t total;
    int err = rq->srv->store.ops->list(&rq->srv->store, STORE_NODE, &q, &items, &total);
    for (size_t i = 0; !err && i < json_array_size(items); i++)
        err = node_show(rq->srv, json_array_get(items, i));
    if (err) {
        json_decref(items);
        return err;
    }
    return resp_json(rs, 200, list_body(items, total));
}

int api_nodes_get(struct req *rq, struct resp *rs)
{
    int64_t id;
    json_t *doc = NULL;
    int err = req_param_id(rq, 0, &id)
                  ? rq->srv->store.ops->get(&rq->srv->store, STORE_NODE, id, &doc, NULL)
                  : -ENOENT;
    if (err == -ENOENT)
        return resp_error(rs, 404, "", "no node %s", rq->params[0]);
    if (!err)
        err = node_show(rq->srv, doc);
    if (err) {
        json_decref(doc);
        return err;
    }
    return resp_json(rs, 200, doc);
}

int api_workloads_list(struct req *rq, struct resp *rs)
{
    struct store_query q = {0};
    int rc = req_query_check(rq, rs, workload_filters, true, &q); /* documents hold `cluster` */
    if (rc)
        return rc < 0 ? rc : 0;
    json_t *items;
    int64_t total;
    int err = rq->srv->store.ops->list(&rq->srv->store, STORE_WORKLOAD, &q, &items, &total);
    return err ? err : resp_json(rs, 200, list_body(items, total));
}

/*
 * DELETE /nodes/{id}: the node goes with its credential (tokens of the node
 * record) and its workloads; its cluster's revision moves, so the other
 * agents stop counting its workloads. Its name is free for a new
 * registration after this.
 */
static int delete_node(struct req *rq, struct resp *rs)
{
    struct store *st = &rq->srv->store;
    int64_t id;
    json_t *doc = NULL, *wls = NULL;
    char *cluster = NULL;
    int err = req_param_id(rq, 0, &id) ? st->ops->get(st, STORE_NODE, id, &doc, &cluster) : -ENOENT;
    if (err == -ENOENT)
        return resp_error(rs, 404, "", "no node %s", rq->params[0]);
    char prefix[SERVER_NAME_MAX + 2]; /* its workloads' names: "NODE/NAMESPACE/NAME" */
    snprintf(prefix, sizeof(prefix), "%s/", jstr(doc, "name"));
    struct store_query q = {.cluster = cluster, .limit = -1, .name_prefix = prefix};
    q.filters[q.nfilters++] = (struct store_filter){"node", jstr(doc, "name")};
    int64_t total = 0;
    if (!err)
        err = st->ops->list(st, STORE_WORKLOAD, &q, &wls, &total);
    for (size_t i = 0; !err && i < json_array_size(wls); i++)
        err = st->ops->remove(st, STORE_WORKLOAD,
                              json_integer_value(json_object_get(json_array_get(wls, i), "id")));
    if (!err) /* what it held in quarantine is no longer spread */
        err = detect_node_forget(st, cluster, jstr(doc, "name"));
    if (!err)
        err = st->ops->remove(st, STORE_NODE, id); /* its credential goes with it */
    if (!err)
        err = revision_bump(rq, cluster);
    if (!err && node_show(rq->srv, doc) < 0)
        err = -ENOMEM;
    if (!err)
        err = audit_record(rq, "delete", "node", cluster, jstr(doc, "name"), id, doc, NULL);
    if (!err) {
        effects_node(&rq->fx, id);
        rq->fx.revoked = true;
        err = resp_json(
            rs, 200, json_pack("{s:O,s:I}", "node", doc, "workloads_removed", (json_int_t)total));
    }
    json_decref(wls);
    json_decref(doc);
    free(cluster);
    return err;
}

int api_nodes_delete(struct req *rq, struct resp *rs)
{
    int err = txn_begin(rq);
    if (!err)
        err = txn_end(rq, delete_node(rq, rs), rs);
    return err;
}
