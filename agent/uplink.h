/*
 * uplink: moatd's HTTP client of moat-server's agent endpoints (libcurl).
 *
 * One uplink per thread (a libcurl easy handle is not shared). Calls block
 * up to their timeout and can be cut short by the stop flag given to
 * uplink_new (checked several times a second), so a thread waiting in a
 * policy long-poll stops promptly.
 *
 * Several servers (replicas of one control plane, SPEC §9): `server` may
 * list several base URLs, comma-separated. Calls go to the current one;
 * when it cannot be connected to (refused, no such host, no connection
 * within the connect timeout) the same call goes to the next at once (it
 * was not sent); when a connection breaks after the request went out the
 * call fails as before (the caller retries: event batches are idempotent)
 * and the next call goes to the next server. The credential is the same
 * on every replica (one database).
 */
#ifndef MOAT_AGENT_UPLINK_H
#define MOAT_AGENT_UPLINK_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct uplink;

/*
 * `server` is the base URL (http[s]://HOST:PORT) or several, comma-separated;
 * `ca_file` may be NULL (system CAs). NULL on OOM or an empty URL in the list.
 */
struct uplink *uplink_new(const char *server, const char *ca_file, const atomic_bool *stop);
/* The base URL calls go to now. */
const char *uplink_current(const struct uplink *u);
/*
 * Checks a --server list: every comma-separated entry http:// or https://
 * and not empty. NULL when fine, else why (static text).
 */
const char *uplink_servers_check(const char *list);
/* Whether the lists a and b (comma-separated) have a URL in common (trailing '/' ignored). */
bool uplink_servers_overlap(const char *a, const char *b);
void uplink_free(struct uplink *u);
/* The bearer token sent from now on (copied); NULL: none. */
int uplink_set_token(struct uplink *u, const char *token);

/*
 * METHOD server+PATH with the JSON text `body` (NULL: none), waiting at most
 * `timeout_s`. Returns the HTTP status with *resp the parsed answer (NULL
 * when empty or not JSON; the caller releases it), or a negative errno when
 * no answer came (refused, timed out, stopped), with the reason in why[n].
 */
int uplink_call(struct uplink *u, const char *method, const char *path, const char *body,
                long timeout_s, json_t **resp, char *why, size_t n);
/* The bytes of the last answer uplink_call received (0: none). */
size_t uplink_last_bytes(const struct uplink *u);

/*
 * GET server+PATH for a text answer of at most `max` bytes: 200 with *text
 * (NUL-terminated, *len bytes; the caller frees it), another status (no
 * text), or a negative errno with the reason in why[n].
 */
int uplink_get_text(struct uplink *u, const char *path, size_t max, long timeout_s, char **text,
                    size_t *len, char *why, size_t n);

/* "FIELD: MESSAGE" of an error answer's first error ({errors:[{field,message}]}), or "", in buf. */
const char *uplink_error_text(const json_t *resp, char *buf, size_t n);

#endif
