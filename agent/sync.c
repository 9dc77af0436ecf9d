/* sync: moatd's cluster-mode link to moat-server (see sync.h). */
#include "sync.h"
#include "agent.h"
#include "delta.h"
#include "mem.h"
#include "polstate.h"
#include "spool.h"
#include "threatlist.h"
#include "uplink.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define V1            "/api/v1"
#define POLL_WAIT_S   20  /* long-poll: the server answers 304 after this */
#define CALL_TIMEOUT  10  /* seconds for every other call */
#define BACKOFF_MAX_S 1.0 /* retry an unreachable server at least this often */
#define HB_DEFAULT_S  10

struct sync {
    struct sync_config cfg; /* strings copied below */
    char *server, *cluster, *node, *join_token, *state_dir, *ca_file, *os, *kernel, *version;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* token set, report changed, spool added, stop */
    atomic_bool stop;
    pthread_t poller, reporter;
    bool poller_up, reporter_up;
    int wake_fd;
    struct spool *spool;
    /* under lock */
    char *token;           /* node credential; NULL: register first */
    json_t *pending;       /* newest full policy not yet taken */
    json_t *deltas;        /* workload deltas received after it, not yet taken (a list) */
    struct polstate *kept; /* the full policy in the state folder (policy.json), indexed */
    int64_t seen_revision; /* newest policy revision received */
    char *dp_state, *dp_reason, *dp_backend;
    json_t *dp_probes;
    json_t *dp_detections;                     /* merged into the heartbeat's datapath object */
    int64_t applied;                           /* revision in force on this node */
    char *workloads;                           /* JSON text of the node's workloads */
    uint64_t report_version, reported_version; /* heartbeat-worthy changes */
    uint64_t wl_version, wl_sent;
    char *quarantines; /* JSON text of the quarantines this node's kernel started */
    uint64_t q_version, q_sent;
    bool q_unsupported; /* the server has no quarantine route (404): not sent again */
    int hb_interval;
    bool reachable;
    char last_error[300];
    uint64_t delivered, refused;
    char *ti_version;   /* the cluster's threat list on disk (poller only) */
    char last_log[512]; /* the last repeated-failure message, and when */
    double last_log_at;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits on the condition up to `secs` (returns early on a signal or stop). Lock held. */
static void wait_locked(struct sync *s, double secs)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = (long long)ts.tv_nsec + (long long)(secs * 1e9);
    ts.tv_sec += (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_cond_timedwait(&s->cond, &s->lock, &ts);
}

static void nap(struct sync *s, double secs)
{
    pthread_mutex_lock(&s->lock);
    if (!atomic_load(&s->stop))
        wait_locked(s, secs);
    pthread_mutex_unlock(&s->lock);
}

static void state_path(const struct sync *s, const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", s->state_dir, name);
}

/* Writes `len` bytes of `text` to state file `name` atomically (temporary file, fsync, rename). */
static int save_text(const struct sync *s, const char *name, const char *text, size_t len)
{
    char path[4200], tmp[4300];
    state_path(s, name, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err = fd < 0 ? -errno : 0;
    for (size_t off = 0; !err && off < len;) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno != EINTR)
            err = -errno;
        else if (w > 0)
            off += (size_t)w;
    }
    if (!err && fsync(fd) != 0)
        err = -errno;
    if (fd >= 0)
        close(fd);
    if (!err && rename(tmp, path) != 0)
        err = -errno;
    if (err)
        unlink(tmp);
    return err;
}

/* Writes `j` to state file `name` atomically, readable by root only (it may hold the credential).
 */
static int save_json(const struct sync *s, const char *name, const json_t *j)
{
    /* One write: json_dumpfd would make a system call per token. */
    char *text = json_dumps(j, JSON_COMPACT);
    if (!text)
        return -ENOMEM;
    int err = save_text(s, name, text, strlen(text));
    free(text);
    return err;
}

/* Logs a failure that retries would repeat: the same message at most once a minute. */
static void log_repeat(struct sync *s, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_repeat(struct sync *s, const char *level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&s->lock);
    double now = now_s();
    bool quiet = strcmp(msg, s->last_log) == 0 && now - s->last_log_at < 60;
    if (!quiet) {
        snprintf(s->last_log, sizeof(s->last_log), "%s", msg);
        s->last_log_at = now;
    }
    pthread_mutex_unlock(&s->lock);
    if (!quiet)
        agent_log(level, "%s", msg);
}

