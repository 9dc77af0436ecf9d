/*
 * cmd_apply: `moat apply -f FILE...` and `moat delete -f FILE...` — SPEC §10
 * policy files against moat-server.
 *
 * The files are first validated together by libmoat's loader, exactly as
 * `moat validate` does; any error and nothing is sent. Each document then
 * becomes the JSON the server would store: the file's fields, plus the
 * values the loader settles (a cluster's defense, mode and default action; a
 * rule's enabled, protocol, action, priority and type), the same way the
 * server writes them back. Apply compares that with what the server holds
 * (clusters by name, objects by name, rules by cluster and name) and creates,
 * replaces or leaves each one: clusters first, then objects, then rules.
 * Delete goes the other way round. Requests are not one transaction: when the
 * server refuses one, what was done before it stays and the command stops.
 */
#include "apicmd.h"
#include "doc.h"
#include "loader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum apply_kind { APPLY_CLUSTER, APPLY_OBJECT, APPLY_RULE, APPLY_KINDS };

static const char *const kind_names[APPLY_KINDS] = {"Cluster", "NetworkObject", "DefenseRule"};
static const char *const kind_short[APPLY_KINDS] = {"cluster", "object", "rule"};

/* What one run has: the documents to send by kind, the client, the results. */
struct apply_run {
    const struct api_args *args;
    struct api_client *client;
    json_t *docs[APPLY_KINDS]; /* arrays of bodies as the server would store them */
    json_t *results;           /* [{kind, name, cluster?, result}] */
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
    for (int k = 0; k < APPLY_KINDS; k++)
        json_decref(r->docs[k]);
    json_decref(r->results);
    api_client_free(r->client);
}

/* Sets the values the loader settled for cluster `name`, as the server stores them. */
static int canon_cluster(json_t *doc, const struct moat_policy *p)
{
    uint32_t i = policy_find_cluster(p, json_string_value(json_object_get(doc, "name")));
    if (i == MOAT_NONE)
        return -ENOENT;
    const struct moat_cluster *c = &p->clusters[i];
    int rc = json_object_set_new(doc, "defense", json_string(c->defense ? "on" : "off"));
    rc |= json_object_set_new(doc, "mode", json_string(mode_name(c->mode)));
    rc |= json_object_set_new(doc, "default_action", json_string(action_name(c->default_action)));
    return rc ? -ENOMEM : 0;
}

static const struct moat_rule *find_rule(const struct moat_policy *p, const json_t *doc)
{
    const char *name = json_string_value(json_object_get(doc, "name"));
    const char *cluster = json_string_value(json_object_get(doc, "cluster"));
    for (size_t i = 0; name && cluster && i < p->nrules; i++)
        if (strcmp(p->rules[i].name, name) == 0 && strcmp(p->rules[i].cluster_ref, cluster) == 0)
            return &p->rules[i];
    return NULL;
}

/* A rule as the server stores it; a system rule keeps only what a file may change. */
static int canon_rule(json_t *doc, const struct moat_policy *p)
{
    const struct moat_rule *r = find_rule(p, doc);
    if (!r)
        return -ENOENT;
    int rc = json_object_set_new(doc, "enabled", json_boolean(r->enabled));
    if (r->type == MOAT_RULE_SYSTEM)
        return rc ? -ENOMEM : 0;
    rc |= json_object_set_new(doc, "protocol", json_string(proto_name(r->proto)));
    rc |= json_object_set_new(doc, "action", json_string(action_name(r->action)));
    rc |= json_object_set_new(doc, "priority", json_integer(r->priority));
    rc |= json_object_set_new(doc, "type", json_string(rule_type_name(r->type)));
    return rc ? -ENOMEM : 0;
}

static int kind_of(const json_t *doc)
{
    const char *k = json_string_value(json_object_get(doc, "kind"));
    for (int i = 0; k && i < APPLY_KINDS; i++)
        if (strcmp(k, kind_names[i]) == 0)
            return i;
    return -1;
}

/* Files one document into r->docs, canonical; other kinds are noted and skipped. */
static int add_doc(struct apply_run *r, const struct moat_policy *p, json_t *doc, const char *file,
                   size_t no)
{
    int k = kind_of(doc);
    if (k < 0) {
        fprintf(stderr, "moat: %s: %s: document %zu: kind %s ignored (not kept by the server)\n",
                r->args->cmd->name, file, no, text(doc, "kind"));
        return 0;
    }
    json_object_del(doc, "kind");
    json_object_del(doc, "id"); /* the server assigns ids */
    int err = k == APPLY_CLUSTER ? canon_cluster(doc, p) : k == APPLY_RULE ? canon_rule(doc, p) : 0;
    if (!err && json_array_append(r->docs[k], doc) < 0)
        err = -ENOMEM;
    return err;
}

static int add_file(struct apply_run *r, const struct moat_policy *p, const char *file)
{
    struct moat_diags d;
    struct doc_set *set = NULL;
    diags_init(&d);
    int err = doc_parse_file(file, &set, &d);
    diags_clear(&d);
    for (size_t i = 0; !err && i < set->count; i++) {
        json_t *doc = api_doc_json(set->docs[i]);
        err = doc ? add_doc(r, p, doc, file, i + 1) : -ENOMEM;
        json_decref(doc);
    }
    doc_set_free(set);
    return err;
}

