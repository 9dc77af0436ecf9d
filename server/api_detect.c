/*
 * api_detect: the detections' state the server keeps for its clusters
 * (SPEC §6; docs/server.md "Detections").
 *
 *   GET    /clusters/{cluster}/quarantines            active quarantines, one per address
 *   GET    /clusters/{cluster}/quarantines/{address}  one of them
 *   DELETE /clusters/{cluster}/quarantines/{address}  ends it on every node
 *   GET    /clusters/{cluster}/threat-intel           the threat list (text/plain)
 *   PUT    /clusters/{cluster}/threat-intel           replaces it (text/plain body)
 *   DELETE /clusters/{cluster}/threat-intel           removes it
 *   PUT    /agents/quarantines                        what a node's kernel holds
 *   GET    /agents/threat-intel                       the node's cluster's list
 *
 * A quarantine starts in a node's kernel; the node reports the ones it
 * started, the server lists them per address and hands them, with the
 * releases an operator asked for, to every node of the cluster in the
 * policy answer (detect_policy_fields), so a source attacking one node is
 * held at all of them and a release reaches all of them with the next
 * revision. A release is kept for RELEASE_KEEP_S so that a report sent
 * before it and delivered after it cannot bring the quarantine back.
 *
 * The threat list is parsed by lib/threatlist (line-numbered errors) and
 * kept in its canonical text with a version (the first 16 hex digits of its
 * SHA-256); the policy answer names the version and agents fetch the text
 * when it changes. The text agents fetch is kept in memory per version.
 */
#include "addr.h"
#include "audit.h"
#include "auth.h"
#include "loader.h"
#include "mem.h"
#include "remote.h"
#include "server.h"
#include "threatlist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUARANTINES_MAX    10000        /* entries in one node's report */
#define RELEASE_KEEP_S     (31 * 86400) /* longer than any quarantine (loader: at most 30 days) */
#define THREATS_NAME       "threat-intel"
#define THREATS_ERRORS_MAX 100 /* errors shown for a list that does not parse */

static int stop(int err)
{
    return err < 0 ? err : 1;
}

static int all(struct store *st, enum store_kind k, const char *cluster, json_t **items)
{
    struct store_query q = {.cluster = cluster, .limit = -1};
    int64_t total;
    return st->ops->list(st, k, &q, items, &total);
}

/* `text` as a canonical address in out; false when it is not an IP address. */
static bool canonical(const char *text, char *out, size_t n)
{
    struct moat_addr a;
    if (!text || addr_parse(text, &a) < 0)
        return false;
    addr_format(&a, out, n);
    return true;
}

/* ---- quarantines ---------------------------------------------------------- */

/* The release record of `address` in `cluster` (NULL: none; caller decrefs). */
static json_t *release_of(struct store *st, const char *cluster, const char *address, int64_t *id)
{
    json_t *doc = NULL;
    if (st->ops->find(st, STORE_RELEASE, cluster, address, id) == 0)
        st->ops->get(st, STORE_RELEASE, *id, &doc, NULL);
    return doc;
}

/* The active quarantines of `cluster`, by address: [{address, reason, since, until, nodes}]. */
static int active(struct store *st, const char *cluster, const char *only, json_t **out)
{
    *out = NULL;
    json_t *items = NULL;
    int err = all(st, STORE_QUARANTINE, cluster, &items);
    json_t *by = json_object(), *res = json_array();
    char now[21];
    time_iso(time(NULL), now);
    for (size_t i = 0; !err && i < json_array_size(items); i++) {
        const json_t *q = json_array_get(items, i);
        const char *addr = jstr(q, "address"), *since = jstr(q, "since"), *until = jstr(q, "until");
        if (strcmp(until, now) <= 0 || (only && strcmp(addr, only) != 0))
            continue;
        json_t *e = json_object_get(by, addr);
        if (!e) {
            e = json_pack("{s:s,s:s,s:s,s:s,s:[]}", "address", addr, "reason", jstr(q, "reason"),
                          "since", since, "until", until, "nodes");
            if (!e || json_object_set_new(by, addr, e) < 0 || json_array_append(res, e) < 0) {
                err = -ENOMEM;
                break;
            }
        }
        if (strcmp(since, jstr(e, "since")) < 0)
            json_object_set_new(e, "since", json_string(since));
        if (strcmp(until, jstr(e, "until")) > 0)
            json_object_set_new(e, "until", json_string(until));
        if (json_array_append_new(json_object_get(e, "nodes"), json_string(jstr(q, "node"))) < 0)
            err = -ENOMEM;
    }
    json_decref(items);
    json_decref(by);
    if (!err && !res)
        err = -ENOMEM;
    if (err) {
        json_decref(res);
        return err;
    }
    *out = res;
    return 0;
}

