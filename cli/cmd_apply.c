/*
 * cmd_apply: `moat apply -f FILE...` and `moat delete -f FILE...` — SPEC §10
 * policy files against moat-server.
 *
 * Each file (or stdin, "-") is read once into memory; that text is both
 * validated and sent. Validation runs libmoat's loader over the files
 * together with the server's current state (its clusters, objects and rules,
 * fetched as `moat explain` does, less the records a file document
 * redefines: clusters and objects by name, rules by cluster and name), so a
 * file may hold just a rule for a cluster and objects the server has. Errors
 * in file documents name file:line as `moat validate` does. Rules must name
 * objects: a numeric reference (`source: 4`) is refused, because ids differ
 * between a file and the server. Then the state the run would leave (records
 * merged with the files' fields, or without what delete removes) is loaded
 * too, so that what the server would refuse is found before anything is sent.
 * Any error: exit 2 and nothing sent.
 *
 * A document is sent with the fields the file gives and no others (string
 * fields as JSON strings; a cluster's defense, mode and default action and a
 * rule's enabled, protocol, action, priority and type as the server stores
 * them). Apply creates what the server lacks (POST: the server fills in the
 * defaults), and for what it has compares only those fields and sends a
 * merge patch (PATCH) with the ones that differ; fields the file leaves out
 * keep their values. Clusters first, then objects, then rules; delete goes
 * the other way round. Requests are not one transaction: when the server
 * refuses one, the error names the document, what was done before it stays
 * and the command stops.
 */
#include "apicmd.h"
#include "doc.h"
#include "jsonpatch.h"
#include "loader.h"
#include "remote.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum apply_kind { APPLY_CLUSTER, APPLY_OBJECT, APPLY_RULE, APPLY_KINDS };

static const char *const kind_names[APPLY_KINDS] = {"Cluster", "NetworkObject", "DefenseRule"};
static const char *const kind_short[APPLY_KINDS] = {"cluster", "object", "rule"};

/* One -f argument, read once: the text validated is the text sent. */
struct apply_input {
    const char *name; /* the path, or "stdin" for "-" */
    char *text;
    size_t len;
    struct doc_set *set;
};

/* What one run has: the inputs, the documents to send by kind, the client, the results. */
struct apply_run {
    const struct api_args *args;
    struct api_client *client;
    struct apply_input in[API_ARGS_MAX + 1];
    size_t nin;
    json_t *docs[APPLY_KINDS];  /* arrays of bodies: the fields the files give */
    json_t *where[APPLY_KINDS]; /* "file:line" of each body, in step */
    json_t *held[APPLY_KINDS];  /* the server's records before the run */
    json_t *results;            /* [{kind, name, cluster?, result}] */
    bool deleting;
};

/* A string member, or "" when there is none. */
static const char *text(const json_t *doc, const char *key)
{
    const char *s = json_string_value(json_object_get(doc, key));
    return s ? s : "";
}

static void run_clear(struct apply_run *r)
{
    for (int k = 0; k < APPLY_KINDS; k++) {
        json_decref(r->docs[k]);
        json_decref(r->where[k]);
        json_decref(r->held[k]);
    }
    for (size_t i = 0; i < r->nin; i++) {
        free(r->in[i].text);
        doc_set_free(r->in[i].set);
    }
    json_decref(r->results);
    api_client_free(r->client);
}

static void print_diags(const struct moat_diags *d)
{
    for (size_t i = 0; i < d->count; i++)
        fprintf(stderr, "%s\n", d->items[i].text);
    if (d->dropped)
        fprintf(stderr, "... and %zu more errors\n", d->dropped);
}

/* ---------- reading the files once ---------- */