/* Reachability changes are logged once, not every retry. */
static void set_reachable(struct sync *s, bool ok, const char *why)
{
    pthread_mutex_lock(&s->lock);
    bool was = s->reachable;
    s->reachable = ok;
    if (!ok)
        snprintf(s->last_error, sizeof(s->last_error), "%s", why);
    pthread_mutex_unlock(&s->lock);
    if (ok && !was)
        agent_log("info", "server %s: connected", s->server);
    else if (!ok && was)
        agent_log("warning", "server unreachable (%s): enforcing the last policy, spooling alerts",
                  why);
}

static char *token_copy(struct sync *s)
{
    pthread_mutex_lock(&s->lock);
    char *t = moat_strdup(s->token);
    pthread_mutex_unlock(&s->lock);
    return t;
}

/* The server refused credential `t`: forget it (when still current) so the reporter registers. */
static void token_refused(struct sync *s, const char *t, int status, const json_t *resp)
{
    pthread_mutex_lock(&s->lock);
    bool current = s->token && t && strcmp(s->token, t) == 0;
    if (current) {
        free(s->token);
        s->token = NULL;
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    if (current) {
        char eb[300]; /* error text of an answer */
        agent_log("warning", "server refused the node credential (%d %s): registering again",
                  status, uplink_error_text(resp, eb, sizeof(eb)));
    }
}

/* ---- poller -------------------------------------------------------------- */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Keeps `st` (the full policy of revision `rev`) in the state folder and
 * hands `body` to the main loop: a full answer replaces whatever was not
 * taken yet; a workload delta (polstate_workloads_only) queues behind it.
 */
static void policy_arrived(struct sync *s, json_t *body, struct polstate *st, int64_t rev,
                           double got)
{
    bool delta = json_is_true(json_object_get(body, "delta")), lost = false;
    /* when it came: moatd's status says how long it took from here to be in force */
    json_object_set_new(body, SYNC_RECEIVED_AT, json_real(got));
    pthread_mutex_lock(&s->lock);
    polstate_free(s->kept);
    s->kept = st; /* only this thread changes it: read below without the lock */
    if (delta) {
        if (!s->deltas)
            s->deltas = json_array();
        if (!s->deltas)
            json_decref(body);
        if (!s->deltas || json_array_append_new(s->deltas, body) < 0) {
            /* out of memory: the main loop takes the whole policy instead */
            json_decref(s->pending);
            s->pending = NULL;
            json_decref(s->deltas);
            s->deltas = NULL;
            lost = true;
        }
    } else {
        json_decref(s->pending);
        s->pending = body;
        json_decref(s->deltas);
        s->deltas = NULL;
    }
    s->seen_revision = lost ? 0 : rev;
    pthread_mutex_unlock(&s->lock);
    uint64_t one = 1;
    if (write(s->wake_fd, &one, sizeof(one)) < 0)
        agent_log("warning", "cannot wake the main loop: %s", strerror(errno));
    /* then to disk (the main loop does not wait for the fsync): a restart before it
     * ends starts from the revision saved before, and asks for what changed since */
    double t0 = mono_s();
    int err = save_text(s, "policy.json", st->text, st->len);
    if (err)
        agent_log("warning",
                  "cannot keep the policy on disk (%s): a restart without the server "
                  "would start without it",
                  strerror(-err));
    else
        agent_log("info", "policy %lld kept on disk (%.1f ms, %zu bytes)", (long long)rev,
                  (mono_s() - t0) * 1e3, st->len);
}

#define THREATS_FILE "threat-intel.txt"
#define THREATS_META "threat-intel.json"

/*
 * The policy answer names the cluster's threat list by version
 * (`threat_intel: {version, prefixes}`, null: none): a new version is
 * fetched and kept in the state folder before the answer is handed on, so
 * the main loop finds the list that goes with it. 0, or <0 to try again.
 */
static int fetch_threats(struct sync *s, struct uplink *u, const json_t *answer)
{
    const char *v =
        json_string_value(json_object_get(json_object_get(answer, "threat_intel"), "version"));
    if (!v || (s->ti_version && strcmp(v, s->ti_version) == 0))
        return 0;
    char *text;
    size_t len;
    char why[512], path[4200], tmp[4300];
    int st = uplink_get_text(u, V1 "/agents/threat-intel", MOAT_THREAT_TEXT_MAX, 120, &text, &len,
                             why, sizeof(why));
    if (st != 200) {
        log_repeat(s, "warning", "threat list %s: %s", v, st < 0 ? why : "not served");
        return st < 0 ? st : -EIO;
    }
    state_path(s, THREATS_FILE, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int err = f ? 0 : -errno;
    if (f && fwrite(text, 1, len, f) != len)
        err = -EIO;
    if (f && fclose(f) != 0 && !err)
        err = -errno;
    free(text);
    if (!err && rename(tmp, path) != 0)
        err = -errno;
    json_t *meta = err ? NULL : json_pack("{s:s}", "version", v);
    if (!err && (!meta || save_json(s, THREATS_META, meta) != 0))
        err = -EIO;
    json_decref(meta);
    if (err) {
        unlink(tmp);
        log_repeat(s, "warning", "cannot keep threat list %s: %s", v, strerror(-err));
        return err;
    }
    free(s->ti_version);
    s->ti_version = moat_strdup(v);
    agent_log("info", "threat list %s from the server (%zu bytes)", v, len);
    return 0;
}

/* How many records of each list an answer (full or delta) carries, for the log. */
static void answer_counts(const json_t *a, size_t *set, size_t *removed)
{
    *set = *removed = 0;
    for (int k = 0; k < DELTA_KINDS; k++) {
        const json_t *v = json_object_get(a, delta_kind_key[k]);
        *set += json_is_array(v) ? json_array_size(v) : json_array_size(json_object_get(v, "set"));
        *removed += json_array_size(json_object_get(v, "removed"));
    }
}

/*
 * What the main loop gets for an answer, and in *st the full policy it
 * stands for (indexed, to keep). A full answer: itself. A delta: applied to
 * the policy kept (s->kept: policy.json, the last one received, revision
 * `since`) by splicing record texts (polstate.h); a delta that changes only
 * workloads goes on as it is (the main loop applies it in place), and so does
 * one that changes no workload (the main loop keeps the other nodes'
 * workloads); any other becomes the full policy, parsed from the new text.
 * NULL when the delta does not apply: the next poll asks for everything
 * (revision 0). Takes `resp`.
 */
static json_t *full_policy(struct sync *s, json_t *resp, size_t bytes, struct polstate **st)
{
    size_t set, removed;
    answer_counts(resp, &set, &removed);
    long long rev = (long long)json_integer_value(json_object_get(resp, "revision"));
    char why[300] = "";
    *st = NULL;
    if (!json_is_true(json_object_get(resp, "delta"))) {
        json_object_del(resp, "delta");
        int err = polstate_from_json(resp, st, why, sizeof(why));
        if (err) { /* the server's answer is a JSON object: only memory can fail here */
            agent_log("warning", "policy %lld: cannot keep it (%s)", rev,
                      err == -ENOMEM ? "out of memory" : why);
            json_decref(resp);
            return NULL;
        }
        agent_log("info", "policy %lld: full state, %zu bytes, %zu records", rev, bytes, set);
        return resp;
    }
    long long since = (long long)json_integer_value(json_object_get(resp, "since"));
    double t0 = mono_s();
    const struct polstate *base = s->kept; /* only this thread changes it: no lock to read */
    int err = base ? polstate_apply(base, resp, st, why, sizeof(why)) : -EINVAL;
    if (!base)
        snprintf(why, sizeof(why), "no policy is kept");
    double t1 = mono_s();
    json_t *out = NULL;
    bool workloads_only = !err && polstate_workloads_only(resp);
    bool documents_only = !err && !workloads_only && polstate_no_workload_change(resp);
    if (workloads_only || documents_only) {
        out = resp;
        resp = NULL;
    } else if (!err) {
        json_error_t e;
        out = json_loadb((*st)->text, (*st)->len, 0, &e);
        if (!out)
            snprintf(why, sizeof(why), "the policy it makes is unreadable: %s", e.text);
    }
    json_decref(resp);
    if (out) {
        agent_log("info",
                  "policy %lld: delta since %lld, %zu bytes, %zu records set, %zu removed "
                  "(spliced in %.1f ms%s)",
                  rev, since, bytes, set, removed, (t1 - t0) * 1e3,
                  workloads_only   ? ", workloads only"
                  : documents_only ? ", objects and rules only"
                                   : ", parsed whole");
        return out;
    }
    polstate_free(*st);
    *st = NULL;
    agent_log("warning",
              "policy %lld: the delta since %lld does not apply (%s): asking for all of it", rev,
              since, err == -ENOMEM ? "out of memory" : why);
    pthread_mutex_lock(&s->lock);
    s->seen_revision = 0;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void *poller_main(void *arg)
{
    char eb[300]; /* error text of an answer */
    struct sync *s = arg;
    struct uplink *u = uplink_new(s->server, s->ca_file, &s->stop);
    double backoff = 0.1;
    bool deltas = true; /* false: the server does not know delta=1 (older than this agent) */
    while (u && !atomic_load(&s->stop)) {
        pthread_mutex_lock(&s->lock);
        while (!s->token && !atomic_load(&s->stop))
            wait_locked(s, 0.5);
        int64_t rev = s->seen_revision;
        pthread_mutex_unlock(&s->lock);
        char *t = token_copy(s);
        if (!t)
            continue;
        uplink_set_token(u, t);
        char path[128], why[512];
        snprintf(path, sizeof(path), V1 "/agents/policy?revision=%lld&wait=%d%s", (long long)rev,
                 POLL_WAIT_S, deltas ? "&delta=1" : "");
        json_t *resp;
        int st = uplink_call(u, "GET", path, NULL, POLL_WAIT_S + 10, &resp, why, sizeof(why));
        double got = mono_s();
        json_t *r = json_object_get(resp, "revision");
        struct polstate *kept = NULL;
        if (st == 200 && json_is_integer(r)) {
            resp = full_policy(s, resp, uplink_last_bytes(u), &kept);
            r = json_object_get(resp, "revision");
            if (!resp) {
                free(t);
                continue;
            }
        }
        if (st == 200 && json_is_integer(r) && fetch_threats(s, u, resp) < 0) {
            polstate_free(kept); /* the answer again (from the revision kept), after a pause */
            nap(s, backoff);
            backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
        } else if (st == 200 && json_is_integer(r)) {
            backoff = 0.1;
            set_reachable(s, true, NULL);
            policy_arrived(s, resp, kept, json_integer_value(r), got);
            resp = NULL;
        } else if (st == 304) {
            backoff = 0.1;
            set_reachable(s, true, NULL);
        } else if (st == 400 && deltas &&
                   strncmp(uplink_error_text(resp, eb, sizeof(eb)), "delta", 5) == 0) {
            deltas = false;
            agent_log("info", "the server does not answer with deltas: full policies from now on");
        } else if (st == 401 || st == 403) {
            token_refused(s, t, st, resp);
            nap(s, backoff);
        } else if (st != -EINTR) {
            if (st < 0)
                set_reachable(s, false, why);
            else
                log_repeat(s, "warning", "policy poll: HTTP %d %s", st,
                           uplink_error_text(resp, eb, sizeof(eb)));
            nap(s, backoff);
            backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
        }
        json_decref(resp);
        free(t);
    }
    uplink_free(u);
    return NULL;
}

/* ---- reporter ------------------------------------------------------------ */

static int do_register(struct sync *s, struct uplink *u)
{
    char eb[300]; /* error text of an answer */
    if (!s->join_token) {
        log_repeat(s, "error",
                   "no node credential for %s and no --join-token: cannot join cluster %s", s->node,
                   s->cluster);
        return -EACCES;
    }
    json_t *body =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "cluster", s->cluster, "node", s->node, "join_token",
                  s->join_token, "os", s->os, "kernel", s->kernel, "agent_version", s->version);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return -ENOMEM;
    uplink_set_token(u, NULL);
    json_t *resp;
    char why[512];
    int st =
        uplink_call(u, "POST", V1 "/agents/register", text, CALL_TIMEOUT, &resp, why, sizeof(why));
    free(text);
    const char *token = json_string_value(json_object_get(resp, "token"));
    int err = 0;
    if (st < 0) {
        set_reachable(s, false, why);
        err = st;
    } else if ((st == 200 || st == 201) && token) {
        set_reachable(s, true, NULL);
        json_t *cred = json_pack("{s:s,s:s,s:s,s:s}", "server", s->server, "cluster", s->cluster,
                                 "node", s->node, "token", token);
        if (!cred || save_json(s, "credential.json", cred) != 0)
            agent_log("warning", "cannot keep the node credential on disk");
        json_decref(cred);
        pthread_mutex_lock(&s->lock);
        free(s->token);
        s->token = moat_strdup(token);
        s->seen_revision = 0; /* a new registration: fetch the policy whatever we had */
        s->wl_sent = 0;       /* and report the workloads again */
        s->q_sent = 0;
        s->reported_version = 0;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        agent_log("info", "registered with %s as node %s of cluster %s", s->server, s->node,
                  s->cluster);
    } else {
        set_reachable(s, true, NULL);
        log_repeat(s, "error", "registration refused: HTTP %d %s", st,
                   uplink_error_text(resp, eb, sizeof(eb)));
        err = -EACCES;
    }
    json_decref(resp);
    return err;
}

/* A call with the credential; handles refusal and reachability. Returns the status or -errno. */
static int authed_call(struct sync *s, struct uplink *u, const char *method, const char *path,
                       const char *body, json_t **resp)
{
    char *t = token_copy(s);
    if (!t)
        return -EACCES;
    uplink_set_token(u, t);
    char why[512];
    int st = uplink_call(u, method, path, body, CALL_TIMEOUT, resp, why, sizeof(why));
    if (st < 0 && st != -EINTR)
        set_reachable(s, false, why);
    else if (st > 0)
        set_reachable(s, true, NULL);
    if (st == 401 || st == 403)
        token_refused(s, t, st, *resp);
    free(t);
    return st;
}

static int heartbeat(struct sync *s, struct uplink *u, uint64_t *sent_version)
{
    char eb[300]; /* error text of an answer */
    struct spool_stats sp = spool_stats(s->spool);
    pthread_mutex_lock(&s->lock);
    *sent_version = s->report_version;
    json_t *body = json_pack(
        "{s:s,s:s,s:s,s:{s:s,s:s},s:I,s:{s:I,s:I,s:I}}", "os", s->os, "kernel", s->kernel,
        "agent_version", s->version, "datapath", "state",
        s->dp_state ? s->dp_state : "not_installed", "reason", s->dp_reason ? s->dp_reason : "",
        "policy_revision", (json_int_t)s->applied, "spool", "pending", (json_int_t)sp.pending,
        "dropped", (json_int_t)sp.dropped, "dropped_events", (json_int_t)sp.dropped_events);
    json_t *dpj = json_object_get(body, "datapath");
    if (dpj && s->dp_backend)
        json_object_set_new(dpj, "backend", json_string(s->dp_backend));
    if (dpj && s->dp_probes)
        json_object_set_new(dpj, "probes", json_deep_copy(s->dp_probes));
    if (dpj && s->dp_detections)
        json_object_update(dpj, s->dp_detections);
    pthread_mutex_unlock(&s->lock);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return -ENOMEM;
    json_t *resp = NULL;
    int st = authed_call(s, u, "POST", V1 "/agents/heartbeat", text, &resp);
    free(text);
    json_int_t hb = json_integer_value(json_object_get(resp, "heartbeat_interval"));
    if (st == 200 && hb > 0) {
        pthread_mutex_lock(&s->lock);
        s->hb_interval = (int)hb;
        pthread_mutex_unlock(&s->lock);
    } else if (st > 0 && st != 200 && st != 401 && st != 403) {
        log_repeat(s, "warning", "heartbeat: HTTP %d %s", st,
                   uplink_error_text(resp, eb, sizeof(eb)));
    }
    json_decref(resp);
    return st == 200 ? 0 : -EIO;
}

static int report_workloads(struct sync *s, struct uplink *u)
{
    char eb[300]; /* error text of an answer */
    pthread_mutex_lock(&s->lock);
    uint64_t v = s->wl_version;
    char *list = s->workloads ? moat_strdup(s->workloads) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!list)
        return 0;
    char *body = moat_asprintf("{\"workloads\":%s}", list);
    free(list);
    if (!body)
        return -ENOMEM;
    json_t *resp = NULL;
    int st = authed_call(s, u, "PUT", V1 "/agents/workloads", body, &resp);
    free(body);
    if (st == 200) {
        pthread_mutex_lock(&s->lock);
        s->wl_sent = v;
        pthread_mutex_unlock(&s->lock);
    } else if (st == 400) {
        agent_log("error", "the server refused this node's workloads: %s",
                  uplink_error_text(resp, eb, sizeof(eb)));
        pthread_mutex_lock(&s->lock);
        s->wl_sent = v; /* same list, same answer: wait for the inventory to change */
        pthread_mutex_unlock(&s->lock);
    }
    json_decref(resp);
    return st == 200 ? 0 : -EIO;
}

static int report_quarantines(struct sync *s, struct uplink *u)
{
    pthread_mutex_lock(&s->lock);
    uint64_t v = s->q_version;
    char *list = s->quarantines ? moat_strdup(s->quarantines) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!list)
        return 0;
    char *body = moat_asprintf("{\"quarantines\":%s}", list);
    free(list);
    if (!body)
        return -ENOMEM;
    json_t *resp = NULL;
    int st = authed_call(s, u, "PUT", V1 "/agents/quarantines", body, &resp);
    free(body);
    bool settled = st == 200 || st == 400 || st == 404 || st == 405;
    if (st == 400) {
        char eb[300]; /* error text of the answer */
        agent_log("error", "the server refused this node's quarantines: %s",
                  uplink_error_text(resp, eb, sizeof(eb)));
    }
    if (st == 404 || st == 405)
        agent_log("warning", "the server takes no quarantine reports (older version): "
                             "quarantines stay on this node");
    if (settled) {
        pthread_mutex_lock(&s->lock);
        s->q_sent = v;
        s->q_unsupported = st == 404 || st == 405;
        pthread_mutex_unlock(&s->lock);
    }
    json_decref(resp);
    return settled ? 0 : -EIO;
}

