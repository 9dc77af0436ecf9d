/*
 * client: the `moat` commands' HTTP client of moat-server's REST API
 * (docs/api/openapi.yaml), over libcurl.
 *
 * The server URL and bearer token come from, in this order, the flags
 * (--server, --token), the environment (MOAT_SERVER, MOAT_TOKEN) and the
 * config file ($XDG_CONFIG_HOME/moat/config or ~/.config/moat/config, lines
 * `server = URL` and `token = T`). Functions that talk to the user print
 * their messages to stderr and return an exit code of enum moat_exit.
 */
#ifndef MOAT_CLI_CLIENT_H
#define MOAT_CLI_CLIENT_H

#include <jansson.h>
#include <stddef.h>

struct api_client;

/*
 * Resolves the URL and token (the flags may be NULL) and makes a client.
 * Returns MOAT_EXIT_OK with *out (free with api_client_free), or
 * MOAT_EXIT_INVALID when no server or token is configured (message printed),
 * or MOAT_EXIT_ERROR.
 */
int api_client_new(const char *server_flag, const char *token_flag, struct api_client **out);
void api_client_free(struct api_client *c);

/*
 * Sends METHOD URL+PATH with `body` (NULL: none) as JSON. On an HTTP answer
 * returns MOAT_EXIT_OK with *status and *resp (the parsed body, or NULL when
 * empty or not JSON; caller releases it). When the server cannot be reached
 * prints the URL and the reason and returns MOAT_EXIT_ERROR.
 */
int api_call(struct api_client *c, const char *method, const char *path, const json_t *body,
             long *status, json_t **resp);

/*
 * api_call with a body of any media type (`ctype`; NULL: JSON): `len` bytes of
 * `body` (NULL: none). On an HTTP answer returns MOAT_EXIT_OK with *status and
 * the answer's bytes in *answer (NUL-terminated, NULL when empty; the caller
 * frees it) and *answer_len.
 */
int api_call_raw(struct api_client *c, const char *method, const char *path, const char *body,
                 size_t len, const char *ctype, long *status, char **answer, size_t *answer_len);

/*
 * api_call, then: a 2xx answer returns MOAT_EXIT_OK with *resp (may be NULL
 * for 204; `resp` itself may be NULL when the caller does not want it);
 * any other answer is printed as "moat: WHAT: FIELD: MESSAGE" lines and
 * mapped to its exit code (api_exit_for_status).
 */
int api_do(struct api_client *c, const char *what, const char *method, const char *path,
           const json_t *body, json_t **resp);

/* Prints the errors of an error answer, one per line, prefixed by "moat: WHAT: ". */
void api_print_errors(const char *what, long status, const json_t *resp);
/* The exit code for an HTTP status: 400 → INVALID, 401/403 → DENIED, 404 → NOT_FOUND... */
int api_exit_for_status(long status);

/*
 * Appends `s` to `buf` (of size n, holding a string) percent-encoded as one
 * path segment or query value. Returns 0, or -1 when it does not fit.
 */
int api_escape_append(char *buf, size_t n, const char *s);
/* Appends "?KEY=VALUE" or "&KEY=VALUE" (encoded) when value is not NULL; 0 or -1. */
int api_query_append(char *buf, size_t n, const char *key, const char *value);

#endif