/* Reads and parses one input; returns an exit code, problems printed. */
static int read_input(const char *what, const char *path, struct apply_input *in)
{
    in->name = strcmp(path, "-") == 0 ? "stdin" : path;
    int err = doc_read_file(path, &in->text, &in->len);
    if (err && err != -EFBIG && err != -ENOMEM && err != -EIO) {
        fprintf(stderr, "moat: %s: %s: cannot open: %s\n", what, path, strerror(-err));
        return cli_exit_for_load_error(err);
    }
    if (err) {
        fprintf(stderr, "moat: %s: %s: cannot read: %s\n", what, in->name,
                err == -EFBIG ? "larger than 32 MiB" : strerror(-err));
        return err == -EFBIG ? MOAT_EXIT_INVALID : MOAT_EXIT_ERROR;
    }
    struct moat_diags d;
    diags_init(&d);
    err = doc_parse_text(in->text, in->len, in->name, &in->set, &d);
    print_diags(&d);
    diags_clear(&d);
    return err == -ENOMEM ? MOAT_EXIT_ERROR : err ? MOAT_EXIT_INVALID : MOAT_EXIT_OK;
}

/* ---------- numeric object references ---------- */

static bool numeric(const struct doc_node *n)
{
    if (!n || n->type != DOC_SCALAR)
        return n && n->kind == DOC_INT;
    if (n->kind != DOC_STR || !n->text[0])
        return n->kind == DOC_INT;
    for (const char *s = n->text; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

static void check_ref(struct moat_diags *d, const struct doc_set *set, size_t no,
                      const struct doc_node *m, const struct doc_node *ref, const char *field)
{
    if (!numeric(ref))
        return;
    const struct doc_node *name = doc_map_get(m, "name");
    char where[32] = "", ctx[160];
    if (set->json)
        snprintf(where, sizeof(where), "document %zu: ", no);
    if (name && name->type == DOC_SCALAR && name->text[0])
        snprintf(ctx, sizeof(ctx), "%srules \"%.64s\"", where, name->text);
    else
        snprintf(ctx, sizeof(ctx), "%srules (document %zu)", where, no);
    diags_add_field(d, set->name, ref->line ? ref->line : m->line, ctx, field,
                    "\"%s\" is an object id: ids differ between files and the server, so name "
                    "the object (any, host, cluster-dns or a NetworkObject's name)",
                    ref->text);
}

/* Notes in `d` every rule that names an object by number. */
static void check_refs(struct moat_diags *d, const struct doc_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        const struct doc_node *m = set->docs[i];
        const struct doc_node *kind = doc_map_get(m, "kind");
        if (!kind || kind->type != DOC_SCALAR || strcmp(kind->text, "DefenseRule") != 0)
            continue;
        check_ref(d, set, i + 1, m, doc_map_get(m, "source"), "source");
        const struct doc_node *dests = doc_map_get(m, "destinations");
        for (size_t j = 0; dests && dests->type == DOC_SEQ && j < dests->count; j++) {
            char field[48];
            snprintf(field, sizeof(field), "destinations[%zu].object", j);
            check_ref(d, set, i + 1, m, doc_map_get(dests->items[j], "object"), field);
        }
    }
}

/* ---------- the files' documents as bodies ---------- */

static int kind_of(const json_t *doc)
{
    const char *k = json_string_value(json_object_get(doc, "kind"));
    for (int i = 0; k && i < APPLY_KINDS; i++)
        if (strcmp(k, kind_names[i]) == 0)
            return i;
    return -1;
}

/* Files one document into r->docs; other kinds are noted and skipped. */
static int add_doc(struct apply_run *r, const struct apply_input *in, size_t no)
{
    const struct doc_node *n = in->set->docs[no];
    if (n->type == DOC_SCALAR && n->kind == DOC_NULL)
        return 0; /* an empty document */
    json_t *doc = api_doc_json(n);
    if (!doc)
        return -ENOMEM;
    int k = kind_of(doc);
    if (k < 0) {
        fprintf(stderr, "moat: %s: %s: document %zu: kind %s ignored (not kept by the server)\n",
                r->args->cmd->name, in->name, no + 1, text(doc, "kind"));
        json_decref(doc);
        return 0;
    }
    json_object_del(doc, "kind");
    json_object_del(doc, "id"); /* the server assigns ids */
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(doc, tmp, key, v)
    {
        if (json_is_null(v)) /* as the loader reads it: not given */
            json_object_del(doc, key);
    }
    char at[512];
    if (n->line)
        snprintf(at, sizeof(at), "%s:%d", in->name, n->line);
    else
        snprintf(at, sizeof(at), "%s document %zu", in->name, no + 1);
    int err = json_array_append_new(r->docs[k], doc) < 0 ? -ENOMEM : 0;
    if (!err && json_array_append_new(r->where[k], json_string(at)) < 0)
        err = -ENOMEM;
    return err;
}

/* ---------- the server's state, before and after ---------- */

/* Whether record `a` and `b` of kind k are the same one: by name, rules by cluster and name. */
static bool same_key(int k, const json_t *a, const json_t *b)
{
    return strcmp(text(a, "name"), text(b, "name")) == 0 &&
           (k != APPLY_RULE || strcmp(text(a, "cluster"), text(b, "cluster")) == 0);
}

/* The files' document for the record `rec` of kind k, or NULL. */
static const json_t *file_doc(const struct apply_run *r, int k, const json_t *rec)
{
    size_t i;
    const json_t *doc;
    json_array_foreach(r->docs[k], i, doc)
    {
        if (same_key(k, doc, rec))
            return doc;
    }
    return NULL;
}

static bool is_system(const json_t *rec)
{
    return strcmp(text(rec, "type"), "system") == 0;
}

/* Whether the files delete cluster `name`. */
static bool cluster_deleted(const struct apply_run *r, const char *name)
{
    size_t i;
    const json_t *doc;
    json_array_foreach(r->docs[APPLY_CLUSTER], i, doc)
    {
        if (strcmp(text(doc, "name"), name) == 0)
            return true;
    }
    return false;
}

/*
 * The record the server will hold for `rec` after the run (`after`), or
 * before it without what the files redefine: a new reference in *out, or
 * NULL when it is not there.
 */
static int record_state(const struct apply_run *r, int k, const json_t *rec, bool after,
                        json_t **out)
{
    const json_t *mine = file_doc(r, k, rec);
    *out = NULL;
    if (after && r->deleting) {
        bool gone = (mine && !(k == APPLY_RULE && is_system(rec))) ||
                    (k == APPLY_RULE && cluster_deleted(r, text(rec, "cluster")));
        *out = gone ? NULL : json_incref((json_t *)rec);
        return 0;
    }
    if (!mine) {
        *out = json_incref((json_t *)rec);
        return 0;
    }
    if (!after)
        return 0;
    *out = json_deep_copy(rec);
    return *out && json_merge_patch(*out, mine) == 0 ? 0 : -ENOMEM;
}

/* The fields of an object document (lib/loader.c), and its id. */
static const char *const object_fields[] = {"id",     "name",    "namespace",   "app",   "images",
                                            "labels", "cluster", "description", "cidrs", NULL};

/* Appends object `o` as a NetworkObject document (all objects: the loader checks `cluster`). */
static int add_object_doc(json_t *docs, const json_t *o)
{
    json_t *d = json_pack("{s:s}", "kind", "NetworkObject");
    for (size_t i = 0; d && object_fields[i]; i++) {
        json_t *v = json_object_get(o, object_fields[i]);
        if (v && !json_is_null(v) && json_object_set(d, object_fields[i], v) < 0) {
            json_decref(d);
            d = NULL;
        }
    }
    return d && json_array_append_new(docs, d) == 0 ? 0 : -ENOMEM;
}

/*
 * The server's state as policy documents: before the run without the records
 * the files redefine (the files are loaded beside them), or as the run would
 * leave it (`after`). Returns 0 with *out (a JSON text to free), or -ENOMEM.
 */
static int state_text(const struct apply_run *r, bool after, char **out)
{
    json_t *rec[APPLY_KINDS] = {json_array(), json_array(), json_array()};
    json_t *docs = json_array();
    int err = rec[0] && rec[1] && rec[2] && docs ? 0 : -ENOMEM;
    for (int k = 0; k < APPLY_KINDS && !err; k++) {
        size_t i;
        const json_t *h;
        json_array_foreach(r->held[k], i, h)
        {
            json_t *s = NULL;
            err = record_state(r, k, h, after, &s);
            if (!err && s && json_array_append_new(rec[k], s) < 0)
                err = -ENOMEM;
            if (err)
                break;
        }
        /* What apply creates. */
        for (i = 0; !err && after && !r->deleting && i < json_array_size(r->docs[k]); i++) {
            json_t *doc = json_array_get(r->docs[k], i);
            bool held = false;
            for (size_t j = 0; j < json_array_size(r->held[k]) && !held; j++)
                held = same_key(k, doc, json_array_get(r->held[k], j));
            if (!held && json_array_append(rec[k], doc) < 0)
                err = -ENOMEM;
        }
    }
    if (!err && remote_docs(rec[APPLY_CLUSTER], NULL, rec[APPLY_RULE], NULL, NULL, docs) < 0)
        err = -ENOMEM;
    for (size_t i = 0; !err && i < json_array_size(rec[APPLY_OBJECT]); i++)
        err = add_object_doc(docs, json_array_get(rec[APPLY_OBJECT], i));
    *out = err ? NULL : json_dumps(docs, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!err && !*out)
        err = -ENOMEM;
    for (int k = 0; k < APPLY_KINDS; k++)
        json_decref(rec[k]);
    json_decref(docs);
    return err;
}

/* ---------- settled values, as the server stores them ---------- */

/* Sets `key` to `v` when the document gives it (the file's value, settled). */
static int settle(json_t *doc, const char *key, json_t *v)
{
    if (!json_object_get(doc, key)) {
        json_decref(v);
        return 0;
    }
    return json_object_set_new(doc, key, v) < 0 ? -ENOMEM : 0;
}

static int canon_cluster(json_t *doc, const struct moat_policy *p)
{
    uint32_t i = policy_find_cluster(p, text(doc, "name"));
    if (i == MOAT_NONE)
        return -ENOENT;
    const struct moat_cluster *c = &p->clusters[i];
    int err = settle(doc, "defense", json_string(c->defense ? "on" : "off"));
    err = err ? err : settle(doc, "mode", json_string(mode_name(c->mode)));
    return err ? err : settle(doc, "default_action", json_string(action_name(c->default_action)));
}

static const struct moat_rule *find_rule(const struct moat_policy *p, const json_t *doc)
{
    for (size_t i = 0; i < p->nrules; i++)
        if (strcmp(p->rules[i].name, text(doc, "name")) == 0 &&
            strcmp(p->rules[i].cluster_ref, text(doc, "cluster")) == 0)
            return &p->rules[i];
    return NULL;
}

/* A rule's settled fields; a system rule keeps only what a file may change. */
static int canon_rule(json_t *doc, const struct moat_policy *p)
{
    const struct moat_rule *r = find_rule(p, doc);
    if (!r)
        return -ENOENT;
    int err = settle(doc, "enabled", json_boolean(r->enabled));
    if (r->type == MOAT_RULE_SYSTEM) {
        const char *key;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(doc, tmp, key, v)
        {
            if (strcmp(key, "cluster") && strcmp(key, "name") && strcmp(key, "enabled") &&
                strcmp(key, "description"))
                json_object_del(doc, key);
        }
        return err;
    }
    err = err ? err : settle(doc, "protocol", json_string(proto_name(r->proto)));
    err = err ? err : settle(doc, "action", json_string(action_name(r->action)));
    err = err ? err : settle(doc, "priority", json_integer(r->priority));
    return err ? err : settle(doc, "type", json_string(rule_type_name(r->type)));
}

static int canon_all(struct apply_run *r, const struct moat_policy *p)
{
    int err = 0;
    for (size_t i = 0; !err && i < json_array_size(r->docs[APPLY_CLUSTER]); i++)
        err = canon_cluster(json_array_get(r->docs[APPLY_CLUSTER], i), p);
    for (size_t i = 0; !err && i < json_array_size(r->docs[APPLY_RULE]); i++)
        err = canon_rule(json_array_get(r->docs[APPLY_RULE], i), p);
    return err;
}

/* ---------- validation ---------- */

/* Loads the files with the server's state before the run; settles the bodies. An exit code. */
static int check_files(struct apply_run *r, struct moat_diags *refs)
{
    struct policy_source src[API_ARGS_MAX + 2];
    char *server = NULL;
    int err = state_text(r, false, &server);
    for (size_t i = 0; !err && i < r->nin; i++)
        src[i] = (struct policy_source){
            .text = r->in[i].text, .len = r->in[i].len, .name = r->in[i].name};
    if (!err)
        src[r->nin] =
            (struct policy_source){.text = server, .len = strlen(server), .name = "server"};
    struct moat_diags d;
    struct moat_policy *p = NULL;
    diags_init(&d);
    if (!err)
        err = policy_load_sources(&p, src, r->nin + 1, &d);
    print_diags(refs);
    print_diags(&d);
    diags_clear(&d);
    free(server);
    if (!err && diags_total(refs))
        err = -EINVAL;
    if (!err)
        err = canon_all(r, p);
    policy_free(p);
    if (err == -ENOMEM)
        fprintf(stderr, "moat: out of memory\n");
    else if (err == -ENOENT)
        fprintf(stderr, "moat: %s: a document was not found after loading\n", r->args->cmd->name);
    return err == -EINVAL ? MOAT_EXIT_INVALID : err ? MOAT_EXIT_ERROR : MOAT_EXIT_OK;
}

/* Loads the state the run would leave; the server would refuse it when invalid. */
static int check_result(struct apply_run *r)
{
    char *state = NULL;
    const char *name = r->deleting ? "server after delete" : "server after apply";
    int err = state_text(r, true, &state);
    struct moat_diags d;
    struct moat_policy *p = NULL;
    diags_init(&d);
    if (!err)
        err = policy_load_text(&p, state, strlen(state), name, &d);
    if (err == -EINVAL)
        fprintf(stderr,
                "moat: %s: the server would refuse what this leaves (its clusters, rules, "
                "then objects, numbered as documents):\n",
                r->args->cmd->name);
    print_diags(&d);
    diags_clear(&d);
    policy_free(p);
    free(state);
    if (err == -ENOMEM)
        fprintf(stderr, "moat: out of memory\n");
    return err == -EINVAL ? MOAT_EXIT_INVALID : err ? MOAT_EXIT_ERROR : MOAT_EXIT_OK;
}

/*
 * Reads the inputs once, fetches the server's state and validates both
 * together, then the result. Fills r->docs. Returns an exit code.
 */
static int load_files(struct apply_run *r, const char *const *files, size_t n)
{
    const char *what = r->args->cmd->name;
    int rc = MOAT_EXIT_OK;
    struct moat_diags refs;
    diags_init(&refs);
    for (size_t i = 0; i < n; i++) { /* every file's syntax errors at once */
        int one = read_input(what, files[i], &r->in[r->nin]);
        rc = rc ? rc : one;
        if (r->in[r->nin].text)
            r->nin++;
    }
    for (int k = 0; k < APPLY_KINDS && !rc; k++)
        rc = (r->docs[k] = json_array()) && (r->where[k] = json_array()) ? 0 : MOAT_EXIT_ERROR;
    for (size_t i = 0; i < r->nin && !rc; i++) {
        check_refs(&refs, r->in[i].set);
        for (size_t j = 0; j < r->in[i].set->count && !rc; j++)
            rc = add_doc(r, &r->in[i], j) ? MOAT_EXIT_ERROR : MOAT_EXIT_OK;
    }
    if (!rc)
        rc = api_open(r->args, &r->client);
    if (!rc)
        rc = api_fetch_records(r->client, what, NULL, &r->held[APPLY_CLUSTER],
                               &r->held[APPLY_OBJECT], &r->held[APPLY_RULE]);
    if (!rc)
        rc = check_files(r, &refs);
    if (!rc)
        rc = check_result(r);
    diags_clear(&refs);
    return rc;
}

/* The collection path of a document: /api/v1/clusters, /objects or .../rules. */
static int base_path(int k, const json_t *doc, char *path)
{
    if (k == APPLY_OBJECT) {
        snprintf(path, API_PATH_MAX, "/api/v1/objects");
        return 0;
    }
    snprintf(path, API_PATH_MAX, "/api/v1/clusters");
    if (k == APPLY_CLUSTER)
        return 0;
    if (api_path_add(path, API_PATH_MAX, json_string_value(json_object_get(doc, "cluster"))) < 0)
        return -1;
    strcat(path, "/rules");
    return 0;
}

/*
 * What the server held for a document when the run began (r->held, fetched
 * once for validation): MOAT_EXIT_OK with *held (a reference; NULL when it
 * had none) and the path to send to: the record's, else its collection's.
 */
static int find_held(struct apply_run *r, int k, const json_t *doc, char *path, const json_t **held)
{
    *held = NULL;
    if (base_path(k, doc, path) < 0)
        return cli_usage_error(r->args->cmd, "name too long: \"%s\"", text(doc, "cluster"));
    size_t i;
    const json_t *rec;
    json_array_foreach(r->held[k], i, rec)
    {
        if (same_key(k, doc, rec)) {
            *held = rec;
            break;
        }
    }
    if (!*held)
        return MOAT_EXIT_OK;
    const json_t *id = json_object_get(*held, "id");
    if (json_is_integer(id))
        snprintf(path + strlen(path), API_PATH_MAX - strlen(path), "/%lld",
                 (long long)json_integer_value(id));
    else if (api_path_add(path, API_PATH_MAX, json_string_value(id)) < 0)
        return cli_usage_error(r->args->cmd, "name too long: \"%s\"", text(doc, "name"));
    return MOAT_EXIT_OK;
}

/* Whether merging `patch` into `held` (RFC 7386) changes it; `held` may be NULL. */
static bool changes(const json_t *held, const json_t *patch)
{
    if (!json_is_object(patch))
        return !held || !json_equal(held, patch);
    if (!json_is_object(held))
        return true;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)patch, key, v)
    {
        const json_t *h = json_object_get(held, key);
        if (json_is_null(v) ? h != NULL : changes(h, v))
            return true;
    }
    return false;
}

