/*
 * compat: the kernel-support table and the "is this node certified?" check.
 *
 * The table (data/kernel-support.tsv, format in docs/compat.md) lists the
 * operating systems, OS versions and kernel releases the reference document
 * supports, one row per (OS, OS version, kernel pattern):
 *
 *     os <TAB> os_version <TAB> kernel [<TAB> max]
 *
 * Lines starting with '#' and blank lines are ignored. A node is certified
 * when one row matches its OS name, OS version and kernel release (SPEC 5).
 *
 * Kernel matching:
 *   - a literal kernel ("4.4.0-104-generic") matches that exact string;
 *   - "P**" (e.g. "3.10.0-**") matches every release that starts with P,
 *     whatever follows;
 *   - "P**" with max M (e.g. "4.18.0-**" / "240.15.1") matches a release that
 *     starts with P and whose dot-separated numeric parts after P, compared one
 *     by one as numbers, are <= M. The distribution suffix is ignored: it starts
 *     at the first part that is not all digits ("240.15.1.el8_3.x86_64" ->
 *     240.15.1). Missing parts count as 0 ("240.15" is in). A release with no
 *     numeric part after P ("4.18.0-", "4.18.0-el8") is out.
 *
 * OS matching (the `os` argument of compat_check is "NAME VERSION"):
 *   - the last whitespace-separated word is the version, the words before it
 *     the name; runs of whitespace count as one space, leading and trailing
 *     whitespace is ignored;
 *   - the name matches a table OS case-insensitively. Two os-release spellings
 *     are accepted as well: a trailing word "Linux" that the table name lacks
 *     ("CentOS Linux" = "CentOS") and parenthesised words ("Alibaba Cloud Linux
 *     (Aliyun Linux)" = "Alibaba Cloud Linux");
 *   - the version matches when it equals the table version (case-insensitive),
 *     or when it equals the table version's part before its first '-'
 *     ("7.9" = "7.9-2009"). Nothing else: "7" and "18.04.5" are not listed, and
 *     the reference's typo "Ubuntu 18.40" is only in the table as 18.04.
 *
 * The module never prints and keeps no global state; the table is read-only
 * after parsing, so one table may be shared by threads.
 */
#ifndef MOAT_COMPAT_H
#define MOAT_COMPAT_H

#include <stdbool.h>
#include <stddef.h>

struct moat_diags;
struct compat_table;

#define COMPAT_TABLE_MAX_BYTES (1024 * 1024) /* a larger file is refused */
#define COMPAT_TABLE_MAX_ROWS  100000

/* Why a node is not certified (stable numbers; names via compat_reason_name). */
enum compat_reason {
    COMPAT_CERTIFIED = 0,          /* a row matches */
    COMPAT_UNKNOWN_OS = 1,         /* no row has this OS name */
    COMPAT_VERSION_NOT_LISTED = 2, /* the OS is listed, this version (or no version) is not */
    COMPAT_KERNEL_NOT_LISTED = 3,  /* the OS version is listed, this kernel is not */
};

/* A view of one table row; the strings belong to the table. */
struct compat_row {
    int line;            /* 1-based line in the table file; 0 = no row */
    const char *os;      /* "CentOS" */
    const char *version; /* "7.9-2009" */
    const char *kernel;  /* "3.10.0-**" or a literal release */
    const char *max;     /* bound of a "**" pattern ("240.15.1"); NULL when none */
};

struct compat_result {
    bool certified;
    enum compat_reason reason;
    /*
     * Certified: the matching row. Otherwise the closest near miss (line 0 when
     * none): for KERNEL_NOT_LISTED the row of that OS version whose kernel
     * shares the longest prefix with the given one, for VERSION_NOT_LISTED the
     * row of that OS whose version shares the longest prefix (one that lists
     * the kernel when there is one).
     */
    struct compat_row row;
    /*
     * Not certified: a row that lists this kernel for another OS or version
     * (the near miss when it does, else the first such row; line 0 = none).
     */
    struct compat_row elsewhere;
    /* One line for people saying why not ("" when certified), without the table name. */
    char why[384];
};

/*
 * Parses table text. `name` (e.g. the file path) is used in error messages
 * "NAME:LINE: COLUMN: PROBLEM" and kept by the table; NULL means "<table>".
 * Every problem is added to `d` (may be NULL), not just the first.
 * Returns 0 and sets *out (free with compat_table_free), -EINVAL when the text
 * has errors (*out = NULL), -ENOMEM.
 */
int compat_table_parse(struct compat_table **out, const char *text, const char *name,
                       struct moat_diags *d);

/*
 * Reads and parses the table file at `path` (errors are named after `path`).
 * Returns what compat_table_parse returns (a file larger than
 * COMPAT_TABLE_MAX_BYTES or holding a NUL byte is -EINVAL with a message in
 * `d`), or -errno when the file cannot be opened or read; nothing is added to
 * `d` then, the caller reports path + strerror.
 */
int compat_table_load(struct compat_table **out, const char *path, struct moat_diags *d);

/* Frees the table; NULL is a no-op. Row views from compat_check die with it. */
void compat_table_free(struct compat_table *t);

/* Number of rows (not counting comments and blank lines). */
size_t compat_table_count(const struct compat_table *t);

/* The name given to parse/load ("<table>" when none); owned by the table. */
const char *compat_table_name(const struct compat_table *t);

/*
 * Checks `os` ("NAME VERSION", see the top of this file) and the kernel release
 * `kernel` (uname -r; surrounding whitespace ignored) against the table and
 * fills *r. Returns 0 whether certified or not, or -EINVAL when an argument is
 * NULL or os/kernel is blank (then *r says not certified, unknown OS).
 * Allocates nothing; the row views in *r point into `t`.
 */
int compat_check(const struct compat_table *t, const char *os, const char *kernel,
                 struct compat_result *r);

/* Stable short name: "certified", "unknown-os", "version-not-listed", "kernel-not-listed". */
const char *compat_reason_name(enum compat_reason reason);

/*
 * Which datapath backend a kernel release can run, answered offline from the
 * upstream version each needed feature appeared in (docs/compat.md, "Datapath
 * backends"): eBPF needs 5.17 (bpf_loop; ring buffers 5.8, kernel BTF 5.4,
 * array-of-maps 4.12, LPM tries 4.11, LRU maps 4.10, tc clsact 4.5); the
 * iptables backend needs ipset in the kernel (ip_set, upstream 2.6.39, and
 * backported into the RHEL/CentOS 6 kernels, 2.6.32-*.el6) besides older
 * parts. A distribution kernel can carry backports the version does not show
 * (RHEL 8's 4.18 carries much of BPF): there the answer is "unknown" and the
 * node's own probe (`moatd --check`) decides. The answer is an estimate; what
 * the agent reports from its probes is the fact.
 */
enum compat_verdict { COMPAT_NO = 0, COMPAT_YES = 1, COMPAT_UNKNOWN = 2 };

struct compat_backends {
    bool parsed; /* the release starts with a version number */
    enum compat_verdict ebpf, iptables;
    char ebpf_missing[384], iptables_missing[256]; /* "ring buffers (5.8), ..."; "" */
    const char *would_run;                         /* "ebpf", "iptables", or NULL: neither */
    char note[256];                                /* backports, estimates; "" */
};

/* Fills *out for kernel release `kernel` (uname -r). 0, or -EINVAL for NULL arguments. */
int compat_backends(const char *kernel, struct compat_backends *out);
const char *compat_verdict_name(enum compat_verdict v); /* "yes", "no", "unknown" */

#endif
