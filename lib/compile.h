/*
 * compile: the policy compiler — workloads, objects, rules and cluster
 * settings in; the tables a datapath needs out (SPEC §3 resolved ahead of time).
 *
 *  - identities: one per distinct (kind, cluster, set of matched objects);
 *    id 0 is the wildcard ANY (policy keys only), id 1 is WORLD (an outside
 *    address no ipblock covers);
 *  - addresses: prefix -> identity, read with longest-prefix match: workload
 *    and host addresses as host prefixes, ipblock prefixes (and their
 *    excepts) as outside identities, ::/0 as WORLD;
 *  - policy: (direction, protocol class, subject, peer, port interval) ->
 *    winning rule. Ingress: subject = destination workload identity, peer =
 *    source identity or ANY (rules whose source is `any`). Egress: subject =
 *    source workload identity, peer = destination identity (ipblock rules).
 *    Each interval already holds the winner by (priority, id); a lookup is at
 *    most two probes (exact peer, ANY) and a compare, whatever the number of
 *    rules; a miss means the cluster default (ingress) or allow (egress);
 *  - clusters: defense, mode, default action per cluster index.
 *
 * The tables borrow the policy: it must stay alive and change only through
 * the tables_update_* calls below, which recompile incrementally.
 */
#ifndef MOAT_COMPILE_H
#define MOAT_COMPILE_H

#include "model.h"
#include "refeval.h"

#include <stddef.h>
#include <stdint.h>

#define MOAT_ID_ANY   0
#define MOAT_ID_WORLD 1

enum moat_ident_kind {
    MOAT_IDENT_WORLD = 0,
    MOAT_IDENT_WORKLOAD = 1,
    MOAT_IDENT_HOST = 2,
    MOAT_IDENT_OUTSIDE = 3,
};

/* Protocol classes of policy keys: ports exist for TCP and UDP only. */
enum moat_pclass { MOAT_PCLASS_OTHER = 0, MOAT_PCLASS_TCP = 1, MOAT_PCLASS_UDP = 2 };

struct moat_tables;

struct moat_verdict {
    bool applies;             /* false: the datapath does not judge this direction */
    bool defense_off;         /* allowed, nothing recorded */
    bool is_default;          /* no rule: the default applied */
    enum moat_action action;  /* configured */
    enum moat_action applied; /* monitor mode turns block into alert */
    uint32_t rule_id;         /* 0 when none */
    uint32_t cluster;         /* index of the judging cluster */
};

/* One policy table entry, as iterated by tables_policy_entry(). */
struct moat_policy_entry {
    enum moat_dir dir;
    enum moat_pclass pclass;
    uint32_t subject, peer;
    uint16_t port_lo, port_hi; /* 0/0 for MOAT_PCLASS_OTHER */
    uint32_t rule_id;
    uint16_t priority;
    enum moat_action action;
};

struct moat_addr_entry {
    struct moat_prefix prefix;
    uint32_t identity;
};

struct moat_ident_info {
    enum moat_ident_kind kind;
    uint32_t cluster; /* workload identities; MOAT_NONE otherwise */
    uint32_t users;   /* addresses currently mapped to it */
};

/*
 * Compiles finished policy `p` for node `opts->node` (its Node addresses are
 * `host`; NULL: every node's). Returns 0 with *out (free with tables_free),
 * or -ENOMEM.
 */
int policy_compile(const struct moat_policy *p, const struct moat_eval_opts *opts,
                   struct moat_tables **out);
void tables_free(struct moat_tables *t);

/* The identity an address maps to (longest prefix). */
uint32_t tables_identity_of(const struct moat_tables *t, const struct moat_addr *a);
/* Judges a flow as the datapath does, from the tables alone. */
void tables_decide(const struct moat_tables *t, enum moat_dir dir, const struct moat_addr *src,
                   const struct moat_addr *dst, uint8_t proto, uint16_t port,
                   struct moat_verdict *out);

/* Sizes and iteration, for golden tests, benchmarks and datapath loading. */
size_t tables_identity_count(const struct moat_tables *t); /* ids are 0..count-1 */
struct moat_ident_info tables_identity(const struct moat_tables *t, uint32_t id);
/* True when identity `id` carries object index `obj` (selector matched or ipblock covers). */
bool tables_identity_has(const struct moat_tables *t, uint32_t id, uint32_t obj);
size_t tables_addr_count(const struct moat_tables *t);
struct moat_addr_entry tables_addr_entry(const struct moat_tables *t, size_t i);
size_t tables_policy_count(const struct moat_tables *t); /* intervals in all rows */
/*
 * Visits every policy entry in a stable order (direction, subject, peer,
 * class, port). Stops early and returns the callback's value when nonzero.
 */
int tables_policy_foreach(const struct moat_tables *t,
                          int (*fn)(void *ctx, const struct moat_policy_entry *e), void *ctx);
/* Entries in the datapath's LPM form: each interval split into port prefixes. */
size_t tables_lpm_entry_count(const struct moat_tables *t);

/*
 * Incremental recompile. After changing workload `idx` in place (or appending
 * it: idx == previous count), call tables_update_workload. To remove a
 * workload, clear its addresses (naddrs = 0) and call it too. After changing
 * rule `idx` in place or appending it, call tables_update_rule with a copy of
 * the rule as it was (NULL when new). Cluster settings are read at lookup time.
 * Returns 0 or -ENOMEM (then the tables are unusable: compile afresh).
 */
int tables_update_workload(struct moat_tables *t, uint32_t idx);
int tables_update_rule(struct moat_tables *t, uint32_t idx, const struct moat_rule *old);

/*
 * Updates keep the identities no address maps to any more (an address coming
 * back to the same set of objects takes its old one again); they hold their
 * policy rows, here and in the kernel, until a full compile drops them. A
 * long run of rollouts that each make a new set grows them, so the agent
 * compiles afresh when at least MOAT_IDLE_IDS_MIN are idle and they are a
 * quarter of all identities: then idle ones take at most a third more room
 * than the live ones, plus the minimum.
 */
#define MOAT_IDLE_IDS_MIN 256
size_t tables_idle_identity_count(const struct moat_tables *t); /* workload identities */
bool tables_compaction_due(const struct moat_tables *t);

#endif
