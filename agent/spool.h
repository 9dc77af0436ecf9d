/*
 * spool: alert events kept on disk until moat-server has them (cluster mode).
 *
 * Each batch is one file DIR/<16-digit sequence>.json holding
 * {"batch": ID, "events": [...]}, written atomically (temporary file, fsync,
 * rename) so a crash leaves whole batches only. Batches go to the server
 * oldest first and are removed once it acknowledged them; the batch id (random,
 * chosen when the batch is written) makes a batch resent after a crash or a
 * lost answer count once on the server: delivery is exactly once.
 *
 * The spool is bounded: adding a batch when `max_batches` are waiting drops
 * the oldest, and the dropped batches and events are counted (kept in
 * DIR/dropped across restarts). All functions are safe to call from several
 * threads. Errors: 0 or a negative errno.
 */
#ifndef MOAT_AGENT_SPOOL_H
#define MOAT_AGENT_SPOOL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct spool;

struct spool_stats {
    size_t pending;          /* batches waiting */
    uint64_t dropped;        /* batches dropped because the spool was full */
    uint64_t dropped_events; /* events in them */
};

/* Opens (creating) the spool in `dir` and finds the batches already there. */
int spool_open(const char *dir, size_t max_batches, struct spool **out);
void spool_close(struct spool *s);
/* Writes `events` (a JSON array, only read) as a new batch. */
int spool_add(struct spool *s, const json_t *events);
/* The oldest batch's text (caller frees) and sequence number; -ENOENT when empty. */
int spool_oldest(struct spool *s, char **text, uint64_t *seq);
/* Removes batch `seq` (acknowledged, or refused for good). */
int spool_done(struct spool *s, uint64_t seq);
struct spool_stats spool_stats(struct spool *s);

#endif
