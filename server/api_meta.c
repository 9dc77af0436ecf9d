/*
 * api_meta: routes about the server itself — /healthz (no token) and
 * /metrics (a viewer token, or none with --metrics-public: it names clusters
 * and counts nodes). /metrics adds what the fleet's index knows to the
 * request metrics: agents online, each cluster's policy revision, and the
 * long-polls waiting now.
 */
#include "fleet.h"
#include "server.h"
#include "watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int api_health(struct req *rq, struct resp *rs)
{
    (void)rq;
    return resp_json(rs, 200, json_pack("{s:s}", "status", "ok"));
}

/* The fleet's gauges as Prometheus text into f (no store read: O(clusters)). */
static int store_gauges(struct server *srv, FILE *f)
{
    fprintf(f,
            "# HELP moat_agents_online Nodes whose agent sent a heartbeat recently.\n"
            "# TYPE moat_agents_online gauge\nmoat_agents_online %lld\n",
            (long long)fleet_online(srv));
    fprintf(f, "# HELP moat_cluster_revision The policy revision of each cluster.\n"
               "# TYPE moat_cluster_revision gauge\n");
    fleet_revisions_print(srv->fleet, f);
    fprintf(
        f,
        "# HELP moat_long_polls Long-polls waiting now (agents' policy, consoles' change feed).\n"
        "# TYPE moat_long_polls gauge\nmoat_long_polls %zu\n",
        watch_waiting(srv->watch));
    fprintf(f,
            "# HELP moat_write_retries_total Groups of writes run again after they conflicted "
            "with another replica's.\n"
            "# TYPE moat_write_retries_total counter\nmoat_write_retries_total %llu\n",
            (unsigned long long)__atomic_load_n(&srv->write_retries, __ATOMIC_RELAXED));
    return 0;
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
