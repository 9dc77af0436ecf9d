/*
 * ipt_rules: the iptables+ipset datapath's rules, rendered from a compiled
 * policy (compile.h) and the interfaces enforced on — pure text, no
 * syscalls, so it is tested without root (tests/unit/test_ipt_rules.c).
 * dp_iptables.c feeds the text to `ipset restore` and one
 * `iptables-restore --noflush` (and `ip6tables-restore`) per family.
 *
 * Two slots, A and B, each with its own chains (MOAT-A-*) and sets (mt-A-*):
 * a policy is rendered into the idle slot, beside the one in force, and the
 * same restore that fills the slot's chains points the static entry chains
 * (MOAT-PRE in raw, MOAT-FWD and MOAT-OUT in filter) at it — one commit per
 * family, so a packet meets the old slot or the new one, never a mix.
 * Verdict chains are per rule and action (MOAT-R<id><applied><dir>) and per
 * cluster default (MOAT-D<cluster><applied>), outside the slots, so their
 * counters survive policy updates. docs/datapath-iptables.md has the layout.
 */
#ifndef MOAT_IPT_RULES_H
#define MOAT_IPT_RULES_H

#include "compile.h"
#include "model.h"
#include "threatlist.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPT_IFACE_ADDRS 16

struct ipt_iface {
    char name[16];
    int ifindex;
    uint32_t cluster; /* index in the policy in force */
    struct moat_addr addrs[IPT_IFACE_ADDRS];
    size_t naddrs;
};

/* A growable text buffer; `err` keeps the first failure (-ENOMEM, -E2BIG). */
struct ipt_text {
    char *s;
    size_t n, cap;
    int err;
};

struct ipt_render_in {
    const struct moat_policy *p;
    const struct moat_tables *t;
    const char *node; /* this node: its workloads are the ingress subjects */
    char slot;        /* 'A' or 'B': where to render */
    uint32_t generation;
    uint16_t nflog_group;
    const struct ipt_iface *ifs; /* the interfaces enforced on */
    size_t nifs;
    /* Verdict chains that exist already (not declared again: their counters
     * stay); NULL: none. */
    bool (*chain_exists)(void *ctx, const char *name);
    void *ctx;
    /* Sets that exist already (the detections' quarantine and threat sets outlive
     * slots, and are not created again: their entries stay); NULL: none. */
    bool (*set_exists)(void *ctx, const char *name);
    void *set_ctx;
    /* What the kernel lacks (found when the backend opens): those detections are left out. */
    bool no_hashlimit; /* xt_hashlimit: brute force */
    bool no_scan_sets; /* hash:ip,port,ip or the SET target: port scans */
};

struct ipt_render_out {
    struct ipt_text sets;   /* `ipset restore` input: the slot's sets */
    struct ipt_text fam[2]; /* [0] iptables-restore, [1] ip6tables-restore */
    char **verdict_chains;  /* every verdict chain (rules, defaults) the slot uses */
    size_t nverdict, cap_verdict;
    size_t nsets;  /* sets created */
    size_t nrules; /* rules in the slot (both families) */
};

/* Renders the whole slot; 0 or -ENOMEM. Free `out` with ipt_render_free. */
int ipt_render(const struct ipt_render_in *in, struct ipt_render_out *out);
void ipt_render_free(struct ipt_render_out *out);

/*
 * The rules of one interface in the slot in force (in->slot), to add or to
 * delete (`add`): its guard chain and its dispatch rules, in `out->fam`.
 * The interface's workload identity comes from its first address.
 */
int ipt_render_iface(const struct ipt_render_in *in, const struct ipt_iface *ifc, bool add,
                     struct ipt_render_out *out);

/* The static chains (drop reasons, entry chains) one restore per family creates, and
 * the jumps from the built-in chains; `exists` names chains that exist already. */
int ipt_render_base(uint16_t nflog_group, bool (*exists)(void *ctx, const char *name), void *ctx,
                    struct ipt_render_out *out);

/* Appends text (printf); on failure out->err is set and later calls do nothing. */
void ipt_text_add(struct ipt_text *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ipt_text_free(struct ipt_text *b);

/*
 * Disjoint prefixes: `p` minus every prefix of `holes` inside it, appended to
 * *out (grown; *n, *cap). For the ipset form of longest-prefix matching
 * (hash:net sets hold disjoint prefixes here). 0 or -ENOMEM.
 */
int ipt_subtract(const struct moat_prefix *p, const struct moat_prefix *holes, size_t nholes,
                 struct moat_prefix **out, size_t *n, size_t *cap);

/* NFLOG prefixes: "moat K ..." (K: p policy, d default, s spoofing/guard; detections:
 * f brute force, q quarantine, t threat list, n a new (source, destination, port) pair
 * for the scan count, r DNS query to a resolver that is not approved, a DNS answer from one). */
#define IPT_LOG_TAG "moat"

/*
 * The detections' sets, outside the slots (they keep their entries across
 * policy updates): per cluster index and family, the quarantine (hash:ip with
 * per-entry timeouts) and the threat list (hash:net).
 */
#define IPT_QSET      "mt-Q%u-%d"
#define IPT_TSET      "mt-T%u-%d"
#define IPT_TSET_NEXT "mt-U%u-%d" /* a threat list being built, swapped in whole */
#define IPT_TSET_MAX  4194304u    /* maxelem of a threat set: twice MOAT_THREATS_MAX, rounded */
#define IPT_QSET_MAX  65536u      /* quarantines per cluster and family (as eBPF's map) */
/* ipset's largest timeout (s): a longer quarantine is cut to it */
#define IPT_TIMEOUT_MAX 2147483u
/* hashlimit's largest burst (iptables 1.4.7): the largest brute force threshold run */
#define IPT_BURST_MAX 10000u
#define IPT_SCAN_SEEN "mt-%c-S%u-%d" /* per slot: the (source, port, destination) pairs seen */

/*
 * `ipset restore` input that installs lists[i] as the threat set of cluster
 * index i (NULL or empty: an empty set), each family built aside and swapped
 * in whole (the set in force is made only where `set_exists` says it is not):
 * 0, -ENOMEM or -E2BIG.
 */
int ipt_render_threats(struct moat_threatlist *const *lists, size_t n,
                       bool (*set_exists)(void *ctx, const char *name), void *ctx,
                       struct ipt_text *out);

/* The rate "R/UNIT" that lets `threshold` attempts through per `window` seconds (hashlimit). */
void ipt_hashlimit_rate(uint32_t threshold, uint32_t window, char *buf, size_t n);

/*
 * Whether this backend runs detection `name` ("brute_force", "port_scan",
 * "dns_hijack", "spoofing", "threat_intel") for cluster `cl` as configured:
 * NULL when it does (or the cluster does not ask for it), else why not, with
 * *partly set when it runs with a difference (datapath.h, detection_gap).
 */
const char *ipt_detection_gap(const struct moat_cluster *cl, const char *name, bool *partly);

#endif
