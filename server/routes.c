/*
 * routes: the one table of moat-server's HTTP routes — method, path pattern,
 * handler, the role it needs, a summary. Dispatch, `moat-server routes`, the
 * metrics labels and the OpenAPI check (tests/api) all read this table.
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define V1 "/api/v1"

/* Routes leave out what they do not need: ROUTE_BY_METHOD (GET reads, other methods
 * write), no `prepare`, the default body bounds, no query arguments. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static const struct route table[] = {
    {"GET", "/healthz", api_health, ROLE_NONE, "liveness"},
    {"GET", "/metrics", api_metrics, ROLE_VIEWER,
     "Prometheus metrics (no token needed with --metrics-public)"},
    {"GET", V1 "/clusters", api_clusters_list, ROLE_VIEWER, "list clusters", .query_own = true},
    {"POST", V1 "/clusters", api_clusters_create, ROLE_ADMIN, "create a cluster"},
    {"GET", V1 "/clusters/{cluster}", api_clusters_get, ROLE_VIEWER, "get a cluster"},
    {"PUT", V1 "/clusters/{cluster}", api_clusters_replace, ROLE_ADMIN, "replace a cluster"},
    {"PATCH", V1 "/clusters/{cluster}", api_clusters_patch, ROLE_ADMIN, "change a cluster"},
    {"DELETE", V1 "/clusters/{cluster}", api_clusters_delete, ROLE_ADMIN, "delete a cluster"},
    {"POST", V1 "/clusters/batch", api_clusters_batch, ROLE_ADMIN,
     "switch defense on or off for many clusters"},
    {"GET", V1 "/objects", api_objects_list, ROLE_VIEWER, "list network objects",
     .query_own = true},
    {"POST", V1 "/objects", api_objects_create, ROLE_ADMIN, "create a network object"},
    {"GET", V1 "/objects/{id}", api_objects_get, ROLE_VIEWER, "get a network object"},
    {"PUT", V1 "/objects/{id}", api_objects_replace, ROLE_ADMIN, "replace a network object"},
    {"PATCH", V1 "/objects/{id}", api_objects_patch, ROLE_ADMIN, "change a network object"},
    {"DELETE", V1 "/objects/{id}", api_objects_delete, ROLE_ADMIN, "delete a network object"},
    {"POST", V1 "/objects/batch", api_objects_batch, ROLE_ADMIN, "delete network objects"},
    {"GET", V1 "/clusters/{cluster}/rules", api_rules_list, ROLE_VIEWER, "list rules",
     .query_own = true},
    {"POST", V1 "/clusters/{cluster}/rules", api_rules_create, ROLE_ADMIN, "create a rule"},
    {"POST", V1 "/clusters/{cluster}/rules/batch", api_rules_batch, ROLE_ADMIN,
     "enable or disable rules"},
    {"GET", V1 "/clusters/{cluster}/rules/{id}", api_rules_get, ROLE_VIEWER, "get a rule"},
    {"PUT", V1 "/clusters/{cluster}/rules/{id}", api_rules_replace, ROLE_ADMIN, "replace a rule"},
    {"PATCH", V1 "/clusters/{cluster}/rules/{id}", api_rules_patch, ROLE_ADMIN, "change a rule"},
    {"DELETE", V1 "/clusters/{cluster}/rules/{id}", api_rules_delete, ROLE_ADMIN, "delete a rule"},
    {"POST", V1 "/apply", api_apply, ROLE_ADMIN,
     "apply or delete policy documents in one transaction", .body_max = 8u << 20,
     .body_items = 20000},
    {"GET", V1 "/clusters/{cluster}/join-token", api_join_token, ROLE_ADMIN,
     "issue a new join token with the default expiry (the previous one from here stops working)",
     ROUTE_WRITE},
    {"POST", V1 "/clusters/{cluster}/join-tokens", api_join_tokens_create, ROLE_ADMIN,
     "issue a join token (expiry, uses)"},
    {"GET", V1 "/clusters/{cluster}/join-tokens", api_join_tokens_list, ROLE_ADMIN,
     "list the cluster's join tokens (not their secrets)"},
    {"DELETE", V1 "/clusters/{cluster}/join-tokens/{id}", api_join_tokens_delete, ROLE_ADMIN,
     "revoke a join token"},
    {"GET", V1 "/clusters/{cluster}/quarantines", api_quarantines_list, ROLE_VIEWER,
     "list the sources in quarantine", .query_own = true},
    {"GET", V1 "/clusters/{cluster}/quarantines/{address}", api_quarantines_get, ROLE_VIEWER,
     "get one quarantine"},
    {"DELETE", V1 "/clusters/{cluster}/quarantines/{address}", api_quarantines_delete, ROLE_ADMIN,
     "end a quarantine on every node"},
    {"GET", V1 "/clusters/{cluster}/threat-intel", api_threats_get, ROLE_VIEWER,
     "get the threat list (text)"},
    {"GET", V1 "/clusters/{cluster}/threat-intel/summary", api_threats_summary, ROLE_VIEWER,
     "the threat list's version, prefix count and update time (nulls when there is none)"},
    {"PUT", V1 "/clusters/{cluster}/threat-intel", api_threats_put, ROLE_ADMIN,
     "replace the threat list (text)", .prepare = threats_prepare, .body_max = 128u << 20,
     .body_type = "text/plain"},
    {"DELETE", V1 "/clusters/{cluster}/threat-intel", api_threats_delete, ROLE_ADMIN,
     "remove the threat list"},
    {"GET", V1 "/clusters/{cluster}/status", api_cluster_status, ROLE_VIEWER,
     "protection status of a cluster"},
    {"GET", V1 "/status", api_status, ROLE_VIEWER, "protection status of every cluster"},
    {"GET", V1 "/nodes", api_nodes_list, ROLE_VIEWER, "list nodes", .query_own = true},
    {"GET", V1 "/nodes/{id}", api_nodes_get, ROLE_VIEWER, "get a node"},
    {"DELETE", V1 "/nodes/{id}", api_nodes_delete, ROLE_ADMIN,
     "delete a node: revokes its credential, forgets its workloads"},
    {"GET", V1 "/workloads", api_workloads_list, ROLE_VIEWER, "list workloads", .query_own = true},
    {"GET", V1 "/alerts", api_alerts_list, ROLE_VIEWER, "list alerts", .query_own = true},
    {"GET", V1 "/alerts/{id}", api_alerts_get, ROLE_VIEWER, "get an alert"},
    {"PATCH", V1 "/alerts/{id}", api_alerts_patch, ROLE_ADMIN, "change an alert's status"},
    {"GET", V1 "/audit", api_audit_list, ROLE_VIEWER, "list audit records", .query_own = true},
    {"POST", V1 "/agents/register", api_agents_register, ROLE_NONE,
     "join a cluster with a join token"},
    {"POST", V1 "/agents/heartbeat", api_agents_heartbeat, ROLE_AGENT, "report node facts"},
    {"PUT", V1 "/agents/workloads", api_agents_workloads, ROLE_AGENT,
     "replace the node's workloads"},
    {"GET", V1 "/agents/policy", api_agents_policy, ROLE_AGENT,
     "long-poll the cluster's policy by revision", .query_own = true},
    {"PUT", V1 "/agents/quarantines", api_agents_quarantines, ROLE_AGENT,
     "report the node's quarantines", .body_max = 4u << 20},
    {"GET", V1 "/agents/threat-intel", api_agents_threats, ROLE_AGENT,
     "get the cluster's threat list (text)"},
    {"POST", V1 "/agents/events", api_agents_events, ROLE_AGENT, "send a batch of events",
     .prepare = agents_events_prepare},
    /* What the web console needs beyond the resources (api_console.c). */
    {"POST", V1 "/alerts/batch", api_alerts_batch, ROLE_ADMIN, "change the status of many alerts"},
    {"GET", V1 "/whoami", api_whoami, ROLE_VIEWER, "the role of the caller's token"},
    {"GET", V1 "/changes", api_changes, ROLE_VIEWER,
     "long-poll which kinds of records changed since a cursor", .query_own = true},
    {"POST", V1 "/objects/preview", api_objects_preview, ROLE_VIEWER,
     "the workloads a (draft) network object selects now", ROUTE_READ, .query_own = true},
    /* The web console's pages and files (static.c): no token, no data. A page's query
     * string is the page's own state (filters, the rule opened), read by the page. */
    {"GET", "/", static_page, ROLE_NONE, "the web console", .query_own = true},
    {"GET", "/status", static_page, ROLE_NONE, "console: Protection status", .query_own = true},
    {"GET", "/management", static_page, ROLE_NONE, "console: Protection management",
     .query_own = true},
    {"GET", "/management/{cluster}", static_page, ROLE_NONE, "console: a cluster's rules",
     .query_own = true},
    {"GET", "/objects", static_page, ROLE_NONE, "console: Network objects", .query_own = true},
    {"GET", "/alerts", static_page, ROLE_NONE, "console: Alerts", .query_own = true},
    {"GET", "/nodes", static_page, ROLE_NONE, "console: Nodes", .query_own = true},
    {"GET", "/assets/{file}", static_asset, ROLE_NONE, "a file of the web console"},
};

