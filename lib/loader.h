/*
 * loader: policy, inventory and lab files (SPEC §10) into a struct moat_policy.
 *
 * Documents of every kind (Cluster, NetworkObject, DefenseRule, Workload,
 * Node) are validated field by field; every problem is reported with its
 * file, line (or, for JSON, document number), the document it belongs to and
 * the field, and nothing is accepted partially: on any error the caller gets
 * no policy at all. Empty YAML documents (a trailing `---`) are skipped.
 * policy_finish() then resolves names, adds the built-in objects (`any`,
 * `host`, `cluster-dns`) and each cluster's system rules, and assigns ids:
 * system rules first, then rules in file order, explicit ids kept.
 */
#ifndef MOAT_LOADER_H
#define MOAT_LOADER_H

#include "diag.h"
#include "doc.h"
#include "model.h"

/* Names of the system rules every cluster gets (priority 1000, allow). */
#define MOAT_SYSRULE_HOST "allow-host"
#define MOAT_SYSRULE_DNS  "allow-cluster-dns"

/*
 * Validates every document of `set` and appends what it describes to `p`
 * (which must not be finished yet). Returns 0, -EINVAL (errors in `d`) or
 * -ENOMEM. On error `p` may hold part of the set: throw it away.
 */
int policy_load_docs(struct moat_policy *p, const struct doc_set *set, struct moat_diags *d);
/* Resolves and completes a loaded policy (see above). Returns 0, -EINVAL or -ENOMEM. */
int policy_finish(struct moat_policy *p, struct moat_diags *d);
/*
 * Parses, loads and finishes the files `paths[0..n)` as one policy.
 * Returns 0 with *out (caller frees with policy_free), else the first error
 * with every problem in `d` and *out NULL. Documents with errors are left
 * out and the rest is still finished, so problems between documents
 * (duplicates, unknown references) are reported too, except references to
 * the documents left out; when a file cannot be read or parsed, only the
 * per-document checks run.
 */
int policy_load_files(struct moat_policy **out, const char *const *paths, size_t n,
                      struct moat_diags *d);
/* Same, from text already in memory (`name` is used in messages). */
int policy_load_text(struct moat_policy **out, const char *text, size_t len, const char *name,
                     struct moat_diags *d);

/* Same, from a JSON array of documents already parsed (jansson). */
int policy_load_json(struct moat_policy **out, const json_t *docs, const char *name,
                     struct moat_diags *d);

/* One input of policy_load_sources: a file (`path`), or text in memory named `name`. */
struct policy_source {
    const char *path; /* NULL: use text/len/name */
    const char *text;
    size_t len;
    const char *name;
    /* Bounds of the text (NULL: doc_limits_file); the server's state uses doc_limits_server. */
    const struct doc_limits *limits;
};
/* policy_load_files over files and texts mixed (the agent: the server's policy + local files). */
int policy_load_sources(struct moat_policy **out, const struct policy_source *src, size_t n,
                        struct moat_diags *d);
/*
 * The same, with then(arg, p) called on the loaded, not yet finished policy
 * before policy_finish (the agent adds the remote workloads it keeps): its
 * -EINVAL counts as a load error, its -ENOMEM ends the load.
 */
int policy_load_sources_then(struct moat_policy **out, const struct policy_source *src, size_t n,
                             int (*then)(void *arg, struct moat_policy *p), void *arg,
                             struct moat_diags *d);

/*
 * Validates one Workload document `m` (a map, as from doc_set_from_json) by
 * the rules policy_load_docs applies, into *out (caller frees with
 * workload_clear; out->at.file is `file`, which must outlive it). Messages
 * name `file`, document `docno`, the workload and the field. 0, -EINVAL
 * (problems in `d`, *out empty) or -ENOMEM.
 */
int workload_from_doc(const struct doc_node *m, const char *file, int docno,
                      struct moat_workload *out, struct moat_diags *d);

#endif
