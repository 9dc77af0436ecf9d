/*
 * nodelock: one moatd per node (docs/moatd.md, "One agent per node").
 *
 * RUN_DIR/moatd-NODE.lock is flock(2)ed exclusively for the agent's whole
 * life, before it touches the datapath; the kernel drops the lock when the
 * process ends, however it ends, so a crashed agent never blocks a restart.
 * The file records the holder's pid and network namespace (its name under
 * /run/netns and its inode), so that `moatd status` can tell a running agent
 * from a stale status file and `moatd remove` knows where the last agent
 * enforced. The file stays when the agent stops (it is the record of the
 * last agent); `moatd remove` deletes it while holding the lock.
 *
 * Functions return 0 or -errno.
 */
#ifndef MOAT_NODELOCK_H
#define MOAT_NODELOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define NODELOCK_DIR "/run/moat"

struct nodelock;

/* What the lock file of a node says. */
struct nodelock_info {
    bool exists;                  /* the file exists: a moatd ran for the node since boot */
    bool held;                    /* a moatd holds the lock now */
    long pid;                     /* the holder's (or the last holder's) pid; 0: unknown */
    char netns[256];              /* its network namespace's name in /run/netns; "": none */
    unsigned long long netns_ino; /* the inode of that namespace; 0: unknown */
};

/* The lock file's path for `node` into buf. */
void nodelock_path(const char *node, char *buf, size_t n);

/*
 * Takes the lock of `node` (creating NODELOCK_DIR and the file). Returns 0
 * with *out (nodelock_release), -EBUSY when another process holds it, or
 * -errno. `prev`, if not NULL, receives what the file said before: the
 * holder on -EBUSY, the last holder on 0.
 */
int nodelock_acquire(const char *node, struct nodelock **out, struct nodelock_info *prev);
/* Writes this process's pid and network namespace (named `netns_name`, or
 * found in /run/netns when NULL) into the lock file. */
int nodelock_record(struct nodelock *lk, const char *netns_name);
/* Deletes the lock file (still held, so no agent starts meanwhile). */
int nodelock_unlink(struct nodelock *lk);
/* Releases the lock (the file stays). NULL is a no-op. */
void nodelock_release(struct nodelock *lk);
/*
 * Reads the lock file of `node` without taking the lock: 0 with *info
 * (info->exists false when there is none) or -errno.
 */
int nodelock_probe(const char *node, struct nodelock_info *info);
/* This process's network namespace: its name in /run/netns ("" if none) and inode. */
void nodelock_netns_self(char *name, size_t n, unsigned long long *ino);
/* True when `info` names a namespace in /run/netns that is no longer there (or
 * is another one now); false when it is there, is the host's, or is unknown. */
bool nodelock_netns_gone(const struct nodelock_info *info);

#endif
