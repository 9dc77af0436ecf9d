/* wsource: the workload set a discovery source keeps (see wsource.h). */
#include "wsource.h"
#include "agent.h"
#include "labels.h"
#include "loader.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

extern const struct wsource_ops wsource_docker, wsource_podman, wsource_kubernetes;

static const struct wsource_ops *const all_sources[] = {&wsource_docker, &wsource_podman,
                                                        &wsource_kubernetes};

struct wsource {
    const struct wsource_ops *ops;
    struct wsource_config cfg;
    char *runtime, *socket, *kubeconfig, *cluster, *node, *netns, *ns_label, *app_label, *def_ns;
    void *state;
    atomic_bool stop;
    int wake_fd;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* stop */
    /* under lock */
    json_t *set;      /* id -> Workload document */
    json_t *relisted; /* ids put since wsource_relist(begin); NULL: not listing */
    json_t *refused;  /* id -> text of the document refused last (logged once) */
    bool synced;
    char endpoint[256];
    char last_error[300];
    bool connected;
};

const struct wsource_ops *wsource_find(const char *runtime)
{
    for (size_t i = 0; i < sizeof(all_sources) / sizeof(all_sources[0]); i++)
        if (strcmp(all_sources[i]->name, runtime) == 0)
            return all_sources[i];
    return NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int wsource_start(const struct wsource_ops *ops, const struct wsource_config *cfg,
                  struct wsource **out)
{
    *out = NULL;
    struct wsource *ws = calloc(1, sizeof(*ws));
    if (!ws)
        return -ENOMEM;
    ws->ops = ops;
    ws->wake_fd = -1;
    pthread_mutex_init(&ws->lock, NULL);
    pthread_cond_init(&ws->cond, NULL);
    ws->runtime = dup_or_null(cfg->runtime);
    ws->socket = dup_or_null(cfg->socket ? cfg->socket : ops->default_socket);
    ws->kubeconfig = dup_or_null(cfg->kubeconfig);
    ws->cluster = dup_or_null(cfg->cluster);
    ws->node = dup_or_null(cfg->node);
    ws->netns = dup_or_null(cfg->netns);
    ws->ns_label = dup_or_null(cfg->namespace_label);
    ws->app_label = dup_or_null(cfg->app_label);
    ws->def_ns = dup_or_null(cfg->default_namespace ? cfg->default_namespace : "default");
    ws->cfg = (struct wsource_config){.runtime = ws->runtime,
                                      .socket = ws->socket,
                                      .kubeconfig = ws->kubeconfig,
                                      .cluster = ws->cluster,
                                      .node = ws->node,
                                      .netns = ws->netns,
                                      .namespace_label = ws->ns_label,
                                      .app_label = ws->app_label,
                                      .default_namespace = ws->def_ns,
                                      .verbose = cfg->verbose};
    ws->set = json_object();
    ws->refused = json_object();
    ws->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int err = ws->set && ws->refused && ws->runtime && ws->cluster && ws->node && ws->def_ns
                  ? 0
                  : -ENOMEM;
    if (!err && ws->wake_fd < 0)
        err = -errno;
    /* The threads take no signals: SIGTERM must reach moatd's main loop (a
     * thread that got it would end the process without its orderly stop). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (!err)
        err = ops->start(ws, &ws->state);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        wsource_stop(ws);
        return err;
    }
    *out = ws;
    return 0;
}

void wsource_stop(struct wsource *ws)
{
    if (!ws)
        return;
    pthread_mutex_lock(&ws->lock);
    atomic_store(&ws->stop, true);
    pthread_cond_broadcast(&ws->cond);
    pthread_mutex_unlock(&ws->lock);
    if (ws->state)
        ws->ops->stop(ws->state);
    if (ws->wake_fd >= 0)
        close(ws->wake_fd);
    json_decref(ws->set);
    json_decref(ws->relisted);
    json_decref(ws->refused);
    free(ws->runtime);
    free(ws->socket);
    free(ws->kubeconfig);
    free(ws->cluster);
    free(ws->node);
    free(ws->netns);
    free(ws->ns_label);
    free(ws->app_label);
    free(ws->def_ns);
    pthread_mutex_destroy(&ws->lock);
    pthread_cond_destroy(&ws->cond);
    free(ws);
}

int wsource_fd(const struct wsource *ws)
{
    return ws->wake_fd;
}

const struct wsource_config *wsource_cfg(const struct wsource *ws)
{
    return &ws->cfg;
}

const atomic_bool *wsource_stop_flag(const struct wsource *ws)
{
    return &ws->stop;
}

static void wake(struct wsource *ws)
{
    uint64_t one = 1;
    if (write(ws->wake_fd, &one, sizeof(one)) < 0) {
        /* the counter is full: a wake-up is pending anyway */
    }
}

/* One address may name one workload (the loader's rule): the first keeps it. */
static bool ips_taken(json_t *seen, const json_t *doc)
{
    size_t i;
    json_t *ip;
    json_array_foreach(json_object_get(doc, "ips"), i,
                       ip) if (json_object_get(seen, json_string_value(ip))) return true;
    json_array_foreach(json_object_get(doc, "ips"), i, ip)
        json_object_set_new(seen, json_string_value(ip), json_true());
    return false;
}

