/*
 * cmd_apply: `moat apply -f FILE...` and `moat delete -f FILE...` — SPEC §10
 * policy files against moat-server, in one request (POST /api/v1/apply):
 * the server applies or deletes every document or none.
 *
 * Each file (or stdin, "-") is read once into memory. What can be checked
 * without the server is checked here, with file:line in every message as
 * `moat validate` prints them: the syntax, every document's fields (the
 * loader's per-document checks), and that rules name objects rather than
 * number them (`source: 4` is refused: ids differ between a file and the
 * server). Any error: exit 2 and nothing sent.
 *
 * Then the Cluster, NetworkObject and DefenseRule documents go to the
 * server with the fields the files give (string fields as JSON strings),
 * in file order; Workload and Node documents are left out with a note. The
 * server validates them with its state — at a cost that does not grow with
 * what it holds — and answers per document (created, configured,
 * unchanged; deleted, absent, kept), or with errors that name the document
 * (`documents[i].field`), which are printed at the document's file and
 * line. The server settles values as it stores them (lib/canon.h), so what
 * a file leaves out keeps its value and `on`/`true` compare equal.
 */
#include "apicmd.h"
#include "doc.h"
#include "loader.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define APPLY_KINDS 3

static const char *const kind_names[APPLY_KINDS] = {"Cluster", "NetworkObject", "DefenseRule"};

/* One -f argument, read once: the text validated is the text sent. */
struct apply_input {
    const char *name; /* the path, or "stdin" for "-" */
    char *text;
    size_t len;
    struct doc_set *set;
};

/* What one run has: the inputs, the documents to send, the client. */
struct apply_run {
    const struct api_args *args;
    struct api_client *client;
    struct apply_input in[API_ARGS_MAX + 1];
    size_t nin;
    json_t *docs;  /* the documents to send, with their kind: the fields the files give */
    json_t *where; /* "file:line" of each document, in step */
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
    json_decref(r->docs);
    json_decref(r->where);
    for (size_t i = 0; i < r->nin; i++) {
        free(r->in[i].text);
        doc_set_free(r->in[i].set);
    }
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
    int err = json_array_append_new(r->docs, doc) < 0 ? -ENOMEM : 0;
    if (!err && json_array_append_new(r->where, json_string(at)) < 0)
        err = -ENOMEM;
    return err;
}

/* ---------- checks without the server ---------- */

/* Every document's own fields, as the loader checks them (references are the server's). */
static int check_fields(struct apply_run *r)
{
    struct moat_diags d;
    diags_init(&d);
    int err = 0;
    for (size_t i = 0; !err && i < r->nin; i++) {
        struct moat_policy *p = policy_new();
        err = p ? policy_load_docs(p, r->in[i].set, &d) : -ENOMEM;
        policy_free(p);
        if (err == -EINVAL)
            err = 0; /* reported; keep checking the other files */
    }
    print_diags(&d);
    bool bad = diags_total(&d) > 0;
    diags_clear(&d);
    if (err == -ENOMEM)
        fprintf(stderr, "moat: out of memory\n");
    return err ? MOAT_EXIT_ERROR : bad ? MOAT_EXIT_INVALID : MOAT_EXIT_OK;
}

/*
 * Reads the inputs once and checks what needs no server. Fills r->docs.
 * Returns an exit code.
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
    rc = rc ? rc : (r->docs = json_array()) && (r->where = json_array()) ? 0 : MOAT_EXIT_ERROR;
    for (size_t i = 0; i < r->nin && !rc; i++) {
        check_refs(&refs, r->in[i].set);
        for (size_t j = 0; j < r->in[i].set->count && !rc; j++)
            rc = add_doc(r, &r->in[i], j) ? MOAT_EXIT_ERROR : MOAT_EXIT_OK;
    }
    if (!rc) {
        rc = check_fields(r);
        print_diags(&refs);
        if (!rc && diags_total(&refs))
            rc = MOAT_EXIT_INVALID;
    }
    diags_clear(&refs);
    return rc;
}

/* ---------- one request ---------- */

/* Prints the server's errors, each at its document's file and line when it names one. */
static void print_errors(const struct apply_run *r, const json_t *resp)
{
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(resp, "errors"), i, e)
    {
        const char *field = text(e, "field"), *msg = text(e, "message");
        size_t idx;
        int used = 0;
        if (sscanf(field, "documents[%zu]%n", &idx, &used) == 1 &&
            idx < json_array_size(r->where)) {
            const char *rest = field + used;
            if (*rest == '.')
                rest++;
            fprintf(stderr, "%s: %s%s%s\n", json_string_value(json_array_get(r->where, idx)), rest,
                    *rest ? ": " : "", msg);
        } else {
            fprintf(stderr, "moat: %s: %s%s%s\n", r->args->cmd->name, field, *field ? ": " : "",
                    msg);
        }
    }
}

/* Prints the results: clusters, objects, rules (deleting: the other way round). */
static int print_results(const struct apply_run *r, const json_t *resp)
{
    static const char *const kinds[] = {"Cluster", "NetworkObject", "DefenseRule"};
    static const char *const shorts[] = {"cluster", "object", "rule"};
    const json_t *results = json_object_get(resp, "results");
    if (r->args->format != CLI_FORMAT_TABLE)
        return out_doc(r->args->format, json_pack("{s:O}", "results", results));
    for (int step = 0; step < 3; step++) {
        int k = r->deleting ? 2 - step : step;
        size_t i;
        const json_t *x;
        json_array_foreach(results, i, x)
        {
            if (strcmp(text(x, "kind"), kinds[k]) != 0)
                continue;
            printf("%s/%s%s%s %s\n", shorts[k], k == 2 ? text(x, "cluster") : "", k == 2 ? "/" : "",
                   text(x, "name"), text(x, "result"));
        }
    }
    return MOAT_EXIT_OK;
}

static int send_all(struct apply_run *r)
{
    json_t *body =
        json_pack("{s:s,s:O}", "action", r->deleting ? "delete" : "apply", "documents", r->docs);
    if (!body) {
        fprintf(stderr, "moat: out of memory\n");
        return MOAT_EXIT_ERROR;
    }
    long status = 0;
    json_t *resp = NULL;
    int rc = api_open(r->args, &r->client);
    if (!rc)
        rc = api_call(r->client, "POST", "/api/v1/apply", body, &status, &resp);
    json_decref(body);
    if (!rc && status >= 200 && status < 300) {
        rc = print_results(r, resp);
    } else if (!rc) {
        if (json_object_get(resp, "errors"))
            print_errors(r, resp);
        else
            api_print_errors(r->args->cmd->name, status, resp);
        fprintf(stderr, "moat: %s: refused (HTTP %ld): nothing was changed\n", r->args->cmd->name,
                status);
        rc = api_exit_for_status(status);
    }
    json_decref(resp);
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
        rc = send_all(&r);
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
