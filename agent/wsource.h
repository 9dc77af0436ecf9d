/*
 * wsource: where moatd learns its node's workloads, behind one table of
 * operations — the container engine's API (src_engine.c: Podman, Docker) and
 * the Kubernetes API server (src_kube.c). Inventory files are the third
 * source and stay the loader's business (agent.c).
 *
 * A source runs its own threads, started before moatd joins --netns (the
 * engine's socket and the API server are where moatd started). It keeps the
 * set of workloads it currently sees, one Workload document (JSON, the
 * inventory format plus `source` and, from Kubernetes, `namespace_labels`)
 * per container or pod, keyed by the runtime's id. Each document is
 * validated alone with the policy loader when it is put, so one odd container
 * (a name too long, a label the model refuses) is logged and left out, never
 * a reason for the whole policy to fail. A change makes wsource_fd()
 * readable; the main loop then takes the whole set with wsource_take().
 *
 * Functions return 0 or -errno; strings are copied.
 */
#ifndef MOAT_AGENT_WSOURCE_H
#define MOAT_AGENT_WSOURCE_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WSOURCE_PATTERNS_MAX 16

struct wsource_config {
    const char *runtime;    /* docker | podman | kubernetes */
    const char *socket;     /* engine: the API's UNIX socket (NULL: the runtime's default) */
    const char *kubeconfig; /* kubernetes: NULL = in-cluster service account */
    const char *cluster;    /* every workload is placed in it */
    const char *node;
    const char *netns;             /* the namespace moatd enforces in (NULL: where it started) */
    const char *namespace_label;   /* engine: label naming the namespace (else the k8s one) */
    const char *app_label;         /* engine: label naming the app (copied into label `app`) */
    const char *default_namespace; /* engine: namespace when no label names one */
    bool verbose;
};

struct wsource;

/* One kind of source. */
struct wsource_ops {
    const char *name;           /* the --runtime value */
    const char *default_socket; /* engine sources; NULL for others */
    /* Starts the source's threads; they report through wsource_put/del/sync. */
    int (*start)(struct wsource *ws, void **state);
    /* Stops the threads promptly and frees the state. */
    void (*stop)(void *state);
};

/* The ops for `runtime` (docker, podman, kubernetes), or NULL. */
const struct wsource_ops *wsource_find(const char *runtime);

/* Starts source `ops`. 0, or -errno with the reason logged. */
int wsource_start(const struct wsource_ops *ops, const struct wsource_config *cfg,
                  struct wsource **out);
/* Stops it and frees everything (NULL: no-op). */
void wsource_stop(struct wsource *ws);
/* Readable when the set changed since the last wsource_take. */
int wsource_fd(const struct wsource *ws);
/* The set now, as a JSON array of Workload documents (caller owns), and clears the wake-up. */
json_t *wsource_take(struct wsource *ws);
/* True once the source has listed everything at least once (until then the set is partial). */
bool wsource_synced(struct wsource *ws);
/* Facts for moatd status ({runtime, endpoint, connected, synced, workloads, last_error}). */
json_t *wsource_status(struct wsource *ws);

/* ---- for the sources ---- */

const struct wsource_config *wsource_cfg(const struct wsource *ws);
/* The stop flag the source's loops and HTTP calls watch. */
const atomic_bool *wsource_stop_flag(const struct wsource *ws);
/*
 * Puts (adds or replaces) workload `id`: `doc` is a Workload document without
 * cluster and node (set here); taken over. A document the loader refuses is
 * logged (once per id and content) and the id is dropped instead.
 */
void wsource_put(struct wsource *ws, const char *id, json_t *doc);
/* Removes workload `id` (unknown: no-op). */
void wsource_del(struct wsource *ws, const char *id);
/*
 * A full listing begins (`begin`) or ended: between the two, ids not put
 * again are removed at the end, so a re-list after a lost stream forgets
 * what went away meanwhile and keeps what stayed without a gap.
 */
void wsource_relist(struct wsource *ws, bool begin);
/* Connection state for status and logs; `error` NULL when connected. */
void wsource_set_state(struct wsource *ws, const char *endpoint, const char *error);
/*
 * The labels of `labels` (a JSON object of strings) that the model takes
 * (Kubernetes rules: an image's `maintainer=Jane <j@x>` is not one) as a new
 * object; never NULL unless out of memory.
 */
json_t *wsource_clean_labels(const json_t *labels);
/* Sleeps `secs` unless stopped first; returns false when stopped. */
bool wsource_nap(struct wsource *ws, double secs);

#endif