/*
 * The merge patch that makes the server's copy hold the document: the fields
 * the document gives whose values differ (compared as a merge patch would
 * apply them; nested maps such as detections field by field). Fields the
 * document leaves out are not compared. An empty object when all are equal;
 * NULL on OOM.
 */
static json_t *patch_for(const json_t *doc, const json_t *held)
{
    json_t *patch = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)doc, key, v)
    {
        if (patch && changes(json_object_get(held, key), v) && json_object_set(patch, key, v) < 0) {
            json_decref(patch);
            patch = NULL;
        }
    }
    return patch;
}

static int note(struct apply_run *r, int k, const json_t *doc, const char *result)
{
    const char *name = json_string_value(json_object_get(doc, "name"));
    const char *cluster = json_string_value(json_object_get(doc, "cluster"));
    if (r->args->format == CLI_FORMAT_TABLE)
        printf("%s/%s%s%s %s\n", kind_short[k], k == APPLY_RULE ? cluster : "",
               k == APPLY_RULE ? "/" : "", name, result);
    json_t *e = json_pack("{s:s,s:s?,s:s?,s:s}", "kind", kind_names[k], "cluster",
                          k == APPLY_RULE ? cluster : NULL, "name", name, "result", result);
    return e && json_array_append_new(r->results, e) == 0 ? MOAT_EXIT_OK : MOAT_EXIT_ERROR;
}

