/*
 * src_kube: workloads from the Kubernetes API server — the pods of this node
 * (fieldSelector spec.nodeName=NODE) and the labels of their namespaces.
 *
 * Credentials: a kubeconfig (--kubeconfig: its current context's server,
 * CA, token or client certificate; files relative to the kubeconfig), else
 * the pod's service account (KUBERNETES_SERVICE_HOST/PORT, the token and CA
 * under /var/run/secrets/kubernetes.io/serviceaccount; the token is read
 * again at each connection, as it rotates).
 *
 * Two threads, one per resource (pods; namespaces), each the client-go
 * reflector loop: list (paged), then watch from the list's resourceVersion
 * with bookmarks; a watch that ends (the server's timeout, a dropped
 * connection) is resumed from the last resourceVersion seen; 410 Gone (as an
 * HTTP status or an ERROR event) means that version is too old: list again.
 * Failures back off from 0.2 s to 5 s. The first pod list waits for the
 * first namespace list, so the first workloads already carry their
 * namespace's labels.
 *
 * A pod is a workload when it is not on the host's network and has an
 * address: name, namespace, labels, namespace_labels, the image of its first
 * container (as the runtime reports it in the status, else the spec's), its
 * addresses (status.podIPs), and its host-side interface, found from its
 * first address (netns.h): the route to it, or the veth peer of the
 * namespace that holds it.
 */
#include "agent.h"
#include "doc.h"
#include "labels.h"
#include "netns.h"
#include "whttp.h"
#include "wsource.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SA_DIR       "/var/run/secrets/kubernetes.io/serviceaccount"
#define CALL_TIMEOUT 30
#define WATCH_S      300 /* timeoutSeconds of a watch; the server ends it then */
#define IDLE_S       (WATCH_S + 60)
#define ANSWER_MAX   (64u << 20)
#define PAGE         500
#define BACKOFF_MIN  0.2
#define BACKOFF_MAX  5.0

struct kube {
    struct wsource *ws;
    char *server; /* base URL, no trailing '/' */
    char *token_file, *token, *ca_file, *ca_pem, *cert_file, *key_file, *cert_pem, *key_pem;
    bool insecure;
    int home_fd;
    pthread_t pods_thread, ns_thread;
    bool pods_started, ns_started;
    pthread_mutex_t lock;
    pthread_cond_t ns_listed_cond;
    bool ns_listed;
    json_t *pods;       /* uid -> pod (under lock) */
    json_t *namespaces; /* name -> labels (under lock) */
    json_t *ifaces;     /* uid -> {"ip", "interface"}: found once per address (under lock) */
};

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* ---------- credentials ---------- */