json_t *wsource_take(struct wsource *ws)
{
    uint64_t n;
    if (read(ws->wake_fd, &n, sizeof(n)) < 0) {
        /* nothing pending: the set is returned all the same */
    }
    json_t *list = json_array(), *seen = json_object();
    pthread_mutex_lock(&ws->lock);
    const char *id;
    json_t *doc;
    json_object_foreach(ws->set, id, doc)
    {
        if (!list || !seen)
            break;
        if (ips_taken(seen, doc)) {
            agent_log("warning", "%s workload %s: an address of it is another workload's: left out",
                      ws->runtime, json_string_value(json_object_get(doc, "name")));
            continue;
        }
        json_array_append(list, doc);
    }
    pthread_mutex_unlock(&ws->lock);
    json_decref(seen);
    return list;
}

bool wsource_synced(struct wsource *ws)
{
    pthread_mutex_lock(&ws->lock);
    bool s = ws->synced;
    pthread_mutex_unlock(&ws->lock);
    return s;
}

json_t *wsource_status(struct wsource *ws)
{
    pthread_mutex_lock(&ws->lock);
    json_t *j =
        json_pack("{s:s,s:s,s:b,s:b,s:I,s:s}", "runtime", ws->runtime, "endpoint", ws->endpoint,
                  "connected", ws->connected, "synced", ws->synced, "workloads",
                  (json_int_t)json_object_size(ws->set), "last_error", ws->last_error);
    pthread_mutex_unlock(&ws->lock);
    return j;
}

/* Loads `doc` alone: 0 when the policy loader takes it, else the first problem in why. */
static int check_doc(const json_t *doc, char *why, size_t n)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    if (!text)
        return -ENOMEM;
    struct moat_policy *p = NULL;
    struct moat_diags d;
    diags_init(&d);
    int err = policy_load_text(&p, text, strlen(text), "discovered workload", &d);
    snprintf(why, n, "%s", d.count ? d.items[0].text : "invalid");
    diags_clear(&d);
    policy_free(p);
    free(text);
    return err;
}

void wsource_put(struct wsource *ws, const char *id, json_t *doc)
{
    if (!doc)
        return;
    json_object_set_new(doc, "kind", json_string("Workload"));
    json_object_set_new(doc, "cluster", json_string(ws->cluster));
    json_object_set_new(doc, "node", json_string(ws->node));
    char why[512];
    int err = check_doc(doc, why, sizeof(why));
    pthread_mutex_lock(&ws->lock);
    if (ws->relisted)
        json_object_set_new(ws->relisted, id, json_true());
    if (err) {
        char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
        const char *last = json_string_value(json_object_get(ws->refused, id));
        if (!last || !text || strcmp(last, text) != 0)
            agent_log("warning", "%s %.64s: left out: %s", ws->runtime, id, why);
        if (text)
            json_object_set_new(ws->refused, id, json_string(text));
        free(text);
        if (json_object_get(ws->set, id)) {
            json_object_del(ws->set, id);
            wake(ws);
        }
        json_decref(doc);
    } else {
        json_object_del(ws->refused, id);
        const json_t *old = json_object_get(ws->set, id);
        if (!old || !json_equal(old, doc)) {
            json_object_set_new(ws->set, id, doc);
            wake(ws);
        } else {
            json_decref(doc);
        }
    }
    pthread_mutex_unlock(&ws->lock);
}

void wsource_del(struct wsource *ws, const char *id)
{
    pthread_mutex_lock(&ws->lock);
    json_object_del(ws->refused, id);
    if (json_object_get(ws->set, id)) {
        json_object_del(ws->set, id);
        wake(ws);
    }
    pthread_mutex_unlock(&ws->lock);
}

void wsource_relist(struct wsource *ws, bool begin)
{
    pthread_mutex_lock(&ws->lock);
    if (begin) {
        json_decref(ws->relisted);
        ws->relisted = json_object();
    } else if (ws->relisted) {
        const char *id;
        json_t *doc, *tmp;
        json_object_foreach_safe(ws->set, tmp, id, doc)
        {
            (void)doc;
            if (!json_object_get(ws->relisted, id)) {
                json_object_del(ws->set, id);
                wake(ws);
            }
        }
        json_decref(ws->relisted);
        ws->relisted = NULL;
        if (!ws->synced)
            wake(ws); /* the first complete set, even an empty one, is news */
        ws->synced = true;
    }
    pthread_mutex_unlock(&ws->lock);
}

void wsource_set_state(struct wsource *ws, const char *endpoint, const char *error)
{
    pthread_mutex_lock(&ws->lock);
    bool was = ws->connected;
    char before[sizeof(ws->last_error)];
    snprintf(before, sizeof(before), "%s", ws->last_error);
    snprintf(ws->endpoint, sizeof(ws->endpoint), "%s", endpoint);
    ws->connected = !error;
    if (error)
        snprintf(ws->last_error, sizeof(ws->last_error), "%s", error);
    pthread_mutex_unlock(&ws->lock);
    if (error && (was || strcmp(before, error) != 0))
        agent_log("warning", "%s at %s: %s (retrying)", ws->runtime, endpoint, error);
    else if (!error && !was)
        agent_log("info", "%s at %s: connected", ws->runtime, endpoint);
}

bool wsource_nap(struct wsource *ws, double secs)
{
    pthread_mutex_lock(&ws->lock);
    if (!atomic_load(&ws->stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ns = (long long)ts.tv_nsec + (long long)(secs * 1e9);
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&ws->cond, &ws->lock, &ts);
    }
    bool go_on = !atomic_load(&ws->stop);
    pthread_mutex_unlock(&ws->lock);
    return go_on;
}

json_t *wsource_clean_labels(const json_t *labels)
{
    json_t *out = json_object();
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)labels, key, v)
    {
        const char *value = json_string_value(v);
        if (out && value && !label_key_check(key) && !label_value_check(value))
            json_object_set_new(out, key, json_string(value));
    }
    return out;
}
