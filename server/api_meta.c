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
    fprintf(f,
            "# HELP moat_policy_builds_total Policy answers built (one per cluster revision "
            "asked for).\n"
            "# TYPE moat_policy_builds_total counter\nmoat_policy_builds_total %llu\n"
            "# HELP moat_policy_build_seconds_total Time spent building them.\n"
            "# TYPE moat_policy_build_seconds_total counter\n"
            "moat_policy_build_seconds_total %.6f\n"
            "# HELP moat_policy_records_parsed_total Records parsed for them (changed since the "
            "last build).\n"
            "# TYPE moat_policy_records_parsed_total counter\n"
            "moat_policy_records_parsed_total %llu\n"
            "# HELP moat_policy_records_reused_total Records taken from the last answer "
            "unchanged.\n"
            "# TYPE moat_policy_records_reused_total counter\n"
            "moat_policy_records_reused_total %llu\n",
            (unsigned long long)__atomic_load_n(&srv->policy_builds, __ATOMIC_RELAXED),
            (double)__atomic_load_n(&srv->policy_build_us, __ATOMIC_RELAXED) / 1e6,
            (unsigned long long)__atomic_load_n(&srv->policy_parsed, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&srv->policy_reused, __ATOMIC_RELAXED));
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