static int b64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Base64 text (kubeconfig *-data) to a NUL-terminated string; NULL when invalid. */
static char *b64_decode(const char *in)
{
    size_t n = strlen(in);
    char *out = malloc(n / 4 * 3 + 4);
    if (!out)
        return NULL;
    size_t len = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = in; *p; p++) {
        if (*p == '=' || *p == '\n' || *p == '\r' || *p == ' ')
            continue;
        int v = b64_value((unsigned char)*p);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[len++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[len] = '\0';
    return out;
}

static const char *dstr(const struct doc_node *m, const char *k)
{
    const struct doc_node *n = doc_map_get(m, k);
    return n && n->type == DOC_SCALAR ? n->text : NULL;
}

/* The `inner` map of the entry of list `key` whose name is `name`. */
static const struct doc_node *named(const struct doc_node *root, const char *key, const char *name,
                                    const char *inner)
{
    const struct doc_node *list = doc_map_get(root, key);
    for (size_t i = 0; name && list && list->type == DOC_SEQ && i < list->count; i++) {
        const char *n = dstr(list->items[i], "name");
        if (n && strcmp(n, name) == 0)
            return doc_map_get(list->items[i], inner);
    }
    return NULL;
}

/* A path of the kubeconfig, made absolute from the kubeconfig's folder. */
static char *rel_path(const char *kubeconfig, const char *p)
{
    if (!p)
        return NULL;
    if (p[0] == '/')
        return strdup(p);
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", kubeconfig);
    size_t n = strlen(dirname(buf)) + strlen(p) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", dirname(buf), p);
    return out;
}

static int load_kubeconfig(struct kube *k, const char *path, char *why, size_t n)
{
    struct doc_set *set = NULL;
    struct moat_diags d;
    diags_init(&d);
    int err = doc_parse_file(path, &set, &d);
    if (err) {
        snprintf(why, n, "%s", d.count ? d.items[0].text : strerror(-err));
        diags_clear(&d);
        return err;
    }
    diags_clear(&d);
    const struct doc_node *root = set->count ? set->docs[0] : NULL;
    const char *ctx_name = dstr(root, "current-context");
    const struct doc_node *ctx = named(root, "contexts", ctx_name, "context");
    const struct doc_node *cl = named(root, "clusters", dstr(ctx, "cluster"), "cluster");
    const struct doc_node *user = named(root, "users", dstr(ctx, "user"), "user");
    err = -EINVAL;
    if (!ctx)
        snprintf(why, n, "%s: current-context \"%s\" is not among its contexts", path,
                 ctx_name ? ctx_name : "");
    else if (!cl || !dstr(cl, "server"))
        snprintf(why, n, "%s: context %s: no cluster with a server", path, ctx_name);
    else if (user && (doc_map_get(user, "exec") || doc_map_get(user, "auth-provider")))
        snprintf(why, n,
                 "%s: user of context %s: exec and auth-provider credentials are not "
                 "supported (use a token, a token file or a client certificate)",
                 path, ctx_name);
    else
        err = 0;
    if (!err) {
        k->server = strdup(dstr(cl, "server"));
        k->ca_file = rel_path(path, dstr(cl, "certificate-authority"));
        k->insecure = dstr(cl, "insecure-skip-tls-verify") &&
                      strcmp(dstr(cl, "insecure-skip-tls-verify"), "true") == 0;
        k->token = dstr(user, "token") ? strdup(dstr(user, "token")) : NULL;
        k->token_file = rel_path(path, dstr(user, "tokenFile"));
        k->cert_file = rel_path(path, dstr(user, "client-certificate"));
        k->key_file = rel_path(path, dstr(user, "client-key"));
        const char *ca = dstr(cl, "certificate-authority-data");
        const char *cert = dstr(user, "client-certificate-data");
        const char *key = dstr(user, "client-key-data");
        k->ca_pem = ca ? b64_decode(ca) : NULL;
        k->cert_pem = cert ? b64_decode(cert) : NULL;
        k->key_pem = key ? b64_decode(key) : NULL;
        if (!k->server || (ca && !k->ca_pem) || (cert && !k->cert_pem) || (key && !k->key_pem)) {
            snprintf(why, n, "%s: a *-data field is not base64", path);
            err = -EINVAL;
        }
    }
    doc_set_free(set);
    return err;
}

static int load_in_cluster(struct kube *k, char *why, size_t n)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host) {
        snprintf(why, n, "not in a pod (KUBERNETES_SERVICE_HOST is not set): give --kubeconfig");
        return -EINVAL;
    }
    char url[300];
    bool v6 = strchr(host, ':') != NULL;
    snprintf(url, sizeof(url), "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "",
             port && *port ? port : "443");
    k->server = strdup(url);
    k->token_file = strdup(SA_DIR "/token");
    k->ca_file = strdup(SA_DIR "/ca.crt");
    return k->server && k->token_file && k->ca_file ? 0 : -ENOMEM;
}

