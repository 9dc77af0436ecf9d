/*
 * src_engine: workloads from a container engine's Docker-compatible REST API
 * (Docker, and Podman's `podman system service`) over its UNIX socket.
 *
 * One thread: list the running containers, then follow the events stream
 * (no polling), from a moment taken before the list, so an event that
 * happens while listing is replayed rather than missed. Each container event
 * that can change what a workload looks like (create, start, restart,
 * unpause, network connect/disconnect) re-inspects the container; die, stop,
 * destroy remove it. When the stream ends (the engine restarted, its
 * socket went away) the thread reconnects with a growing back-off (0.1 s to
 * 5 s) and lists again; ids not seen in the new list are dropped then
 * (wsource_relist), the others stay without a gap.
 *
 * For each container: name (without the leading '/'), the image as the engine
 * reports it (Config.Image), labels (those the model accepts), the addresses
 * of every network (IPv4 and IPv6), and the host-side interface: the peer of
 * eth0 in the container's network namespace (/proc/PID/ns/net, netns.h).
 * Containers sharing the host's or another container's network namespace
 * have no interface or address of their own and are not workloads.
 */
#include "agent.h"
#include "labels.h"
#include "netns.h"
#include "whttp.h"
#include "wsource.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define API          "http://engine/v1.40" /* both Docker (>= 19.03) and Podman 4 answer it */
#define CALL_TIMEOUT 10
#define ANSWER_MAX   (32u << 20)
#define BACKOFF_MIN  0.1
#define BACKOFF_MAX  5.0

struct engine {
    struct wsource *ws;
    const char *runtime;
    pthread_t thread;
    bool started;
    struct whttp *stream, *calls;
    int home_fd; /* the namespace moatd enforces in (-1: this thread's) */
};

/* ---------- one container ---------- */

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void add_ip(json_t *ips, const char *ip)
{
    if (!ip || !*ip)
        return;
    size_t i;
    json_t *v;
    json_array_foreach(ips, i, v) if (strcmp(json_string_value(v), ip) == 0) return;
    json_array_append_new(ips, json_string(ip));
}

/* The host-side peer of eth0 of process `pid`'s network namespace. */
static int host_iface(struct engine *e, long pid, char out[IF_NAMESIZE])
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/ns/net", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int err = netns_peer_name(fd, "eth0", e->home_fd, out);
    close(fd);
    return err;
}

/* A Workload document of inspected container `c`, or NULL when it is not one. */
static json_t *container_doc(struct engine *e, const json_t *c)
{
    const struct wsource_config *cfg = wsource_cfg(e->ws);
    const json_t *state = json_object_get(c, "State"), *conf = json_object_get(c, "Config");
    long pid = (long)json_integer_value(json_object_get(state, "Pid"));
    if (!json_is_true(json_object_get(state, "Running")) || pid <= 0)
        return NULL;
    const char *mode = jstr(json_object_get(c, "HostConfig"), "NetworkMode");
    if (mode && (strcmp(mode, "host") == 0 || strncmp(mode, "container:", 10) == 0))
        return NULL; /* no interface and no address of its own */
    const char *name = jstr(c, "Name");
    if (name && *name == '/')
        name++;
    json_t *labels = wsource_clean_labels(json_object_get(conf, "Labels"));
    const char *ns = jstr(labels, "io.kubernetes.pod.namespace");
    if (!ns && cfg->namespace_label)
        ns = jstr(labels, cfg->namespace_label);
    if (!ns)
        ns = cfg->default_namespace;
    if (!json_object_get(labels, "app") && cfg->app_label && jstr(labels, cfg->app_label))
        json_object_set_new(labels, "app", json_string(jstr(labels, cfg->app_label)));
    json_t *ips = json_array();
    const json_t *net = json_object_get(c, "NetworkSettings");
    add_ip(ips, jstr(net, "IPAddress"));
    add_ip(ips, jstr(net, "GlobalIPv6Address"));
    const char *key;
    const json_t *n;
    json_object_foreach((json_t *)json_object_get(net, "Networks"), key, n)
    {
        add_ip(ips, jstr(n, "IPAddress"));
        add_ip(ips, jstr(n, "GlobalIPv6Address"));
    }
    char src[160];
    snprintf(src, sizeof(src), "%s:%s", e->runtime, jstr(c, "Id") ? jstr(c, "Id") : "");
    json_t *doc = json_pack("{s:s?,s:s,s:s?,s:o,s:o,s:s}", "name", name, "namespace", ns, "image",
                            jstr(conf, "Image"), "labels", labels, "ips", ips, "source", src);
    char ifname[IF_NAMESIZE];
    int err = doc ? host_iface(e, pid, ifname) : 0;
    if (doc && !err)
        json_object_set_new(doc, "interface", json_string(ifname));
    else if (doc && cfg->verbose)
        agent_log("info", "%s container %s: no host-side interface found for eth0: %s", e->runtime,
                  name ? name : "?", strerror(-err));
    return doc;
}

/* Inspects container `id` and puts or removes its workload. */
static void refresh_container(struct engine *e, const char *id)
{
    char url[512], why[256];
    snprintf(url, sizeof(url), API "/containers/%.128s/json", id);
    char *body = NULL;
    int status = whttp_get(e->calls, url, CALL_TIMEOUT, ANSWER_MAX, &body, why, sizeof(why));
    json_t *c = status == 200 && body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    if (status == 404) {
        wsource_del(e->ws, id);
    } else if (c) {
        json_t *doc = container_doc(e, c);
        if (doc)
            wsource_put(e->ws, id, doc);
        else
            wsource_del(e->ws, id);
    } else if (status < 0) {
        agent_log("warning", "%s: inspecting container %.12s: %s", e->runtime, id, why);
    }
    json_decref(c);
}