int detect_quarantined(struct store *st, const char *cluster, int64_t *n)
{
    json_t *list = NULL;
    int err = active(st, cluster, NULL, &list);
    *n = err ? 0 : (int64_t)json_array_size(list);
    json_decref(list);
    return err;
}

int api_quarantines_list(struct req *rq, struct resp *rs)
{
    static const char *const none[] = {NULL};
    struct store_query q = {0};
    int rc = req_query_check(rq, rs, none, true, &q);
    if (!rc)
        rc = req_cluster_check(rq, rs);
    if (rc)
        return rc < 0 ? rc : 0;
    json_t *list, *page = json_array();
    int err = page ? active(&rq->srv->store, rq->params[0], NULL, &list) : -ENOMEM;
    if (err) {
        json_decref(page);
        return err;
    }
    size_t total = json_array_size(list);
    for (size_t i = (size_t)q.offset; !err && i < total && i < (size_t)(q.offset + q.limit); i++)
        if (json_array_append(page, json_array_get(list, i)) < 0)
            err = -ENOMEM;
    json_decref(list);
    if (err) {
        json_decref(page);
        return err;
    }
    return resp_json(rs, 200, list_body(page, (int64_t)total));
}

int api_quarantines_get(struct req *rq, struct resp *rs)
{
    char addr[MOAT_ADDR_STRLEN];
    int rc = req_cluster_check(rq, rs);
    if (!rc && !canonical(rq->params[1], addr, sizeof(addr)))
        rc = stop(resp_error(rs, 400, "address", "\"%s\" is not an IP address", rq->params[1]));
    if (rc)
        return rc < 0 ? rc : 0;
    json_t *list;
    int err = active(&rq->srv->store, rq->params[0], addr, &list);
    if (err)
        return err;
    if (json_array_size(list) == 0) {
        json_decref(list);
        return resp_error(rs, 404, "address", "%s is not quarantined in cluster \"%s\"", addr,
                          rq->params[0]);
    }
    json_t *one = json_incref(json_array_get(list, 0));
    json_decref(list);
    return resp_json(rs, 200, one);
}

/* Removes release records older than RELEASE_KEEP_S in `cluster`. */
static int releases_expire(struct store *st, const char *cluster)
{
    json_t *items = NULL;
    int err = all(st, STORE_RELEASE, cluster, &items);
    char before[21];
    time_iso(time(NULL) - RELEASE_KEEP_S, before);
    for (size_t i = 0; !err && i < json_array_size(items); i++) {
        const json_t *r = json_array_get(items, i);
        if (strcmp(jstr(r, "at"), before) < 0)
            err = st->ops->remove(st, STORE_RELEASE, json_integer_value(json_object_get(r, "id")));
    }
    json_decref(items);
    return err;
}

/* Records the release of `addr` (at `at`), replacing an older one. */
static int release_record(struct req *rq, const char *cluster, const char *addr, const char *at)
{
    struct store *st = &rq->srv->store;
    char actor[64];
    snprintf(actor, sizeof(actor), "token:%lld", (long long)rq->token_id);
    json_t *doc = json_pack("{s:s,s:s,s:s}", "address", addr, "at", at, "actor", actor);
    if (!doc)
        return -ENOMEM;
    int64_t id;
    json_t *old = release_of(st, cluster, addr, &id);
    int err = old ? st->ops->update(st, STORE_RELEASE, id, NULL, doc)
                  : st->ops->insert(st, STORE_RELEASE, cluster, addr, doc, &id);
    json_decref(old);
    json_decref(doc);
    return err ? err : releases_expire(st, cluster);
}