/* Sends spooled batches, oldest first, until the spool is empty or a send fails. */
static void deliver(struct sync *s, struct uplink *u)
{
    char eb[300]; /* error text of an answer */
    char *text;
    uint64_t seq;
    while (!atomic_load(&s->stop) && spool_oldest(s->spool, &text, &seq) == 0) {
        json_t *resp = NULL;
        int st = authed_call(s, u, "POST", V1 "/agents/events", text, &resp);
        free(text);
        bool done = st >= 200 && st < 300;
        if (st == 400 || st == 413) {
            agent_log("error",
                      "the server refused event batch %llu for good (HTTP %d %s): "
                      "dropped",
                      (unsigned long long)seq, st, uplink_error_text(resp, eb, sizeof(eb)));
            done = true;
        }
        json_decref(resp);
        if (!done)
            return;
        spool_done(s->spool, seq);
        pthread_mutex_lock(&s->lock);
        if (st >= 200 && st < 300)
            s->delivered++;
        else
            s->refused++;
        pthread_mutex_unlock(&s->lock);
    }
}

static void *reporter_main(void *arg)
{
    struct sync *s = arg;
    struct uplink *u = uplink_new(s->server, s->ca_file, &s->stop);
    double next_hb = 0, backoff = 0.1;
    while (u && !atomic_load(&s->stop)) {
        pthread_mutex_lock(&s->lock);
        bool have = s->token != NULL;
        bool report = s->report_version != s->reported_version;
        bool wl = s->wl_version != s->wl_sent;
        bool quar = s->q_version != s->q_sent && !s->q_unsupported;
        double hb = s->hb_interval;
        pthread_mutex_unlock(&s->lock);
        int err = 0;
        if (!have) {
            err = do_register(s, u);
            next_hb = 0;
            report = wl = true;
        }
        if (!err && wl)
            err = report_workloads(s, u);
        if (!err && quar)
            err = report_quarantines(s, u);
        if (!err && (report || now_s() >= next_hb)) {
            uint64_t v;
            /* the interval counts from the send, not the answer: a slow server must not
             * stretch the cadence it judges `offline` by */
            double sent_at = now_s();
            err = heartbeat(s, u, &v);
            if (!err) {
                next_hb = sent_at + hb;
                pthread_mutex_lock(&s->lock);
                s->reported_version = v;
                pthread_mutex_unlock(&s->lock);
            }
        }
        if (!err)
            deliver(s, u);
        if (err) {
            nap(s, backoff);
            backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
        } else {
            backoff = 0.1;
            nap(s, 0.2);
        }
    }
    uplink_free(u);
    return NULL;
}

