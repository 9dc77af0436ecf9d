/*
 * model: Moat's configuration as data — clusters, network objects, defense
 * rules, workloads and nodes (SPEC §1–§4, §10) — and the matching of objects
 * against workloads and addresses.
 *
 * A struct moat_policy owns everything it holds. Loading (loader.h) fills it
 * and policy_finish() resolves names into indices, adds the built-in objects
 * and system rules and assigns ids; after that the policy is read-only for
 * the compiler and the reference evaluator.
 */
#ifndef MOAT_MODEL_H
#define MOAT_MODEL_H

#include "addr.h"
#include "image.h"
#include "labels.h"
#include "ports.h"
#include "strpool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOAT_NAME_MAX     64
#define MOAT_DESCR_MAX    4096 /* bytes of a description */
#define MOAT_LIST_MAX     256  /* entries of an object's images, labels or cidrs */
#define MOAT_DESTS_MAX    8
#define MOAT_PRIORITY_MIN 1
#define MOAT_PRIORITY_MAX 1000
#define MOAT_NONE         UINT32_MAX /* "no index" */

/* Numbers are stable: they reach the datapath and the API. */
enum moat_action { MOAT_ACTION_BLOCK = 1, MOAT_ACTION_ALERT = 2, MOAT_ACTION_ALLOW = 3 };
enum moat_mode { MOAT_MODE_PROTECT = 0, MOAT_MODE_MONITOR = 1 };
enum moat_proto { MOAT_PROTO_ANY = 0, MOAT_PROTO_TCP = 6, MOAT_PROTO_UDP = 17 };
enum moat_rule_type { MOAT_RULE_CUSTOM = 0, MOAT_RULE_SYSTEM = 1, MOAT_RULE_SUGGESTED = 2 };
enum moat_object_kind {
    MOAT_OBJ_SELECTOR = 0, /* picks workloads by namespace, app, images, labels */
    MOAT_OBJ_IPBLOCK = 1,  /* outside addresses by prefix */
    MOAT_OBJ_ANY = 2,      /* built-in `any` */
    MOAT_OBJ_HOST = 3,     /* built-in `host`: the node's own addresses */
};

#define MOAT_BF_PORTS_MAX  32
#define MOAT_RESOLVERS_MAX 16

struct moat_detection_common {
    bool enabled;
    enum moat_action action; /* alert or block */
};

struct moat_detections {
    struct {
        struct moat_detection_common c;
        uint32_t threshold, window, quarantine;
        uint16_t ports[MOAT_BF_PORTS_MAX];
        size_t nports;
    } brute_force;
    struct {
        struct moat_detection_common c;
        uint32_t threshold, window, quarantine;
    } port_scan;
    struct {
        struct moat_detection_common c;
        struct moat_addr resolvers[MOAT_RESOLVERS_MAX];
        size_t nresolvers; /* 0 = the discovered cluster DNS */
    } dns_hijack;
    struct {
        struct moat_detection_common c;
    } spoofing;
    struct {
        struct moat_detection_common c;
        char *file; /* owned; NULL = none */
    } threat_intel;
};

/* Where a document came from, for messages. */
struct moat_origin {
    const char *file; /* points into moat_policy.files */
    int line;         /* 0 when unknown */
    int doc;          /* 1-based document number in the file */
};

struct moat_cluster {
    char *name; /* the cluster id (slug) */
    bool defense;
    enum moat_mode mode;
    enum moat_action default_action;
    struct moat_detections det;
    char *description;
    bool implicit; /* made up for workloads that name a cluster no document defines */
    struct moat_origin at;
};

struct moat_cidr {
    struct moat_prefix prefix;
    struct moat_prefix *except; /* owned */
    size_t nexcept;
};

struct moat_object {
    uint32_t id;
    char *name;
    enum moat_object_kind kind;
    char *cluster;   /* NULL = every cluster */
    char *namespace; /* pattern; selectors only */
    char *app;       /* pattern on label `app`; NULL = not set */
    char **images;   /* normalised patterns */
    size_t nimages;
    struct moat_label *labels; /* selector: all must be present */
    size_t nlabels;
    struct moat_label *ns_labels; /* namespace_labels: all must be the namespace's */
    size_t nns_labels;
    struct moat_cidr *cidrs; /* ipblock only */
    size_t ncidrs;
    char *description;
    bool builtin;
    bool explicit_id;
    struct moat_origin at;
};

struct moat_dest {
    char *object_ref; /* name or id as written */
    int object_line;  /* of object_ref in its file, for messages; 0 unknown */
    uint32_t object;  /* index into objects after policy_finish */
    struct port_range ports[MOAT_PORT_RANGES_MAX];
    size_t nports;
    bool all_ports; /* ports omitted: every port, and portless protocols too */
};