static int release(struct req *rq, struct resp *rs, const char *addr)
{
    struct store *st = &rq->srv->store;
    const char *cluster = rq->params[0];
    json_t *list = NULL, *items = NULL;
    int err = active(st, cluster, addr, &list);
    if (!err && json_array_size(list) == 0) {
        json_decref(list);
        return stop(resp_error(rs, 404, "address", "%s is not quarantined in cluster \"%s\"", addr,
                               cluster));
    }
    if (!err)
        err = all(st, STORE_QUARANTINE, cluster, &items);
    for (size_t i = 0; !err && i < json_array_size(items); i++) {
        const json_t *q = json_array_get(items, i);
        if (strcmp(jstr(q, "address"), addr) == 0)
            err =
                st->ops->remove(st, STORE_QUARANTINE, json_integer_value(json_object_get(q, "id")));
    }
    json_decref(items);
    char now[21];
    time_iso(time(NULL), now);
    if (!err)
        err = release_record(rq, cluster, addr, now);
    json_t *before = json_incref(json_array_get(list, 0));
    if (!err) /* the revision moves with the answer (txn_end) */
        err = audit_record(rq, "release", "quarantine", cluster, addr, 0, before, NULL);
    json_t *shown = err ? NULL : json_deep_copy(before);
    if (!err && (!shown || json_object_set_new(shown, "released_at", json_string(now)) < 0))
        err = -ENOMEM;
    json_decref(before);
    json_decref(list);
    if (err) {
        json_decref(shown);
        return err;
    }
    return resp_json(rs, 200, shown);
}

int api_quarantines_delete(struct req *rq, struct resp *rs)
{
    char addr[MOAT_ADDR_STRLEN];
    int rc = txn_begin(rq);
    if (!rc)
        rc = req_cluster_check(rq, rs);
    if (!rc && !canonical(rq->params[1], addr, sizeof(addr)))
        rc = stop(resp_error(rs, 400, "address", "\"%s\" is not an IP address", rq->params[1]));
    if (!rc)
        rc = release(rq, rs, addr);
    return txn_end(rq, rc < 0 ? rc : 0, rs);
}

/* ---- a node's report ------------------------------------------------------ */

static const char *const reasons[] = {"brute_force", "port_scan", NULL};

static bool one_of(const char *s, const char *const *set)
{
    for (; s && *set; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

/* Checks entry i of a report; its canonical address into addr. Errors go to errs. */
static int report_check(json_t *errs, size_t i, const json_t *e, char *addr, size_t n)
{
    char f[48];
    time_t since, until;
    int err = 0;
    if (!json_is_object(e)) {
        snprintf(f, sizeof(f), "quarantines[%zu]", i);
        return errs_add(errs, f, "must be an object");
    }
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)e, key, v)
    {
        if (!err && strcmp(key, "address") && strcmp(key, "reason") && strcmp(key, "since") &&
            strcmp(key, "until")) {
            snprintf(f, sizeof(f), "quarantines[%zu].%.16s", i, key);
            err = errs_add(errs, f, "unknown field");
        }
    }
    snprintf(f, sizeof(f), "quarantines[%zu].address", i);
    if (!err && !canonical(json_string_value(json_object_get(e, "address")), addr, n))
        err = errs_add(errs, f, "must be an IP address");
    snprintf(f, sizeof(f), "quarantines[%zu].reason", i);
    if (!err && !one_of(json_string_value(json_object_get(e, "reason")), reasons))
        err = errs_add(errs, f, "must be brute_force or port_scan");
    snprintf(f, sizeof(f), "quarantines[%zu].since", i);
    if (!err && !time_parse(json_string_value(json_object_get(e, "since")), &since))
        err = errs_add(errs, f, "must be a UTC time (YYYY-MM-DDTHH:MM:SSZ)");
    snprintf(f, sizeof(f), "quarantines[%zu].until", i);
    if (!err && !time_parse(json_string_value(json_object_get(e, "until")), &until))
        err = errs_add(errs, f, "must be a UTC time (YYYY-MM-DDTHH:MM:SSZ)");
    else if (!err && until < since)
        err = errs_add(errs, f, "is before since");
    return err;
}