/* ---- start / stop -------------------------------------------------------- */

/* A whole file as text (NUL-terminated), or NULL. */
static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    while (f) {
        if (moat_grow(&buf, &cap, n + 65537, 1) < 0)
            break;
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            bool ok = !ferror(f);
            fclose(f);
            if (!ok)
                break;
            buf[n] = '\0';
            *len = n;
            return buf;
        }
    }
    if (f)
        fclose(f);
    free(buf);
    return NULL;
}

static void load_saved(struct sync *s)
{
    char path[4200];
    state_path(s, "credential.json", path, sizeof(path));
    json_t *cred = json_load_file(path, 0, NULL);
    const char *tok = json_string_value(json_object_get(cred, "token"));
    /* the credential of a server of the list (one database behind every replica) */
    if (tok &&
        uplink_servers_overlap(json_string_value(json_object_get(cred, "server")) ?: "",
                               s->server) &&
        strcmp(json_string_value(json_object_get(cred, "cluster")) ?: "", s->cluster) == 0 &&
        strcmp(json_string_value(json_object_get(cred, "node")) ?: "", s->node) == 0)
        s->token = moat_strdup(tok);
    json_decref(cred);
    state_path(s, THREATS_META, path, sizeof(path));
    json_t *meta = json_load_file(path, 0, NULL);
    const char *v = json_string_value(json_object_get(meta, "version"));
    s->ti_version = v ? moat_strdup(v) : NULL;
    json_decref(meta);
    state_path(s, "policy.json", path, sizeof(path));
    size_t len = 0;
    char *text = read_text(path, &len);
    json_t *pol = text ? json_loadb(text, len, 0, NULL) : NULL;
    const char *c = json_string_value(json_object_get(json_object_get(pol, "cluster"), "name"));
    char why[300];
    if (pol && c && strcmp(c, s->cluster) == 0 &&
        json_is_integer(json_object_get(pol, "revision")) &&
        polstate_index(text, len, &s->kept, why, sizeof(why)) == 0) {
        text = NULL; /* s->kept has it */
        s->pending = pol;
        s->seen_revision = json_integer_value(json_object_get(pol, "revision"));
        uint64_t one = 1;
        if (write(s->wake_fd, &one, sizeof(one)) < 0)
            agent_log("warning", "cannot wake the main loop: %s", strerror(errno));
    } else {
        free(text);
        json_decref(pol);
    }
}

