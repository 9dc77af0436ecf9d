/*
 * api_meta: routes about the server itself — /healthz and /metrics (no token
 * needed). /metrics adds what the store knows to the request metrics:
 * agents online and each cluster's policy revision.
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int api_health(struct req *rq, struct resp *rs)
{
    (void)rq;
    return resp_json(rs, 200, json_pack("{s:s}", "status", "ok"));
}

/* The store's gauges as Prometheus text into f. */
static int store_gauges(struct server *srv, FILE *f)
{
    struct store *st = &srv->store;
    struct store_query q = {.limit = -1};
    json_t *nodes = NULL, *clusters = NULL;
    int64_t total;
    int err = st->ops->list(st, STORE_NODE, &q, &nodes, &total);
    int64_t online = 0;
    for (size_t i = 0; !err && i < json_array_size(nodes); i++) {
        json_t *n = json_array_get(nodes, i);
        err = node_show(srv, n);
        online += !err && strcmp(jstr(n, "state"), "offline") != 0;
    }
    fprintf(f,
            "# HELP moat_agents_online Nodes whose agent sent a heartbeat recently.\n"
            "# TYPE moat_agents_online gauge\nmoat_agents_online %lld\n",
            (long long)online);
    if (!err)
        err = st->ops->list(st, STORE_CLUSTER, &q, &clusters, &total);
    fprintf(f, "# HELP moat_cluster_revision The policy revision of each cluster.\n"
               "# TYPE moat_cluster_revision gauge\n");
    for (size_t i = 0; !err && i < json_array_size(clusters); i++) {
        const char *name = jstr(json_array_get(clusters, i), "name");
        int64_t rev;
        err = revision_get(srv, name, &rev);
        if (!err)
            fprintf(f, "moat_cluster_revision{cluster=\"%s\"} %lld\n", name, (long long)rev);
    }
    json_decref(nodes);
    json_decref(clusters);
    return err;
}

int api_metrics(struct req *rq, struct resp *rs)
{
    char *extra = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&extra, &len);
    if (!f)
        return -ENOMEM;
    int err = store_gauges(rq->srv, f);
    if (fclose(f) != 0 && !err)
        err = -ENOMEM;
    if (!err) {
        rs->text = metrics_render(&rq->srv->metrics, extra);
        err = rs->text ? 0 : -ENOMEM;
    }
    free(extra);
    if (err)
        return err;
    rs->status = 200;
    rs->ctype = "text/plain; version=0.0.4";
    return 0;
}
