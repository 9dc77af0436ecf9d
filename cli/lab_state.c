/* lab_state: a lab's state file (see lab_state.h). */
#include "lab_state.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAX_BYTES (16u << 20)

void lab_state_path(const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s.state", LAB_STATE_DIR, name);
}

/* ---------- JSON ---------- */

static json_t *addrs_json(const struct moat_addr *a, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        char text[MOAT_ADDR_STRLEN];
        addr_format(&a[i], text, sizeof(text));
        if (json_array_append_new(arr, json_string(text)) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *node_json(const struct lab *lab, size_t i, bool with_created)
{
    const struct lab_node *n = &lab->nodes[i];
    char gw[MOAT_ADDR_STRLEN], sub[MOAT_ADDR_STRLEN + 8];
    addr_format(&n->gateway, gw, sizeof(gw));
    prefix_format(&n->subnet, sub, sizeof(sub));
    char gw6[MOAT_ADDR_STRLEN] = "", sub6[MOAT_ADDR_STRLEN + 8] = "";
    if (n->subnet6.len) {
        addr_format(&n->gateway6, gw6, sizeof(gw6));
        prefix_format(&n->subnet6, sub6, sizeof(sub6));
    }
    /* `s*` leaves a NULL member out: a node without IPv6 has no address6/subnet6. */
    json_t *j =
        json_pack("{s:s,s:s*,s:s,s:s,s:s,s:s,s:s*,s:s*}", "name", n->name, "cluster", n->cluster,
                  "netns", n->netns, "bridge", LAB_BRIDGE, "address", gw, "subnet", sub, "address6",
                  n->subnet6.len ? gw6 : NULL, "subnet6", n->subnet6.len ? sub6 : NULL);
    if (j && lab->underlay.netns) {
        char ul[MOAT_ADDR_STRLEN], ul6[MOAT_ADDR_STRLEN], port[LAB_IFNAME_MAX + 1];
        addr_format(&n->ul_addr, ul, sizeof(ul));
        addr_format(&n->ul_addr6, ul6, sizeof(ul6));
        lab_ul_port(i, port, sizeof(port));
        if (json_object_set_new(j, "underlay",
                                json_pack("{s:s,s:s,s:s*,s:s}", "interface", LAB_UL_IFNAME,
                                          "address", ul, "address6", lab_has_ipv6(lab) ? ul6 : NULL,
                                          "port", port)) < 0) {
            json_decref(j);
            return NULL;
        }
    }
    if (j && with_created && json_object_set_new(j, "created", json_boolean(n->created)) < 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static json_t *underlay_json(const struct lab *lab, bool with_created)
{
    const struct lab_underlay *u = &lab->underlay;
    json_t *j =
        json_pack("{s:s,s:s,s:s,s:s*}", "netns", u->netns, "bridge", LAB_UL_BRIDGE, "subnet",
                  LAB_UL_TEXT, "subnet6", lab_has_ipv6(lab) ? LAB_UL6_TEXT : NULL);
    if (j && with_created && json_object_set_new(j, "created", json_boolean(u->created)) < 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static json_t *workload_json(const struct lab *lab, const struct lab_workload *w, bool with_created)
{
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o}", "cluster", w->cluster, "namespace",
                          w->namespace, "name", w->name, "node", lab->nodes[w->node].name, "netns",
                          w->netns, "interface", w->ifname, "ips", addrs_json(w->addrs, w->naddrs));
    if (j && with_created && json_object_set_new(j, "created", json_boolean(w->created)) < 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

json_t *lab_to_json(const struct lab *lab, bool with_created)
{
    json_t *nodes = json_array(), *wls = json_array();
    bool ok = nodes && wls;
    for (size_t i = 0; ok && i < lab->nnodes; i++)
        ok = json_array_append_new(nodes, node_json(lab, i, with_created)) == 0;
    for (size_t i = 0; ok && i < lab->nworkloads; i++)
        ok = json_array_append_new(wls, workload_json(lab, &lab->workloads[i], with_created)) == 0;
    json_t *ul = ok && lab->underlay.netns ? underlay_json(lab, with_created) : NULL;
    if (!ok || (lab->underlay.netns && !ul)) {
        json_decref(nodes);
        json_decref(wls);
        return NULL;
    }
    /* "underlay" comes before "nodes", as it is made before them; `o*` skips a NULL. */
    return json_pack("{s:s,s:o*,s:o,s:o}", "lab", lab->name, "underlay", ul, "nodes", nodes,
                     "workloads", wls);
}

/* A string member; NULL (and a reason) when missing and required. */
static const char *member(const json_t *obj, const char *key, bool required, const char *what,
                          char *why, size_t n)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (required || v)
        snprintf(why, n, "%s: \"%s\" is missing or not a string", what, key);
    return NULL;
}

static char *dup_member(const json_t *obj, const char *key, bool required, const char *what,
                        char *why, size_t n, int *err)
{
    const char *s = member(obj, key, required, what, why, n);
    if (!s) {
        if (required || json_object_get(obj, key))
            *err = -EINVAL;
        return NULL;
    }
    char *d = moat_strdup(s);
    if (!d)
        *err = -ENOMEM;
    return d;
}

static int parse_node(const json_t *j, struct lab_node *n, char *why, size_t len)
{
    if (!json_is_object(j)) {
        snprintf(why, len, "nodes: an entry is not an object");
        return -EINVAL;
    }
    int err = 0;
    n->name = dup_member(j, "name", true, "nodes", why, len, &err);
    n->cluster = dup_member(j, "cluster", false, "nodes", why, len, &err);
    n->netns = dup_member(j, "netns", true, "nodes", why, len, &err);
    n->created = json_is_true(json_object_get(j, "created"));
    const char *gw = member(j, "address", true, "nodes", why, len);
    const char *sub = member(j, "subnet", true, "nodes", why, len);
    const char *bad = NULL;
    if (!err && (!gw || addr_parse(gw, &n->gateway) < 0 || !sub ||
                 prefix_parse(sub, &n->subnet, &bad) < 0)) {
        snprintf(why, len, "nodes: \"address\" or \"subnet\" is not an address");
        err = -EINVAL;
    }
    /* IPv6: both or neither (state files from before the lab had IPv6 have neither). */
    const json_t *gw6 = json_object_get(j, "address6"), *sub6 = json_object_get(j, "subnet6");
    if (!err && (gw6 || sub6) &&
        (!json_is_string(gw6) || addr_parse(json_string_value(gw6), &n->gateway6) < 0 ||
         addr_is_v4(&n->gateway6) || !json_is_string(sub6) ||
         prefix_parse(json_string_value(sub6), &n->subnet6, &bad) < 0 ||
         prefix_is_v4(&n->subnet6) || n->subnet6.len == 0 ||
         !prefix_contains(&n->subnet6, &n->gateway6))) {
        snprintf(why, len,
                 "nodes: \"address6\" and \"subnet6\" are not an IPv6 address and its subnet");
        err = -EINVAL;
    }
    return err;
}

/*
 * A node's "underlay" member: required when the lab has an underlay, with
 * an "address6" when the lab has IPv6 (`v6`).
 */
static int parse_node_underlay(const json_t *j, struct lab_node *n, bool v6, char *why, size_t len)
{
    const json_t *u = json_object_get(j, "underlay");
    const char *a = json_string_value(json_object_get(u, "address"));
    if (!a || addr_parse(a, &n->ul_addr) < 0 || !addr_is_v4(&n->ul_addr)) {
        snprintf(why, len, "nodes: \"underlay\" has no IPv4 \"address\"");
        return -EINVAL;
    }
    const char *a6 = json_string_value(json_object_get(u, "address6"));
    if (v6 && (!a6 || addr_parse(a6, &n->ul_addr6) < 0 || addr_is_v4(&n->ul_addr6))) {
        snprintf(why, len, "nodes: \"underlay\" has no IPv6 \"address6\" (the lab has IPv6)");
        return -EINVAL;
    }
    return 0;
}

/* The lab's "underlay" member: optional (state files from before labs had one). */
static int parse_underlay(const json_t *j, struct lab_underlay *u, char *why, size_t len)
{
    if (!j)
        return 0;
    int err = 0;
    u->netns = json_is_object(j) ? dup_member(j, "netns", true, "underlay", why, len, &err) : NULL;
    if (!json_is_object(j)) {
        snprintf(why, len, "underlay: not an object");
        err = -EINVAL;
    }
    u->created = json_is_true(json_object_get(j, "created"));
    return err;
}

static int parse_workload(const json_t *j, const struct lab *lab, struct lab_workload *w, char *why,
                          size_t len)
{
    if (!json_is_object(j)) {
        snprintf(why, len, "workloads: an entry is not an object");
        return -EINVAL;
    }
    int err = 0;
    w->cluster = dup_member(j, "cluster", true, "workloads", why, len, &err);
    w->namespace = dup_member(j, "namespace", true, "workloads", why, len, &err);
    w->name = dup_member(j, "name", true, "workloads", why, len, &err);
    w->netns = dup_member(j, "netns", true, "workloads", why, len, &err);
    w->ifname = dup_member(j, "interface", true, "workloads", why, len, &err);
    w->created = json_is_true(json_object_get(j, "created"));
    const char *node = member(j, "node", true, "workloads", why, len);
    w->node = SIZE_MAX;
    for (size_t i = 0; node && i < lab->nnodes; i++)
        if (strcmp(lab->nodes[i].name, node) == 0)
            w->node = i;
    if (!err && w->node == SIZE_MAX) {
        snprintf(why, len, "workloads: \"node\" names no node of the lab");
        err = -EINVAL;
    }
    const json_t *ips = json_object_get(j, "ips");
    if (!err && !json_is_array(ips)) {
        snprintf(why, len, "workloads: \"ips\" is not a list");
        err = -EINVAL;
    }
    if (err)
        return err;
    w->addrs = moat_calloc(json_array_size(ips), sizeof(*w->addrs));
    if (!w->addrs)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(ips); i++) {
        const char *s = json_string_value(json_array_get(ips, i));
        if (!s || addr_parse(s, &w->addrs[w->naddrs]) < 0) {
            snprintf(why, len, "workloads: \"ips\" holds something that is not an address");
            return -EINVAL;
        }
        w->naddrs++;
    }
    return 0;
}

int lab_from_json(const json_t *j, struct lab **out, char *why, size_t n)
{
    *out = NULL;
    const char *name = json_string_value(json_object_get(j, "lab"));
    const json_t *nodes = json_object_get(j, "nodes"), *wls = json_object_get(j, "workloads");
    if (!name || !lab_name_ok(name) || !json_is_array(nodes) || !json_is_array(wls)) {
        snprintf(why, n, "not a lab state (needs \"lab\", \"nodes\" and \"workloads\")");
        return -EINVAL;
    }
    struct lab *lab = lab_new(name);
    if (!lab)
        return -ENOMEM;
    lab->nodes = moat_calloc(json_array_size(nodes), sizeof(*lab->nodes));
    lab->workloads = moat_calloc(json_array_size(wls), sizeof(*lab->workloads));
    int err = lab->nodes && lab->workloads ? 0 : -ENOMEM;
    if (!err)
        err = parse_underlay(json_object_get(j, "underlay"), &lab->underlay, why, n);
    for (size_t i = 0; !err && i < json_array_size(nodes); i++) {
        lab->nnodes++;
        err = parse_node(json_array_get(nodes, i), &lab->nodes[i], why, n);
    }
    /* Whether the lab has IPv6 is known once every node is read. */
    for (size_t i = 0; !err && lab->underlay.netns && i < lab->nnodes; i++)
        err = parse_node_underlay(json_array_get(nodes, i), &lab->nodes[i], lab_has_ipv6(lab), why,
                                  n);
    for (size_t i = 0; !err && i < json_array_size(wls); i++) {
        lab->nworkloads++;
        err = parse_workload(json_array_get(wls, i), lab, &lab->workloads[i], why, n);
    }
    if (err) {
        lab_free(lab);
        return err;
    }
    *out = lab;
    return 0;
}

/* ---------- files ---------- */

static int mkdir_p(const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int lab_state_claim(const char *name)
{
    int err = mkdir_p(LAB_STATE_DIR);
    if (err)
        return err;
    char path[256];
    lab_state_path(name, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

int lab_state_save(const struct lab *lab)
{
    json_t *j = lab_to_json(lab, true);
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!text)
        return -ENOMEM;
    char path[256], tmp[272];
    lab_state_path(lab->name, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int err = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(text);
        return -errno;
    }
    size_t len = strlen(text), off = 0;
    while (off < len && !err) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno != EINTR)
            err = -errno;
        else if (w > 0)
            off += (size_t)w;
    }
    if (write(fd, "\n", 1) != 1 && !err)
        err = -EIO;
    if (close(fd) < 0 && !err)
        err = -errno;
    if (!err && rename(tmp, path) < 0)
        err = -errno;
    if (err)
        unlink(tmp);
    free(text);
    return err;
}

int lab_state_load(const char *name, struct lab **out, char *why, size_t n)
{
    *out = NULL;
    char path[256];
    lab_state_path(name, path, sizeof(path));
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    if (st.st_size == 0)
        return -ENODATA;
    if (st.st_size > (off_t)STATE_MAX_BYTES) {
        snprintf(why, n, "%s: larger than %u bytes", path, STATE_MAX_BYTES);
        return -EINVAL;
    }
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    if (!j) {
        if (access(path, R_OK) < 0)
            return -errno;
        snprintf(why, n, "%s:%d: %s", path, jerr.line, jerr.text);
        return -EINVAL;
    }
    char reason[256] = "";
    int err = lab_from_json(j, out, reason, sizeof(reason));
    json_decref(j);
    if (err == -EINVAL)
        snprintf(why, n, "%s: %s", path, reason);
    return err;
}

int lab_state_remove(const char *name)
{
    char path[256], tmp[272];
    lab_state_path(name, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}