/*
 * What the cluster's settings let a node hold in quarantine, per reason (the
 * index in `reasons`): whether (defense on, the detection enabled with action
 * block, a quarantine time above 0) and for how many seconds at most. Read
 * through libmoat's loader, so the defaults are the model's.
 */
struct q_policy {
    bool allowed[2];
    uint32_t seconds[2];
};

static int q_policy_of(struct store *st, const char *cluster, struct q_policy *qp)
{
    memset(qp, 0, sizeof(*qp));
    int64_t id;
    json_t *doc = NULL, *clusters = json_array(), *none = json_array(), *docs = json_array();
    int err =
        clusters && none && docs ? st->ops->find(st, STORE_CLUSTER, NULL, cluster, &id) : -ENOMEM;
    if (!err)
        err = st->ops->get(st, STORE_CLUSTER, id, &doc, NULL);
    if (!err && json_array_append(clusters, doc) < 0)
        err = -ENOMEM;
    if (!err)
        err = remote_docs(clusters, none, none, none, NULL, docs);
    struct moat_policy *p = NULL;
    struct moat_diags d;
    diags_init(&d);
    if (!err)
        err = policy_load_json(&p, docs, "cluster", &d);
    diags_clear(&d);
    uint32_t c = err ? MOAT_NONE : policy_find_cluster(p, cluster);
    if (!err && c != MOAT_NONE) {
        const struct moat_cluster *mc = &p->clusters[c];
        const struct moat_detections *det = &mc->det;
        qp->seconds[0] = det->brute_force.quarantine;
        qp->seconds[1] = det->port_scan.quarantine;
        qp->allowed[0] = mc->defense && det->brute_force.c.enabled &&
                         det->brute_force.c.action == MOAT_ACTION_BLOCK && qp->seconds[0] > 0;
        qp->allowed[1] = mc->defense && det->port_scan.c.enabled &&
                         det->port_scan.c.action == MOAT_ACTION_BLOCK && qp->seconds[1] > 0;
    }
    policy_free(p);
    json_decref(doc);
    json_decref(clusters);
    json_decref(none);
    json_decref(docs);
    return err;
}

#define IGNORED_SHOWN 100 /* entries of a report named in its answer as not spread */
#define CLOCK_SLACK_S 300 /* how far ahead of the server's clock a node's may run */

/*
 * Why entry e (its canonical address addr) is not spread to the cluster, or
 * NULL; *until is its end, cut to what the cluster's quarantine time allows.
 * A node's credential can only hold what the cluster's settings would have
 * its kernels hold: a stolen one cannot quarantine the cluster's traffic at
 * large (docs/server.md, "Detections").
 */
static const char *report_why_not(const struct q_policy *qp, const json_t *e, const char *addr,
                                  time_t now, char until[21])
{
    int r = strcmp(jstr(e, "reason"), reasons[0]) == 0 ? 0 : 1;
    time_t since, end;
    time_parse(jstr(e, "since"), &since);
    time_parse(jstr(e, "until"), &end);
    struct moat_addr a;
    addr_parse(addr, &a);
    const char *not_source = addr_not_source(&a);
    if (not_source)
        return not_source;
    if (!qp->allowed[r])
        return r == 0 ? "brute_force does not quarantine in this cluster"
                      : "port_scan does not quarantine in this cluster";
    if (since > now + CLOCK_SLACK_S)
        return "since is ahead of the server's clock";
    if (end - since > (time_t)qp->seconds[r])
        end = since + (time_t)qp->seconds[r];
    time_iso(end, until);
    return NULL;
}

/*
 * The node's report as records {node, address, reason, since, until}, less
 * what a release made after it started ended (a report sent before the
 * release, delivered after it) and what the cluster does not allow (into
 * *ignored: [{address, why}], the first IGNORED_SHOWN; *nignored counts all).
 */