const struct route *routes_table(size_t *n)
{
    *n = sizeof(table) / sizeof(table[0]);
    return table;
}

/*
 * Matches `path` against `pattern`; path parameters go to rq (copied into
 * `scratch`). A last parameter written {name*} takes the rest of the path.
 */
static bool match(const char *pattern, const char *path, struct req *rq, char *scratch,
                  size_t nscratch)
{
    size_t used = 0;
    rq->nparams = 0;
    while (*pattern && *path) {
        if (*pattern == '{') {
            const char *close = strchr(pattern, '}');
            bool rest = close[-1] == '*' && close[1] == '\0';
            size_t len = rest ? strlen(path) : strcspn(path, "/");
            if (len == 0 || rq->nparams >= MOAT_PARAMS_MAX || used + len + 1 > nscratch)
                return false;
            memcpy(scratch + used, path, len);
            scratch[used + len] = '\0';
            rq->params[rq->nparams++] = scratch + used;
            used += len + 1;
            path += len;
            pattern = strchr(pattern, '}') + 1;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return !*pattern && !*path;
}

int routes_match(const char *method, const char *path, struct req *rq)
{
    bool path_known = false;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (!match(table[i].pattern, path, rq, rq->pbuf, sizeof(rq->pbuf)))
            continue;
        path_known = true;
        if (strcmp(table[i].method, method) == 0)
            return (int)i;
    }
    rq->nparams = 0;
    return path_known ? -EPERM : -ENOENT;
}

const char *role_name(enum role r)
{
    return r == ROLE_ADMIN    ? "admin"
           : r == ROLE_VIEWER ? "viewer"
           : r == ROLE_AGENT  ? "agent"
                              : "none";
}

void routes_print(void)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        printf("%s %s %s\n", table[i].method, table[i].pattern, role_name(table[i].role));
}