/* A client for one connection, with the token as it is now. */
static struct whttp *connect_client(struct kube *k)
{
    char *token = NULL;
    if (k->token_file) {
        size_t len;
        if (doc_read_file(k->token_file, &token, &len) == 0)
            token[strcspn(token, "\r\n")] = '\0';
    }
    struct whttp_opts o = {.ca_file = k->ca_file,
                           .ca_pem = k->ca_pem,
                           .cert_file = k->cert_file,
                           .key_file = k->key_file,
                           .cert_pem = k->cert_pem,
                           .key_pem = k->key_pem,
                           .token = token ? token : k->token,
                           .insecure = k->insecure,
                           .stop = wsource_stop_flag(k->ws)};
    struct whttp *h = whttp_new(&o);
    free(token);
    return h;
}

/* ---------- pods -> workloads ---------- */

/* The host-side interface of pod `uid` with first address `ip` (looked up once per address). */
static const char *pod_iface(struct kube *k, const char *uid, const char *ip)
{
    json_t *known = json_object_get(k->ifaces, uid);
    if (known && strcmp(jstr(known, "ip"), ip) == 0)
        return jstr(known, "interface");
    char name[IF_NAMESIZE] = "";
    int err = netns_iface_of_addr(ip, k->home_fd, name);
    if (err && wsource_cfg(k->ws)->verbose)
        agent_log("info", "kubernetes pod %s: no host-side interface holds %s yet: %s", uid, ip,
                  strerror(-err));
    if (err)
        return NULL; /* not cached: asked again at the pod's next change */
    json_object_set_new(k->ifaces, uid, json_pack("{s:s,s:s}", "ip", ip, "interface", name));
    return jstr(json_object_get(k->ifaces, uid), "interface");
}

/* The workload of `pod` (lock held), or NULL when it is not one (yet). */
static json_t *pod_doc(struct kube *k, const json_t *pod)
{
    const json_t *meta = json_object_get(pod, "metadata"), *spec = json_object_get(pod, "spec"),
                 *status = json_object_get(pod, "status");
    const char *uid = jstr(meta, "uid"), *phase = jstr(status, "phase");
    if (!uid || json_is_true(json_object_get(spec, "hostNetwork")) ||
        (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)) ||
        json_object_get(meta, "deletionTimestamp"))
        return NULL;
    json_t *ips = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(status, "podIPs"), i, v) if (jstr(v, "ip"))
        json_array_append_new(ips, json_string(jstr(v, "ip")));
    if (!json_array_size(ips) && jstr(status, "podIP"))
        json_array_append_new(ips, json_string(jstr(status, "podIP")));
    if (!json_array_size(ips)) {
        json_decref(ips);
        return NULL;
    }
    const char *image =
        jstr(json_array_get(json_object_get(status, "containerStatuses"), 0), "image");
    if (!image)
        image = jstr(json_array_get(json_object_get(spec, "containers"), 0), "image");
    const char *ns = jstr(meta, "namespace");
    json_t *labels = wsource_clean_labels(json_object_get(meta, "labels"));
    json_t *ns_labels = wsource_clean_labels(json_object_get(k->namespaces, ns ? ns : ""));
    char src[128];
    snprintf(src, sizeof(src), "kubernetes:%s", uid);
    json_t *doc = json_pack("{s:s?,s:s?,s:s?,s:o,s:o,s:o,s:s}", "name", jstr(meta, "name"),
                            "namespace", ns, "image", image, "labels", labels, "namespace_labels",
                            ns_labels, "ips", ips, "source", src);
    const char *ifname = doc ? pod_iface(k, uid, json_string_value(json_array_get(ips, 0))) : NULL;
    if (ifname)
        json_object_set_new(doc, "interface", json_string(ifname));
    return doc;
}

/* Puts or removes pod `uid`'s workload from what is known now (lock held). */
static void publish(struct kube *k, const char *uid)
{
    const json_t *pod = json_object_get(k->pods, uid);
    json_t *doc = pod ? pod_doc(k, pod) : NULL;
    if (doc)
        wsource_put(k->ws, uid, doc);
    else
        wsource_del(k->ws, uid);
}

/* ---------- the reflector loop ---------- */