static int report_records(struct req *rq, const json_t *list, json_t **out, json_t *ignored,
                          size_t *nignored)
{
    struct store *st = &rq->srv->store;
    struct q_policy qp;
    json_t *recs = json_object();
    int err = recs ? q_policy_of(st, rq->agent_cluster, &qp) : -ENOMEM;
    time_t now = time(NULL);
    *nignored = 0;
    for (size_t i = 0; !err && i < json_array_size(list); i++) {
        const json_t *e = json_array_get(list, i);
        char addr[MOAT_ADDR_STRLEN], until[21];
        canonical(jstr(e, "address"), addr, sizeof(addr));
        const char *why = report_why_not(&qp, e, addr, now, until);
        if (why) {
            if ((*nignored)++ < IGNORED_SHOWN &&
                json_array_append_new(ignored,
                                      json_pack("{s:s,s:s}", "address", addr, "why", why)) < 0)
                err = -ENOMEM;
            continue;
        }
        int64_t id;
        json_t *rel = release_of(st, rq->agent_cluster, addr, &id);
        bool released = rel && strcmp(jstr(e, "since"), jstr(rel, "at")) <= 0;
        json_decref(rel);
        if (released)
            continue;
        json_t *r =
            json_pack("{s:s,s:s,s:s,s:s,s:s}", "node", rq->agent_node, "address", addr, "reason",
                      jstr(e, "reason"), "since", jstr(e, "since"), "until", until);
        if (!r || json_object_set_new(recs, addr, r) < 0)
            err = -ENOMEM;
    }
    if (err) {
        json_decref(recs);
        return err;
    }
    *out = recs;
    return 0;
}

/* Says on stderr that a node reported quarantines its cluster does not allow. */
static void report_ignored_log(const struct req *rq, const json_t *ignored, size_t n)
{
    const json_t *first = json_array_get(ignored, 0);
    if (n)
        fprintf(stderr,
                "moat-server: node \"%s\" of cluster \"%s\" reported %zu quarantine(s) its "
                "cluster does not allow, not spread (first: %s: %s)\n",
                rq->agent_node, rq->agent_cluster, n, jstr(first, "address"), jstr(first, "why"));
}

int detect_node_forget(struct store *st, const char *cluster, const char *node)
{
    struct store_query q = {.cluster = cluster, .limit = -1};
    q.filters[q.nfilters++] = (struct store_filter){"node", node};
    json_t *items = NULL;
    int64_t total;
    int err = st->ops->list(st, STORE_QUARANTINE, &q, &items, &total);
    for (size_t i = 0; !err && i < json_array_size(items); i++)
        err = st->ops->remove(st, STORE_QUARANTINE,
                              json_integer_value(json_object_get(json_array_get(items, i), "id")));
    json_decref(items);
    return err;
}

/* Replaces the node's records with `recs` ({address: record}) when they differ: *changed. */
static int report_store(struct req *rq, json_t *recs, bool *changed)
{
    struct store *st = &rq->srv->store;
    struct store_query q = {.cluster = rq->agent_cluster, .limit = -1};
    q.filters[q.nfilters++] = (struct store_filter){"node", rq->agent_node};
    json_t *old = NULL;
    int64_t total;
    int err = st->ops->list(st, STORE_QUARANTINE, &q, &old, &total);
    *changed = !err && json_array_size(old) != json_object_size(recs);
    for (size_t i = 0; !err && !*changed && i < json_array_size(old); i++) {
        json_t *o = json_deep_copy(json_array_get(old, i));
        json_object_del(o, "id");
        *changed = !json_equal(o, json_object_get(recs, jstr(o, "address")));
        json_decref(o);
    }
    for (size_t i = 0; !err && *changed && i < json_array_size(old); i++)
        err = st->ops->remove(st, STORE_QUARANTINE,
                              json_integer_value(json_object_get(json_array_get(old, i), "id")));
    json_decref(old);
    const char *addr;
    json_t *r;
    json_object_foreach(recs, addr, r)
    {
        if (err || !*changed)
            break;
        char name[SERVER_NAME_MAX + MOAT_ADDR_STRLEN + 2];
        snprintf(name, sizeof(name), "%s/%s", rq->agent_node, addr);
        int64_t id;
        err = st->ops->insert(st, STORE_QUARANTINE, rq->agent_cluster, name, r, &id);
    }
    return err;
}

