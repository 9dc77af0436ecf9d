/*
 * api_nodes: /api/v1/nodes and /api/v1/workloads — what agents reported
 * (SPEC 4, 9) — and the states derived from it: a node's datapath state
 * (offline after three missed heartbeats, outdated below the minimum agent
 * version, else what the agent reported) and a cluster's health
 * (normal / abnormal / unknown).
 */
#include "server.h"

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

int node_show(const struct server *srv, json_t *node)
{
    json_object_del(node, "token_sha256");
    const json_t *dp = json_object_get(node, "datapath");
    const char *state = jstr(dp, "state");
    const char *reason = jstr(dp, "reason");
    char why[160];
    time_t hb;
    time_t now = time(NULL);
    if (!*state)
        state = "not_installed";
    if (!time_parse(jstr(node, "last_heartbeat"), &hb) ||
        now - hb > 3 * (time_t)srv->opts.heartbeat_interval) {
        state = "offline";
        snprintf(why, sizeof(why), "no heartbeat for %d s", 3 * srv->opts.heartbeat_interval);
        reason = why;
    } else if (version_cmp(jstr(node, "agent_version"), srv->opts.min_agent_version) < 0) {
        state = "outdated";
        snprintf(why, sizeof(why), "agent version below %s", srv->opts.min_agent_version);
        reason = why;
    }
    if (json_object_set_new(node, "state", json_string(state)) < 0 ||
        json_object_set_new(node, "reason", json_string(reason)) < 0)
        return -ENOMEM;
    return 0;
}

int cluster_health(struct server *srv, const char *cluster, json_t *out)
{
    struct store_query q = {.cluster = cluster, .limit = -1};
    json_t *items;
    int64_t total;
    int err = srv->store.ops->list(&srv->store, STORE_NODE, &q, &items, &total);
    if (err)
        return err;
    json_t *bad = json_array();
    int64_t enforcing = 0;
    for (size_t i = 0; !err && bad && i < json_array_size(items); i++) {
        json_t *n = json_array_get(items, i);
        err = node_show(srv, n);
        if (!err && strcmp(jstr(n, "state"), "enforcing") == 0)
            enforcing++;
        else if (!err && json_array_append_new(
                             bad, json_pack("{s:s,s:s,s:s}", "name", jstr(n, "name"), "state",
                                            jstr(n, "state"), "reason", jstr(n, "reason"))) < 0)
            err = -ENOMEM;
    }
    json_decref(items);
    const char *status = total == 0 ? "unknown" : enforcing == total ? "normal" : "abnormal";
    if (!err && (!bad || json_object_set_new(out, "status", json_string(status)) < 0 ||
                 json_object_set_new(out, "nodes", json_integer(total)) < 0 ||
                 json_object_set_new(out, "enforcing", json_integer(enforcing)) < 0 ||
                 json_object_set_new(out, "abnormal_nodes", json_incref(bad)) < 0))
        err = -ENOMEM;
    json_decref(bad);
    return err;
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