struct moat_rule {
    uint32_t id;
    char *cluster_ref;
    uint32_t cluster; /* index */
    char *name;
    bool enabled;
    char *source_ref;
    int source_line; /* of source_ref in its file, for messages; 0 unknown */
    uint32_t source; /* index into objects */
    struct moat_dest dests[MOAT_DESTS_MAX];
    size_t ndests;
    enum moat_proto proto;
    enum moat_action action;
    uint16_t priority;
    enum moat_rule_type type;
    char *description;
    bool explicit_id;
    struct moat_origin at;
};

struct moat_workload {
    char *cluster_ref;
    uint32_t cluster; /* index */
    /* Its strings, forms, labels and addresses belong to moat_policy.pool, not
     * to it (a remote workload built by remote_workloads_build). */
    bool pooled;
    char *node;
    char *name;
    char *namespace;
    char *image; /* NULL = unknown */
    char *forms; /* owned, image_forms_pack()ed; NULL when no image */
    struct moat_label *labels;
    size_t nlabels;
    struct moat_addr *addrs;
    size_t naddrs;
    char *interface;
    struct moat_label *ns_labels; /* its namespace's labels, where the source reports them */
    size_t nns_labels;
    char *source; /* where it was discovered: "podman:ID", "kubernetes:UID"; NULL: a file */
    struct moat_origin at;
};

struct moat_node {
    char *name;
    char *cluster_ref; /* may be NULL */
    struct moat_addr *addrs;
    size_t naddrs;
    struct moat_origin at;
};

struct moat_policy {
    char **files;
    size_t nfiles;
    struct moat_cluster *clusters;
    size_t nclusters, cap_clusters;
    struct moat_object *objects;
    size_t nobjects, cap_objects;
    struct moat_rule *rules;
    size_t nrules, cap_rules;
    struct moat_workload *workloads;
    size_t nworkloads, cap_workloads;
    struct moat_node *nodes;
    size_t nnodes, cap_nodes;
    /* "clusters/NAME" and "objects/NAME" of documents that failed validation,
     * so that checking the rest does not also report references to them. */
    char **rejected;
    size_t nrejected, cap_rejected;
    /* Shared strings of pooled workloads (strpool.h); one reference. NULL: none. */
    struct strpool *pool;
    bool finished;
};

/* An empty policy (caller frees with policy_free), or NULL on OOM. */
struct moat_policy *policy_new(void);
void policy_free(struct moat_policy *p);

/* Defaults of a new cluster: defense off, protect, block, detections per SPEC §6. */
void cluster_defaults(struct moat_cluster *c);
/* Frees what a cluster/object/rule/workload/node owns (not the struct itself). */
void cluster_clear(struct moat_cluster *c);
void object_clear(struct moat_object *o);
void rule_clear(struct moat_rule *r);
void workload_clear(struct moat_workload *w); /* a pooled one owns nothing */
void node_clear(struct moat_node *n);

/* Index of the cluster/object/node named `name`, or MOAT_NONE. */
uint32_t policy_find_cluster(const struct moat_policy *p, const char *name);
uint32_t policy_find_object(const struct moat_policy *p, const char *name);
uint32_t policy_find_node(const struct moat_policy *p, const char *name);

/*
 * True when selector object `o` picks workload `w` (SPEC §2): every field
 * that is set matches, images by any pattern, labels all present, and
 * namespace_labels all among the labels of the workload's namespace. `any`
 * matches every workload; `host` and ipblocks none. The object's cluster
 * restriction is honoured.
 */
bool object_matches_workload(const struct moat_object *o, const struct moat_workload *w,
                             const char *cluster);
/* True when ipblock object `o` covers address `a` (a prefix, minus its excepts). */
bool object_covers_address(const struct moat_object *o, const struct moat_addr *a);
/* True when object `o` may be used in cluster `cluster` (unrestricted or the same). */
bool object_in_cluster(const struct moat_object *o, const char *cluster);

/*
 * The approved DNS resolvers of cluster `c` (SPEC §6): the addresses its
 * dns_hijack settings name, else those of its workloads the `cluster-dns`
 * object selects. Calls fn(arg, address) for each and stops at the first
 * nonzero return, which it returns; 0 when all were seen.
 */
int cluster_resolvers(const struct moat_policy *p, uint32_t c,
                      int (*fn)(void *arg, const struct moat_addr *a), void *arg);

const char *action_name(enum moat_action a);
const char *proto_name(enum moat_proto p);
const char *mode_name(enum moat_mode m);
const char *rule_type_name(enum moat_rule_type t);
const char *object_kind_name(enum moat_object_kind k);

#endif