int api_agents_quarantines(struct req *rq, struct resp *rs)
{
    json_t *body = NULL, *errs = NULL, *recs = NULL;
    int rc = req_body_object(rq, rs, &body);
    const char *key;
    const json_t *v;
    json_object_foreach(body, key, v)
    {
        if (!rc && strcmp(key, "quarantines") && strcmp(key, "cluster") && strcmp(key, "node"))
            rc = stop(resp_error(rs, 400, key, "unknown field"));
    }
    if (!rc && json_object_get(body, "cluster") &&
        strcmp(jstr(body, "cluster"), rq->agent_cluster) != 0)
        rc = stop(resp_error(rs, 403, "cluster", "not this credential's cluster"));
    if (!rc && json_object_get(body, "node") && strcmp(jstr(body, "node"), rq->agent_node) != 0)
        rc = stop(resp_error(rs, 403, "node", "not this credential's node"));
    const json_t *list = json_object_get(body, "quarantines");
    if (!rc && !json_is_array(list))
        rc = stop(resp_error(rs, 400, "quarantines", "required: a list of quarantines"));
    if (!rc && json_array_size(list) > QUARANTINES_MAX)
        rc = stop(resp_error(rs, 400, "quarantines", "at most %d per node", QUARANTINES_MAX));
    if (!rc && !(errs = json_array()))
        rc = -ENOMEM;
    for (size_t i = 0; !rc && i < json_array_size(list); i++) {
        char addr[MOAT_ADDR_STRLEN];
        rc = report_check(errs, i, json_array_get(list, i), addr, sizeof(addr));
    }
    if (!rc && json_array_size(errs) > 0) {
        rc = stop(resp_json(rs, 400, json_pack("{s:O}", "errors", errs)));
    }
    bool changed = false;
    json_t *ignored = rc ? NULL : json_array();
    size_t nignored = 0;
    if (!rc && !ignored)
        rc = -ENOMEM;
    if (!rc)
        rc = txn_begin(rq);
    if (!rc)
        rc = report_records(rq, list, &recs, ignored, &nignored);
    if (!rc)
        rc = report_store(rq, recs, &changed);
    if (!rc && changed)
        rc = revision_bump(rq, rq->agent_cluster);
    if (!rc)
        rc = resp_json(rs, 200,
                       json_pack("{s:I,s:b,s:I,s:O}", "quarantines",
                                 (json_int_t)json_object_size(recs), "changed", changed, "ignored",
                                 (json_int_t)nignored, "not_spread", ignored));
    if (!rc)
        report_ignored_log(rq, ignored, nignored);
    json_decref(ignored);
    json_decref(recs);
    json_decref(errs);
    json_decref(body);
    return txn_end(rq, rc < 0 ? rc : 0, rs);
}

/* ---- threat lists ---------------------------------------------------------- */

/* The cluster's threat-list record (NULL when it has none); *id its id. */
static json_t *threats_of(struct store *st, const char *cluster, int64_t *id)
{
    json_t *doc = NULL;
    if (st->ops->find(st, STORE_THREATS, cluster, THREATS_NAME, id) == 0)
        st->ops->get(st, STORE_THREATS, *id, &doc, NULL);
    return doc;
}

/* Answers with the cluster's list as text, from memory when its version is known. */
static int threats_answer(struct req *rq, struct resp *rs, const char *cluster)
{
    struct server *srv = rq->srv;
    int64_t id;
    json_t *doc = threats_of(&srv->store, cluster, &id);
    if (!doc)
        return resp_error(rs, 404, "", "cluster \"%s\" has no threat list", cluster);
    const char *version = jstr(doc, "version");
    pthread_mutex_lock(&srv->cache_lock);
    struct threat_cache *c = srv->threat_cache;
    while (c && (strcmp(c->cluster, cluster) != 0 || strcmp(c->version, version) != 0))
        c = c->next;
    if (!c && (c = moat_calloc(1, sizeof(*c)))) {
        const char *text = jstr(doc, "text");
        c->text = shared_text_new(text, strlen(text));
        snprintf(c->cluster, sizeof(c->cluster), "%s", cluster);
        snprintf(c->version, sizeof(c->version), "%s", version);
        if (!c->text) {
            free(c);
            c = NULL;
        } else { /* the newest per cluster is all that is kept */
            for (struct threat_cache **p = &srv->threat_cache; *p;) {
                if (strcmp((*p)->cluster, cluster) == 0) {
                    struct threat_cache *gone = *p;
                    *p = gone->next;
                    shared_text_unref(gone->text);
                    free(gone);
                } else {
                    p = &(*p)->next;
                }
            }
            c->next = srv->threat_cache;
            srv->threat_cache = c;
        }
    }
    if (c)
        rs->shared = shared_text_ref(c->text);
    pthread_mutex_unlock(&srv->cache_lock);
    json_decref(doc);
    if (!c)
        return -ENOMEM;
    rs->status = 200;
    rs->ctype = "text/plain; charset=utf-8";
    return 0;
}