/* Names the document in messages: `apply: DefenseRule prod/web (policy.yaml:40)`. */
static void doc_what(const struct apply_run *r, int k, const json_t *doc, const char *at, char *buf,
                     size_t n)
{
    snprintf(buf, n, "%s: %s %s%s%s (%s)", r->args->cmd->name, kind_names[k],
             k == APPLY_RULE ? text(doc, "cluster") : "", k == APPLY_RULE ? "/" : "",
             text(doc, "name"), at);
}

static int apply_one(struct apply_run *r, int k, const json_t *doc, const char *at)
{
    char path[API_PATH_MAX], what[1024];
    const json_t *held;
    doc_what(r, k, doc, at, what, sizeof(what));
    int rc = find_held(r, k, doc, path, &held);
    if (rc)
        return rc;
    if (!held) {
        rc = api_do(r->client, what, "POST", path, doc, NULL);
        return rc ? rc : note(r, k, doc, "created");
    }
    json_t *patch = patch_for(doc, held);
    if (!patch)
        return MOAT_EXIT_ERROR;
    bool same = json_object_size(patch) == 0;
    if (!same)
        rc = api_do(r->client, what, "PATCH", path, patch, NULL);
    json_decref(patch);
    return rc ? rc : note(r, k, doc, same ? "unchanged" : "configured");
}