struct resource {
    struct kube *k;
    const char *what; /* "pods" | "namespaces" */
    char path[512];   /* /api/v1/pods?fieldSelector=... */
    char rv[128];     /* last resourceVersion seen */
    bool gone;        /* a 410 arrived: list again */
    struct whttp *http;
};

static void apply_object(struct resource *r, const char *type, const json_t *obj)
{
    struct kube *k = r->k;
    const json_t *meta = json_object_get(obj, "metadata");
    bool pods = strcmp(r->what, "pods") == 0;
    const char *key = jstr(meta, pods ? "uid" : "name");
    if (!key)
        return;
    pthread_mutex_lock(&k->lock);
    if (pods) {
        if (strcmp(type, "DELETED") == 0) {
            json_object_del(k->pods, key);
            json_object_del(k->ifaces, key);
        } else {
            json_object_set(k->pods, key, (json_t *)obj);
        }
        publish(k, key);
    } else {
        const json_t *labels = json_object_get(meta, "labels");
        if (strcmp(type, "DELETED") == 0)
            json_object_del(k->namespaces, key);
        else
            json_object_set_new(k->namespaces, key,
                                labels ? json_deep_copy(labels) : json_object());
        const char *uid;
        json_t *pod;
        json_object_foreach(k->pods, uid, pod)
        {
            const char *ns = jstr(json_object_get(pod, "metadata"), "namespace");
            if (ns && strcmp(ns, key) == 0)
                publish(k, uid);
        }
    }
    pthread_mutex_unlock(&k->lock);
}

static int on_watch_line(void *ctx, char *line, size_t len)
{
    (void)len;
    struct resource *r = ctx;
    json_t *ev = json_loads(line, 0, NULL);
    const char *type = jstr(ev, "type");
    const json_t *obj = json_object_get(ev, "object");
    const char *rv = jstr(json_object_get(obj, "metadata"), "resourceVersion");
    int stop = 0;
    if (!type || !json_is_object(obj)) {
        agent_log("warning", "kubernetes watch %s: an event that is not {type, object}: ignored",
                  r->what);
    } else if (strcmp(type, "ERROR") == 0) {
        long code = (long)json_integer_value(json_object_get(obj, "code"));
        if (code == 410)
            r->gone = true;
        else
            agent_log("warning", "kubernetes watch %s: error %ld: %s", r->what, code,
                      jstr(obj, "message") ? jstr(obj, "message") : "");
        stop = 1;
    } else if (strcmp(type, "BOOKMARK") == 0) {
        if (rv)
            snprintf(r->rv, sizeof(r->rv), "%s", rv);
    } else if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0 ||
               strcmp(type, "DELETED") == 0) {
        apply_object(r, type, obj);
        if (rv)
            snprintf(r->rv, sizeof(r->rv), "%s", rv);
    }
    json_decref(ev);
    return stop || atomic_load(wsource_stop_flag(r->k->ws));
}