/* ---------- list and events ---------- */

static int list_all(struct engine *e, char *why, size_t n)
{
    char *body = NULL;
    int status =
        whttp_get(e->calls, API "/containers/json", CALL_TIMEOUT, ANSWER_MAX, &body, why, n);
    json_t *list = status == 200 && body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    if (status < 0)
        return status;
    if (!json_is_array(list)) {
        snprintf(why, n, "GET /containers/json answered %d", status);
        json_decref(list);
        return -EPROTO;
    }
    wsource_relist(e->ws, true);
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) if (jstr(c, "Id")) refresh_container(e, jstr(c, "Id"));
    wsource_relist(e->ws, false);
    json_decref(list);
    return 0;
}

static bool is_one_of(const char *s, const char *const *list)
{
    for (; s && *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static int on_event(void *ctx, char *line, size_t len)
{
    (void)len;
    struct engine *e = ctx;
    /* "kill" only sends a signal: the container's "die" follows if it ends */
    static const char *const gone[] = {"die", "stop", "destroy", "remove", "cleanup", NULL};
    static const char *const changed[] = {"create", "start",   "restart",    "unpause", "init",
                                          "rename", "connect", "disconnect", NULL};
    json_t *ev = json_loads(line, 0, NULL);
    const char *type = jstr(ev, "Type"), *action = jstr(ev, "Action");
    const json_t *attrs = json_object_get(json_object_get(ev, "Actor"), "Attributes");
    const char *id = NULL;
    if (type && strcmp(type, "container") == 0)
        id = jstr(json_object_get(ev, "Actor"), "ID");
    else if (type && strcmp(type, "network") == 0)
        id = jstr(attrs, "container");
    if (id && is_one_of(action, gone))
        wsource_del(e->ws, id);
    else if (id && is_one_of(action, changed))
        refresh_container(e, id);
    json_decref(ev);
    return atomic_load(wsource_stop_flag(e->ws)) ? 1 : 0;
}

static void *engine_main(void *arg)
{
    struct engine *e = arg;
    const struct wsource_config *cfg = wsource_cfg(e->ws);
    double backoff = BACKOFF_MIN;
    char why[300];
    while (!atomic_load(wsource_stop_flag(e->ws))) {
        time_t since = time(NULL) - 1; /* events from before the list are replayed */
        int err = list_all(e, why, sizeof(why));
        if (!err) {
            wsource_set_state(e->ws, cfg->socket, NULL);
            backoff = BACKOFF_MIN;
            char url[256];
            snprintf(url, sizeof(url),
                     API "/events?since=%lld&filters=%%7B%%22type%%22%%3A%%5B%%22container%%22%%2C"
                         "%%22network%%22%%5D%%7D",
                     (long long)since);
            char *errbody = NULL;
            int status = whttp_stream(e->stream, url, 0, on_event, e, &errbody, why, sizeof(why));
            free(errbody);
            if (atomic_load(wsource_stop_flag(e->ws)))
                break;
            if (status >= 0)
                snprintf(why, sizeof(why), "the events stream ended (HTTP %d)", status);
        }
        wsource_set_state(e->ws, cfg->socket, why);
        if (!wsource_nap(e->ws, backoff))
            break;
        backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
    }
    return NULL;
}

/* ---------- ops ---------- */

static void engine_stop(void *state)
{
    struct engine *e = state;
    if (!e)
        return;
    if (e->started)
        pthread_join(e->thread, NULL);
    whttp_free(e->stream);
    whttp_free(e->calls);
    if (e->home_fd >= 0)
        close(e->home_fd);
    free(e);
}

static int engine_start(struct wsource *ws, const char *runtime, void **state)
{
    const struct wsource_config *cfg = wsource_cfg(ws);
    struct engine *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->ws = ws;
    e->runtime = runtime;
    e->home_fd = -1;
    struct whttp_opts o = {.unix_socket = cfg->socket, .stop = wsource_stop_flag(ws)};
    e->stream = whttp_new(&o);
    e->calls = whttp_new(&o);
    int err = e->stream && e->calls ? 0 : -ENOMEM;
    if (!err && cfg->netns) {
        char path[300];
        snprintf(path, sizeof(path), "/run/netns/%s", cfg->netns);
        e->home_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (e->home_fd < 0) {
            err = -errno;
            agent_log("error", "--netns %s: %s", cfg->netns, strerror(errno));
        }
    }
    if (!err) {
        err = -pthread_create(&e->thread, NULL, engine_main, e);
        e->started = !err;
    }
    *state = e; /* on error too: wsource_start stops it (the stop flag first) */
    return err;
}

static int docker_start(struct wsource *ws, void **state)
{
    return engine_start(ws, "docker", state);
}

static int podman_start(struct wsource *ws, void **state)
{
    return engine_start(ws, "podman", state);
}

const struct wsource_ops wsource_docker = {.name = "docker",
                                           .default_socket = "/var/run/docker.sock",
                                           .start = docker_start,
                                           .stop = engine_stop};
const struct wsource_ops wsource_podman = {.name = "podman",
                                           .default_socket = "/run/podman/podman.sock",
                                           .start = podman_start,
                                           .stop = engine_stop};