static int mkdirs(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -errno : 0;
}

int sync_start(const struct sync_config *cfg, struct sync **out)
{
    *out = NULL;
    struct sync *s = moat_calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->cfg = *cfg;
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->hb_interval = HB_DEFAULT_S;
    s->server = moat_strdup(cfg->server);
    s->cluster = moat_strdup(cfg->cluster);
    s->node = moat_strdup(cfg->node);
    s->join_token = cfg->join_token ? moat_strdup(cfg->join_token) : NULL;
    s->state_dir = moat_strdup(cfg->state_dir);
    s->ca_file = cfg->ca_file ? moat_strdup(cfg->ca_file) : NULL;
    s->os = moat_strdup(cfg->os ? cfg->os : "");
    s->kernel = moat_strdup(cfg->kernel ? cfg->kernel : "");
    s->version = moat_strdup(cfg->agent_version ? cfg->agent_version : "");
    s->reachable = true; /* so that the first failure is logged */
    int err = s->wake_fd < 0 ? -errno : 0;
    if (!err && (!s->server || !s->cluster || !s->node || !s->state_dir || !s->os || !s->kernel ||
                 !s->version))
        err = -ENOMEM;
    if (!err)
        err = mkdirs(s->state_dir);
    char dir[4200];
    state_path(s, "spool", dir, sizeof(dir));
    if (!err)
        err = spool_open(dir, cfg->spool_max, &s->spool);
    /* The threads take no signals: SIGTERM must reach the main loop, which
     * spools the last alert events before moatd exits. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (!err) {
        load_saved(s);
        err = -pthread_create(&s->poller, NULL, poller_main, s);
    }
    s->poller_up = !err;
    if (!err)
        err = -pthread_create(&s->reporter, NULL, reporter_main, s);
    s->reporter_up = !err;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        sync_stop(s);
        return err;
    }
    *out = s;
    return 0;
}

void sync_stop(struct sync *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->stop, true);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (s->poller_up)
        pthread_join(s->poller, NULL);
    if (s->reporter_up)
        pthread_join(s->reporter, NULL);
    spool_close(s->spool);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    json_decref(s->pending);
    json_decref(s->deltas);
    polstate_free(s->kept);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    char *owned[] = {s->server,    s->cluster,    s->node,        s->join_token,
                     s->state_dir, s->ca_file,    s->os,          s->kernel,
                     s->version,   s->token,      s->dp_state,    s->dp_reason,
                     s->workloads, s->dp_backend, s->quarantines, s->ti_version};
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
        free(owned[i]);
    json_decref(s->dp_probes);
    json_decref(s->dp_detections);
    free(s);
}

int sync_wake_fd(const struct sync *s)
{
    return s->wake_fd;
}

json_t *sync_take_policy(struct sync *s, json_t **deltas)
{
    uint64_t v;
    if (read(s->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        agent_log("warning", "wake: %s", strerror(errno));
    /* Both under one lock: taken apart, a full answer arriving between the two
     * would be applied after the deltas that follow it, an older revision
     * last (it was: a node stuck one revision behind until the next change). */
    pthread_mutex_lock(&s->lock);
    json_t *p = s->pending;
    s->pending = NULL;
    *deltas = s->deltas;
    s->deltas = NULL;
    pthread_mutex_unlock(&s->lock);
    return p;
}