void detect_cache_free(struct server *srv)
{
    while (srv->threat_cache) {
        struct threat_cache *c = srv->threat_cache;
        srv->threat_cache = c->next;
        shared_text_unref(c->text);
        free(c);
    }
}

int api_threats_get(struct req *rq, struct resp *rs)
{
    int rc = req_cluster_check(rq, rs);
    if (rc)
        return rc < 0 ? rc : 0;
    return threats_answer(rq, rs, rq->params[0]);
}

/* What a user needs to know about the list without its text: {version, prefixes, updated}, or
 * nulls. */
int api_threats_summary(struct req *rq, struct resp *rs)
{
    int rc = req_cluster_check(rq, rs);
    if (rc)
        return rc < 0 ? rc : 0;
    int64_t id;
    json_t *doc = threats_of(&rq->srv->store, rq->params[0], &id);
    json_t *out = doc ? json_pack("{s:s,s:O,s:s}", "version", jstr(doc, "version"), "prefixes",
                                  json_object_get(doc, "prefixes"), "updated", jstr(doc, "updated"))
                      : json_pack("{s:n,s:i,s:n}", "version", "prefixes", 0, "updated");
    json_decref(doc);
    return out ? resp_json(rs, 200, out) : -ENOMEM;
}

int api_agents_threats(struct req *rq, struct resp *rs)
{
    return threats_answer(rq, rs, rq->agent_cluster);
}

/*
 * On the worker: the body parsed and checked; rq->prepared gets {text,
 * version, prefixes} (the canonical text), or a 400 lists the errors with
 * their lines.
 */
int threats_prepare(struct req *rq, struct resp *rs)
{
    struct moat_threatlist *tl = NULL;
    struct moat_diags d;
    diags_init(&d);
    int err = threatlist_parse(rq->body ? rq->body : "", rq->body_len, "threat-intel", &tl, &d);
    if (err == -EINVAL || err == -E2BIG) {
        json_t *errs = json_array();
        for (size_t i = 0; errs && i < d.count && i < THREATS_ERRORS_MAX; i++) {
            char f[32];
            snprintf(f, sizeof(f), "line %d", d.items[i].line);
            if (errs_add(errs, d.items[i].line ? f : "", "%s",
                         d.items[i].detail ? d.items[i].detail : d.items[i].text) < 0)
                break;
        }
        if (errs && diags_total(&d) > THREATS_ERRORS_MAX)
            errs_add(errs, "", "%zu more errors", diags_total(&d) - THREATS_ERRORS_MAX);
        diags_clear(&d);
        return errs ? resp_json(rs, 400, json_pack("{s:o}", "errors", errs)) : -ENOMEM;
    }
    diags_clear(&d);
    if (err)
        return err;
    char *text = threatlist_format(tl);
    size_t n = tl->n;
    threatlist_free(tl);
    char hash[AUTH_HASH_LEN + 1];
    err = text ? auth_hash(text, hash) : -ENOMEM;
    json_t *doc = err ? NULL
                      : json_pack("{s:s,s:s%,s:I}", "text", text, "version", hash, (size_t)16,
                                  "prefixes", (json_int_t)n);
    free(text);
    if (!err && !doc)
        err = -ENOMEM;
    if (err)
        return err;
    rq->prepared = doc;
    return 0;
}

/* What the audit record keeps of a list: not its text (it can be megabytes). */
static json_t *threats_summary(const json_t *doc)
{
    return doc ? json_pack("{s:s,s:O}", "version", jstr(doc, "version"), "prefixes",
                           json_object_get(doc, "prefixes"))
               : NULL;
}

