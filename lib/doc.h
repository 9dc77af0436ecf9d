/*
 * doc: a small document tree that YAML and JSON input both become.
 *
 * Policy, inventory and lab files (SPEC §10) and API bodies are read into the
 * same tree of maps, sequences and scalars, each node knowing the line it
 * came from (0 for JSON, whose parser does not keep positions), so that one
 * loader validates them all. YAML plain scalars are typed as YAML 1.1 reads
 * them (`on`/`off`/`yes`/`no` are booleans, `~` is null); quoted scalars are
 * strings. Limits guard against hostile input: size, depth, node count, and
 * how far YAML aliases may expand.
 */
#ifndef MOAT_DOC_H
#define MOAT_DOC_H

#include "diag.h"

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>

/* Files a user passes and API bodies: untrusted, bounded hard. */
#define MOAT_DOC_MAX_BYTES (32u << 20)
#define MOAT_DOC_MAX_DEPTH 64
#define MOAT_DOC_MAX_NODES 1000000
/*
 * The server's own state as the agent and the CLI read it (a cluster's
 * policy answer): sized for the design point of 100,000 workloads and
 * 10,000 rules per cluster with 4x room (docs/decisions.md, "Cluster scale").
 * The server validated every record on the way in; these bounds catch a
 * runaway, not an attacker.
 */
#define MOAT_DOC_SERVER_MAX_BYTES (512u << 20)
#define MOAT_DOC_SERVER_MAX_NODES 16000000

/* Bounds of one parse: doc_limits_file (MOAT_DOC_MAX_*) or doc_limits_server. */
struct doc_limits {
    size_t max_bytes;
    size_t max_nodes;
};
extern const struct doc_limits doc_limits_file;
extern const struct doc_limits doc_limits_server;
/* YAML aliases may add at most this many nodes, or as many as the document has. */
#define MOAT_DOC_MAX_ALIASED 10000

enum doc_type { DOC_SCALAR, DOC_SEQ, DOC_MAP };
enum doc_kind { DOC_STR, DOC_INT, DOC_FLOAT, DOC_BOOL, DOC_NULL };

struct doc_node {
    enum doc_type type;
    enum doc_kind kind; /* scalars only */
    char *text;         /* scalars: the text; booleans read "true"/"false" */
    int line;           /* 1-based, 0 when unknown */
    size_t count;
    size_t cap;              /* room in items (and keys) */
    struct doc_node **items; /* sequence items, or map values */
    struct doc_node **keys;  /* map keys (scalars), parallel to items */
};

struct doc_set {
    char *name; /* file name used in messages */
    bool json;
    size_t count;
    size_t cap;             /* room in docs */
    struct doc_node **docs; /* one per YAML document or JSON array element */
};

/*
 * Parses `len` bytes of YAML or JSON (JSON when `name` ends in ".json" or the
 * text starts with '{' or '['). Returns 0 with *out (caller frees with
 * doc_set_free), -EINVAL with the syntax errors added to `d`, or -ENOMEM.
 */
int doc_parse_text(const char *text, size_t len, const char *name, struct doc_set **out,
                   struct moat_diags *d);
/* The same with other bounds than doc_limits_file (NULL: those). */
int doc_parse_text_limited(const char *text, size_t len, const char *name,
                           const struct doc_limits *lim, struct doc_set **out,
                           struct moat_diags *d);
/*
 * Reads all of file `path` ("-" is stdin) into *text (NUL-terminated, caller
 * frees) and *len. 0, -EFBIG past MOAT_DOC_MAX_BYTES, -ENOMEM, -EIO or the
 * -errno of opening it.
 */
int doc_read_file(const char *path, char **text, size_t *len);
/* The same with another bound than MOAT_DOC_MAX_BYTES (threat lists are larger). */
int doc_read_file_max(const char *path, size_t max, char **text, size_t *len);
/* Reads and parses a file; -errno on I/O errors (also recorded in `d`). "-" is stdin. */
int doc_parse_file(const char *path, struct doc_set **out, struct moat_diags *d);
void doc_set_free(struct doc_set *set);
void doc_node_free(struct doc_node *n);

/* The value of `key` in a map node, or NULL (also when `map` is not a map). */
const struct doc_node *doc_map_get(const struct doc_node *map, const char *key);
/* Human name of a node's type for messages: "a string", "a list", ... */
const char *doc_type_name(const struct doc_node *n);

/*
 * The documents of a JSON array already parsed (jansson), as doc_parse_text
 * makes them from its text (JSON: documents are numbered, there are no
 * lines). `name` is used in messages. 0 with *out, -EINVAL (in `d`) or -ENOMEM.
 */
int doc_set_from_json(const json_t *docs, const char *name, struct doc_set **out,
                      struct moat_diags *d);

#endif
