/*
 * sync: moatd's link to moat-server in cluster mode (SPEC §9).
 *
 * Two threads, each with its own HTTP connection: the poller long-polls the
 * cluster's policy by revision, asking for what changed since the revision it
 * has (delta=1), applies a delta to the last policy received (policy.json, the
 * only copy of the records it keeps besides the main loop's) and hands every
 * new full policy to the main loop (sync_wake_fd becomes readable); a delta
 * that does not apply makes it ask for all of it; the reporter registers with the join
 * token, heartbeats (node facts, datapath state, applied revision, spool),
 * reports the node's workloads when they change, and delivers the spooled
 * alert events oldest first. Neither thread touches the datapath: the main
 * loop stays the only one that does.
 *
 * The state folder keeps what must outlive a restart: the node credential
 * (credential.json), the last policy received (policy.json: enforced again at
 * start when the server cannot be reached), the cluster's threat list
 * (threat-intel.txt, fetched when the policy names a new version before the
 * policy is handed on) and the event spool (spool/).
 * The threads are created by sync_start, so they live in the network
 * namespace the caller is in at that moment (moatd starts them before it
 * joins --netns, keeping the server reachable).
 */
#ifndef MOAT_AGENT_SYNC_H
#define MOAT_AGENT_SYNC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sync_config {
    const char *server;     /* base URL */
    const char *cluster;    /* cluster id */
    const char *node;       /* node name */
    const char *join_token; /* NULL: only a saved credential can be used */
    const char *state_dir;  /* created when missing */
    const char *ca_file;    /* NULL: system CAs (https) */
    const char *os, *kernel, *agent_version;
    size_t spool_max; /* batches */
};

struct sync;

/* Loads the saved credential and policy, opens the spool, starts the threads. 0 or -errno. */
int sync_start(const struct sync_config *cfg, struct sync **out);
/* Stops the threads (promptly, also mid long-poll) and frees everything. */
void sync_stop(struct sync *s);
/* Readable when a policy arrived that sync_take_policy has not handed out. */
int sync_wake_fd(const struct sync *s);
/*
 * The newest policy answer not yet taken ({revision, cluster, objects, rules,
 * workloads}), the saved one first; NULL when there is none. In *deltas, in
 * the same step, the deltas that arrived after it (a JSON list, oldest first;
 * NULL: none): delta answers ({"revision", "since", "delta": true, ...}) that
 * change only workloads and whole members, or no workload, to apply in order
 * on top of the policy (or, without one, of the policy in force). Caller owns
 * both.
 */
json_t *sync_take_policy(struct sync *s, json_t **deltas);
/* The member of a policy or delta taken that says when it came (CLOCK_MONOTONIC seconds). */
#define SYNC_RECEIVED_AT "moatd_received_at"
/* The full policy kept (policy.json), parsed; NULL with why[] when there is none. */
json_t *sync_full_policy(struct sync *s, char *why, size_t n);
/* The next poll asks for the whole policy (the main loop could not apply what it has). */
void sync_refetch(struct sync *s);

/* What the main loop tells the server; strings and `workloads` are copied. */
struct sync_report {
    const char *datapath_state; /* enforcing | unsupported | not_installed */
    const char *datapath_reason;
    const char *datapath_backend;  /* ebpf | iptables */
    const json_t *datapath_probes; /* {"ebpf": "", "iptables": "missing ..."}; may be NULL */
    /* {"detections": [...], "detection_gaps": {...}} (cluster_det_running); may be NULL */
    const json_t *datapath_detections;
    int64_t revision;        /* policy revision in force (0: none) */
    const json_t *workloads; /* the node's workloads as the API takes them */
};
/* Sets what heartbeats say; a change of state or revision sends one at once. */
int sync_set_report(struct sync *s, const struct sync_report *r);
/*
 * The quarantines this node's kernel started ([{address, reason, since,
 * until}], only read): sent to the server when they change, so it can list
 * them and spread them to the cluster's other nodes.
 */
int sync_set_quarantines(struct sync *s, const json_t *list);
/* Where the cluster's threat list from the server is kept (the state folder). */
void sync_threat_path(const struct sync *s, char *buf, size_t n);
/* Spools `events` (a JSON array, only read) for delivery. */
int sync_send_events(struct sync *s, const json_t *events);
/* Connection facts for the status file (caller owns the object). */
json_t *sync_status(struct sync *s);

#endif