/* Lists every page; then what was known and is not listed any more is removed. */
static int list_all(struct resource *r, char *why, size_t n)
{
    struct kube *k = r->k;
    json_t *seen = json_object();
    char cont[1024] = "";
    int err = seen ? 0 : -ENOMEM;
    bool pods = strcmp(r->what, "pods") == 0;
    if (pods)
        wsource_relist(k->ws, true);
    do {
        char url[2048];
        snprintf(url, sizeof(url), "%s%s%climit=%d%s%s", k->server, r->path,
                 strchr(r->path, '?') ? '&' : '?', PAGE, cont[0] ? "&continue=" : "", cont);
        char *body = NULL;
        int status = err ? 0 : whttp_get(r->http, url, CALL_TIMEOUT, ANSWER_MAX, &body, why, n);
        json_t *list = status == 200 && body ? json_loads(body, 0, NULL) : NULL;
        if (!err && status < 0)
            err = status;
        else if (!err && !json_is_array(json_object_get(list, "items"))) {
            snprintf(why, n, "GET %s: HTTP %d%s%.200s", r->path, status, body ? ": " : "",
                     body ? body : "");
            err = -EPROTO;
        }
        free(body);
        size_t i;
        json_t *obj;
        json_array_foreach(json_object_get(list, "items"), i, obj)
        {
            const char *key = jstr(json_object_get(obj, "metadata"), pods ? "uid" : "name");
            if (!key)
                continue;
            json_object_set_new(seen, key, json_true());
            apply_object(r, "ADDED", obj);
        }
        const json_t *meta = json_object_get(list, "metadata");
        snprintf(cont, sizeof(cont), "%s", jstr(meta, "continue") ? jstr(meta, "continue") : "");
        if (!err && jstr(meta, "resourceVersion"))
            snprintf(r->rv, sizeof(r->rv), "%s", jstr(meta, "resourceVersion"));
        json_decref(list);
    } while (!err && cont[0]);
    if (!err) {
        pthread_mutex_lock(&k->lock);
        json_t *table = pods ? k->pods : k->namespaces;
        const char *key;
        json_t *v, *tmp;
        json_t *drop = json_array();
        json_object_foreach_safe(table, tmp, key, v) if (!json_object_get(seen, key))
            json_array_append_new(drop, json_string(key));
        pthread_mutex_unlock(&k->lock);
        size_t i;
        json_t *d;
        json_array_foreach(drop, i, d)
        {
            json_t *fake =
                json_pack("{s:{s:s}}", "metadata", pods ? "uid" : "name", json_string_value(d));
            apply_object(r, "DELETED", fake);
            json_decref(fake);
        }
        json_decref(drop);
    }
    if (pods && !err)
        wsource_relist(k->ws, false);
    json_decref(seen);
    return err;
}

static void *reflect(void *arg)
{
    struct resource *r = arg;
    struct kube *k = r->k;
    double backoff = BACKOFF_MIN;
    char why[512];
    bool listed = false;
    while (!atomic_load(wsource_stop_flag(k->ws))) {
        whttp_free(r->http);
        r->http = connect_client(k);
        int err = r->http ? 0 : -ENOMEM;
        if (!err && (!listed || r->gone)) {
            if (strcmp(r->what, "pods") == 0) { /* the namespaces' labels first */
                pthread_mutex_lock(&k->lock);
                while (!k->ns_listed && !atomic_load(wsource_stop_flag(k->ws)))
                    pthread_cond_wait(&k->ns_listed_cond, &k->lock);
                pthread_mutex_unlock(&k->lock);
            }
            r->gone = false;
            err = list_all(r, why, sizeof(why));
            listed = !err;
            if (!err && strcmp(r->what, "namespaces") == 0) {
                pthread_mutex_lock(&k->lock);
                k->ns_listed = true;
                pthread_cond_broadcast(&k->ns_listed_cond);
                pthread_mutex_unlock(&k->lock);
            }
        }
        if (!err) {
            wsource_set_state(k->ws, k->server, NULL);
            char url[2048];
            snprintf(url, sizeof(url),
                     "%s%s%cwatch=1&allowWatchBookmarks=true&timeoutSeconds=%d&resourceVersion=%s",
                     k->server, r->path, strchr(r->path, '?') ? '&' : '?', WATCH_S, r->rv);
            char *errbody = NULL;
            int status =
                whttp_stream(r->http, url, IDLE_S, on_watch_line, r, &errbody, why, sizeof(why));
            if (status == 410)
                r->gone = true;
            if (status == 200 || status == 410) {
                backoff = BACKOFF_MIN; /* a normal end: watch again at once */
                free(errbody);
                continue;
            }
            if (status > 0)
                snprintf(why, sizeof(why), "watch %s: HTTP %d%s%.200s", r->what, status,
                         errbody ? ": " : "", errbody ? errbody : "");
            free(errbody);
        }
        if (atomic_load(wsource_stop_flag(k->ws)))
            break;
        wsource_set_state(k->ws, k->server, why);
        if (!wsource_nap(k->ws, backoff))
            break;
        backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
    }
    whttp_free(r->http);
    r->http = NULL;
    return NULL;
}