static int delete_one(struct apply_run *r, int k, const json_t *doc, const char *at)
{
    char path[API_PATH_MAX], what[1024];
    const json_t *held;
    doc_what(r, k, doc, at, what, sizeof(what));
    int rc = find_held(r, k, doc, path, &held);
    if (rc || !held)
        return rc ? rc : note(r, k, doc, "absent");
    if (is_system(held))
        return note(r, k, doc, "kept (system rule)");
    rc = api_do(r->client, what, "DELETE", path, NULL, NULL);
    return rc ? rc : note(r, k, doc, "deleted");
}

static int run_all(struct apply_run *r)
{
    int rc = MOAT_EXIT_OK;
    for (int step = 0; step < APPLY_KINDS && !rc; step++) {
        int k = r->deleting ? APPLY_KINDS - 1 - step : step;
        size_t n = json_array_size(r->docs[k]);
        for (size_t i = 0; i < n && !rc; i++) {
            size_t at = r->deleting ? n - 1 - i : i;
            const json_t *doc = json_array_get(r->docs[k], at);
            const char *where = json_string_value(json_array_get(r->where[k], at));
            rc = r->deleting ? delete_one(r, k, doc, where) : apply_one(r, k, doc, where);
        }
    }
    if (rc)
        fprintf(stderr, "moat: %s: stopped; the documents listed before were done and stay\n",
                r->args->cmd->name);
    return rc;
}