/* Validates the files together, then fills r->docs. Returns an exit code. */
static int load_files(struct apply_run *r, const char *const *files, size_t n)
{
    struct moat_policy *p = NULL;
    int rc = cli_load_policy(files, n, &p);
    if (rc)
        return rc;
    int err = 0;
    for (int k = 0; k < APPLY_KINDS && !err; k++)
        err = (r->docs[k] = json_array()) ? 0 : -ENOMEM;
    for (size_t i = 0; i < n && !err; i++)
        err = add_file(r, p, files[i]);
    policy_free(p);
    if (err)
        fprintf(stderr, "moat: %s: cannot read the files again: %s\n", r->args->cmd->name,
                strerror(-err));
    return err ? MOAT_EXIT_ERROR : MOAT_EXIT_OK;
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
 * What the server holds for a document: MOAT_EXIT_OK with *held (without
 * "id") and its item path, or with *held NULL when it has none; else an
 * exit code (printed).
 */
static int find_held(struct apply_run *r, int k, const json_t *doc, char *path, json_t **held)
{
    const char *name = json_string_value(json_object_get(doc, "name"));
    char q[API_PATH_MAX];
    json_t *list = NULL;
    *held = NULL;
    int bad = base_path(k, doc, path);
    snprintf(q, sizeof(q), "%s", path);
    if (bad < 0 || api_query_append(q, sizeof(q), "name", name) < 0)
        return cli_usage_error(r->args->cmd, "name too long: \"%s\"", name);
    long status = 0;
    int rc = api_call(r->client, "GET", q, NULL, &status, &list);
    if (!rc && status == 404 && k == APPLY_RULE && r->deleting) {
        json_decref(list); /* the rule's cluster is not there: nor is the rule */
        return MOAT_EXIT_OK;
    }
    if (!rc && (rc = api_exit_for_status(status)) != 0)
        api_print_errors(r->args->cmd->name, status, list);
    json_t *item = rc ? NULL : json_array_get(json_object_get(list, "items"), 0);
    if (item) {
        json_t *id = json_object_get(item, "id");
        if (json_is_integer(id))
            snprintf(path + strlen(path), API_PATH_MAX - strlen(path), "/%lld",
                     (long long)json_integer_value(id));
        else if (api_path_add(path, API_PATH_MAX, json_string_value(id)) < 0)
            rc = MOAT_EXIT_ERROR;
        *held = json_incref(item);
        json_object_del(*held, "id");
    }
    json_decref(list);
    return rc;
}

/*
 * The fields of each kind's document (as lib/loader.c accepts them). The
 * server also shows fields of its own (status, node counts, "in effect"):
 * those are not part of the document and are not compared.
 */
static const char *const doc_fields[APPLY_KINDS][13] = {
    {"name", "defense", "mode", "default_action", "detections", "description", NULL},
    {"name", "namespace", "app", "images", "labels", "cluster", "description", "cidrs", NULL},
    {"cluster", "name", "enabled", "source", "destinations", "protocol", "action", "priority",
     "type", "description", NULL},
};

static bool is_doc_field(int k, const char *key)
{
    for (size_t i = 0; doc_fields[k][i]; i++)
        if (strcmp(doc_fields[k][i], key) == 0)
            return true;
    return false;
}

/*
 * True when the server's copy already is the document: every field of the
 * document equal, and no other document field held. A system rule's file
 * document names only what it changes, so only those fields count.
 */
static bool same(int k, const json_t *doc, const json_t *held)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)doc, key, v)
    {
        if (!json_equal(v, json_object_get(held, key)))
            return false;
    }
    if (strcmp(text(held, "type"), "system") == 0)
        return true;
    json_object_foreach((json_t *)held, key, v)
    {
        if (!json_object_get(doc, key) && is_doc_field(k, key))
            return false;
    }
    return true;
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

static int apply_one(struct apply_run *r, int k, const json_t *doc)
{
    char path[API_PATH_MAX];
    json_t *held = NULL;
    int rc = find_held(r, k, doc, path, &held);
    if (rc)
        return rc;
    bool existed = held != NULL;
    const char *method = !existed ? "POST" : same(k, doc, held) ? NULL : "PUT";
    json_decref(held);
    if (method)
        rc = api_do(r->client, r->args->cmd->name, method, path, doc, NULL);
    if (rc)
        return rc;
    return note(r, k, doc, !method ? "unchanged" : existed ? "configured" : "created");
}

static int delete_one(struct apply_run *r, int k, const json_t *doc)
{
    char path[API_PATH_MAX];
    json_t *held = NULL;
    int rc = find_held(r, k, doc, path, &held);
    if (rc || !held)
        return rc ? rc : note(r, k, doc, "absent");
    bool sys = strcmp(text(held, "type"), "system") == 0;
    json_decref(held);
    if (sys)
        return note(r, k, doc, "kept (system rule)");
    rc = api_do(r->client, r->args->cmd->name, "DELETE", path, NULL, NULL);
    return rc ? rc : note(r, k, doc, "deleted");
}

static int run_all(struct apply_run *r)
{
    int rc = MOAT_EXIT_OK;
    for (int step = 0; step < APPLY_KINDS && !rc; step++) {
        int k = r->deleting ? APPLY_KINDS - 1 - step : step;
        size_t n = json_array_size(r->docs[k]);
        for (size_t i = 0; i < n && !rc; i++) {
            const json_t *doc = json_array_get(r->docs[k], r->deleting ? n - 1 - i : i);
            rc = r->deleting ? delete_one(r, k, doc) : apply_one(r, k, doc);
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
        rc = (r.results = json_array()) ? api_open(&a, &r.client) : MOAT_EXIT_ERROR;
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