void sync_refetch(struct sync *s)
{
    pthread_mutex_lock(&s->lock);
    s->seen_revision = 0;
    pthread_mutex_unlock(&s->lock);
}

json_t *sync_full_policy(struct sync *s, char *why, size_t n)
{
    pthread_mutex_lock(&s->lock);
    size_t len = s->kept ? s->kept->len : 0;
    char *text = s->kept ? malloc(len + 1) : NULL;
    if (text)
        memcpy(text, s->kept->text, len + 1);
    pthread_mutex_unlock(&s->lock);
    if (!text) {
        snprintf(why, n, "%s", len ? "out of memory" : "no policy is kept");
        return NULL;
    }
    json_error_t e;
    json_t *p = json_loadb(text, len, 0, &e);
    free(text);
    if (!p)
        snprintf(why, n, "the policy kept is unreadable: %s", e.text);
    return p;
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int sync_set_report(struct sync *s, const struct sync_report *r)
{
    char *wl = r->workloads ? json_dumps(r->workloads, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (r->workloads && !wl)
        return -ENOMEM;
    pthread_mutex_lock(&s->lock);
    /* A new datapath state is sent at once; a new revision waits for the next
     * heartbeat: fifty agents applying a change must not queue fifty writes on
     * the server just when it answers their long-polls. */
    bool changed = !same(s->dp_state, r->datapath_state) ||
                   !same(s->dp_reason, r->datapath_reason) ||
                   ((s->dp_detections || r->datapath_detections) &&
                    !json_equal(s->dp_detections, r->datapath_detections));
    s->applied = r->revision;
    if (changed) {
        free(s->dp_state);
        free(s->dp_reason);
        s->dp_state = moat_strdup(r->datapath_state);
        s->dp_reason = moat_strdup(r->datapath_reason);
        free(s->dp_backend);
        json_decref(s->dp_probes);
        s->dp_backend = moat_strdup(r->datapath_backend);
        s->dp_probes = r->datapath_probes ? json_deep_copy(r->datapath_probes) : NULL;
        json_decref(s->dp_detections);
        s->dp_detections = r->datapath_detections ? json_deep_copy(r->datapath_detections) : NULL;
        s->report_version++;
    }
    if (wl && !same(wl, s->workloads)) {
        free(s->workloads);
        s->workloads = wl;
        wl = NULL;
        s->wl_version++;
        changed = true;
    }
    if (changed)
        pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    free(wl);
    return 0;
}

int sync_set_quarantines(struct sync *s, const json_t *list)
{
    char *text = json_dumps(list, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return -ENOMEM;
    pthread_mutex_lock(&s->lock);
    if (!same(text, s->quarantines)) {
        free(s->quarantines);
        s->quarantines = text;
        text = NULL;
        s->q_version++;
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    free(text);
    return 0;
}

void sync_threat_path(const struct sync *s, char *buf, size_t n)
{
    state_path(s, THREATS_FILE, buf, n);
}

int sync_send_events(struct sync *s, const json_t *events)
{
    int err = spool_add(s->spool, events);
    pthread_mutex_lock(&s->lock);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return err;
}

json_t *sync_status(struct sync *s)
{
    struct spool_stats sp = spool_stats(s->spool);
    pthread_mutex_lock(&s->lock);
    json_t *j =
        json_pack("{s:s,s:s,s:b,s:b,s:s,s:I,s:{s:I,s:I,s:I,s:I,s:I}}", "server", s->server,
                  "cluster", s->cluster, "registered", s->token != NULL, "reachable", s->reachable,
                  "last_error", s->last_error, "revision_received", (json_int_t)s->seen_revision,
                  "spool", "pending", (json_int_t)sp.pending, "delivered", (json_int_t)s->delivered,
                  "refused", (json_int_t)s->refused, "dropped", (json_int_t)sp.dropped,
                  "dropped_events", (json_int_t)sp.dropped_events);
    pthread_mutex_unlock(&s->lock);
    return j;
}