int api_threats_put(struct req *rq, struct resp *rs)
{
    struct store *st = &rq->srv->store;
    json_t *doc = rq->prepared; /* threats_prepare's */
    rq->prepared = NULL;
    char now[21];
    time_iso(time(NULL), now);
    int rc = txn_begin(rq);
    if (!rc)
        rc = req_cluster_check(rq, rs);
    if (!rc && (!doc || json_object_set_new(doc, "updated", json_string(now)) < 0))
        rc = -ENOMEM;
    int64_t id = 0;
    json_t *old = rc ? NULL : threats_of(st, rq->params[0], &id);
    if (!rc)
        rc = old ? st->ops->update(st, STORE_THREATS, id, NULL, doc)
                 : st->ops->insert(st, STORE_THREATS, rq->params[0], THREATS_NAME, doc, &id);
    json_t *before = threats_summary(old), *after = rc ? NULL : threats_summary(doc);
    if (!rc)
        rc = audit_record(rq, old ? "update" : "create", "threat_intel", rq->params[0],
                          THREATS_NAME, id, before, after);
    /* the revision moves with the answer (txn_end), unless the prefixes are the same */
    rq->unchanged = old && strcmp(jstr(old, "version"), jstr(doc, "version")) == 0;
    if (!rc && json_object_set_new(after, "updated", json_string(now)) < 0)
        rc = -ENOMEM;
    if (!rc) {
        rc = resp_json(rs, old ? 200 : 201, after);
        after = NULL;
    }
    json_decref(before);
    json_decref(after);
    json_decref(old);
    json_decref(doc);
    return txn_end(rq, rc < 0 ? rc : 0, rs);
}

int api_threats_delete(struct req *rq, struct resp *rs)
{
    struct store *st = &rq->srv->store;
    int rc = txn_begin(rq);
    if (!rc)
        rc = req_cluster_check(rq, rs);
    int64_t id = 0;
    json_t *old = rc ? NULL : threats_of(st, rq->params[0], &id);
    if (!rc && !old)
        rc = stop(resp_error(rs, 404, "", "cluster \"%s\" has no threat list", rq->params[0]));
    if (!rc)
        rc = st->ops->remove(st, STORE_THREATS, id);
    json_t *before = threats_summary(old);
    if (!rc)
        rc = audit_record(rq, "delete", "threat_intel", rq->params[0], THREATS_NAME, id, before,
                          NULL);
    if (!rc)
        rc = resp_json(rs, 200, json_pack("{s:s}", "deleted", THREATS_NAME));
    json_decref(before);
    json_decref(old);
    return txn_end(rq, rc < 0 ? rc : 0, rs);
}

/* ---- the policy answer ----------------------------------------------------- */

int detect_policy_fields(struct store *st, const char *cluster, json_t *answer)
{
    json_t *quarantines = NULL, *releases = NULL, *out = json_array();
    int err = out ? active(st, cluster, NULL, &quarantines) : -ENOMEM;
    if (!err)
        err = all(st, STORE_RELEASE, cluster, &releases);
    for (size_t i = 0; !err && i < json_array_size(releases); i++) {
        const json_t *r = json_array_get(releases, i);
        if (json_array_append_new(out, json_pack("{s:s,s:s}", "address", jstr(r, "address"), "at",
                                                 jstr(r, "at"))) < 0)
            err = -ENOMEM;
    }
    for (size_t i = 0; !err && i < json_array_size(quarantines); i++)
        json_object_del(json_array_get(quarantines, i), "nodes");
    int64_t id;
    json_t *ti = err ? NULL : threats_of(st, cluster, &id);
    json_t *ti_field = ti ? json_pack("{s:s,s:O}", "version", jstr(ti, "version"), "prefixes",
                                      json_object_get(ti, "prefixes"))
                          : json_null();
    json_decref(ti);
    if (!err && (json_object_set(answer, "quarantines", quarantines) < 0 ||
                 json_object_set(answer, "quarantine_releases", out) < 0 ||
                 json_object_set_new(answer, "threat_intel", ti_field) < 0))
        err = -ENOMEM;
    json_decref(quarantines);
    json_decref(releases);
    json_decref(out);
    return err;
}