/* ---------- ops ---------- */

static struct resource *resource_new(struct kube *k, const char *what, const char *path)
{
    struct resource *r = calloc(1, sizeof(*r));
    if (r) {
        r->k = k;
        r->what = what;
        snprintf(r->path, sizeof(r->path), "%s", path);
    }
    return r;
}

struct kube_state {
    struct kube k;
    struct resource *pods, *ns;
};

static void kube_stop(void *state)
{
    struct kube_state *s = state;
    if (!s)
        return;
    struct kube *k = &s->k;
    pthread_mutex_lock(&k->lock);
    pthread_cond_broadcast(&k->ns_listed_cond); /* the stop flag is set already */
    pthread_mutex_unlock(&k->lock);
    if (k->pods_started)
        pthread_join(k->pods_thread, NULL);
    if (k->ns_started)
        pthread_join(k->ns_thread, NULL);
    free(s->pods);
    free(s->ns);
    json_decref(k->pods);
    json_decref(k->namespaces);
    json_decref(k->ifaces);
    free(k->server);
    free(k->token_file);
    free(k->token);
    free(k->ca_file);
    free(k->ca_pem);
    free(k->cert_file);
    free(k->key_file);
    free(k->cert_pem);
    free(k->key_pem);
    if (k->home_fd >= 0)
        close(k->home_fd);
    pthread_mutex_destroy(&k->lock);
    pthread_cond_destroy(&k->ns_listed_cond);
    free(s);
}

static int kube_start(struct wsource *ws, void **state)
{
    const struct wsource_config *cfg = wsource_cfg(ws);
    struct kube_state *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    struct kube *k = &s->k;
    k->ws = ws;
    k->home_fd = -1;
    pthread_mutex_init(&k->lock, NULL);
    pthread_cond_init(&k->ns_listed_cond, NULL);
    k->pods = json_object();
    k->namespaces = json_object();
    k->ifaces = json_object();
    char why[600] = "";
    int err = k->pods && k->namespaces && k->ifaces ? 0 : -ENOMEM;
    if (!err)
        err = cfg->kubeconfig ? load_kubeconfig(k, cfg->kubeconfig, why, sizeof(why))
                              : load_in_cluster(k, why, sizeof(why));
    if (!err) {
        size_t n = strlen(k->server);
        while (n && k->server[n - 1] == '/')
            k->server[--n] = '\0';
    }
    if (!err && cfg->netns) {
        char path[300];
        snprintf(path, sizeof(path), "/run/netns/%s", cfg->netns);
        k->home_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (k->home_fd < 0) {
            err = -errno;
            snprintf(why, sizeof(why), "--netns %s: %s", cfg->netns, strerror(errno));
        }
    }
    char pods_path[300];
    snprintf(pods_path, sizeof(pods_path), "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s",
             cfg->node);
    s->pods = err ? NULL : resource_new(k, "pods", pods_path);
    s->ns = err ? NULL : resource_new(k, "namespaces", "/api/v1/namespaces");
    if (!err && (!s->pods || !s->ns))
        err = -ENOMEM;
    if (!err) {
        err = -pthread_create(&k->ns_thread, NULL, reflect, s->ns);
        k->ns_started = !err;
    }
    if (!err) {
        err = -pthread_create(&k->pods_thread, NULL, reflect, s->pods);
        k->pods_started = !err;
    }
    if (err && why[0])
        agent_log("error", "kubernetes: %s", why);
    *state = s; /* on error too: wsource_start stops it (the stop flag first) */
    return err;
}

const struct wsource_ops wsource_kubernetes = {
    .name = "kubernetes", .default_socket = NULL, .start = kube_start, .stop = kube_stop};