static int apply_or_delete(const char *name, bool deleting, int argc, char **argv)
{
    struct api_args a;
    struct apply_run r = {.args = &a, .deleting = deleting};
    const char *files[API_ARGS_MAX + 1];
    size_t n = 0;
    int rc = api_args_parse(name, API_BIT(API_OPT_FILE), 0, API_ARGS_MAX, argc, argv, &a);
    if (rc || a.help)
        return rc;
    if (a.opt[API_OPT_FILE])
        files[n++] = a.opt[API_OPT_FILE];
    for (int i = 0; i < a.npos; i++)
        files[n++] = a.pos[i];
    if (n == 0)
        return cli_usage_error(a.cmd, "-f FILE is required");
    rc = load_files(&r, files, n);
    if (!rc)
        rc = (r.results = json_array()) ? MOAT_EXIT_OK : MOAT_EXIT_ERROR;
    if (!rc)
        rc = run_all(&r);
    if (r.results && a.format != CLI_FORMAT_TABLE)
        out_doc(a.format, json_pack("{s:O}", "results", r.results));
    run_clear(&r);
    return rc;
}

int cmd_apply(int argc, char **argv)
{
    return apply_or_delete("apply", false, argc, argv);
}

int cmd_delete(int argc, char **argv)
{
    return apply_or_delete("delete", true, argc, argv);
}
