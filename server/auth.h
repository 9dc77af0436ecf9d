/*
 * auth: bearer tokens. A token is 32 random bytes from /dev/urandom written
 * as 64 hex digits after the prefix "moat_"; the store keeps only the
 * SHA-256 of the whole token (hex), so a leaked database reveals no token.
 * Node credentials have the same form and live in the same table (role
 * `agent`, bound to a node record), so any bearer token is found with one
 * indexed lookup, however many nodes there are. Join tokens have the same
 * form too; their hashes name the cluster's join records.
 */
#ifndef MOAT_SERVER_AUTH_H
#define MOAT_SERVER_AUTH_H

#include "server.h"

#define AUTH_TOKEN_LEN 69 /* "moat_" + 64 hex digits */
#define AUTH_HASH_LEN  64

/* A new random token in out[AUTH_TOKEN_LEN + 1]. 0 or -errno (reading /dev/urandom). */
int auth_token_new(char *out);
/* The SHA-256 of `token` in hex, in out[AUTH_HASH_LEN + 1]. 0 or -EIO (libcrypto failed). */
int auth_hash(const char *token, char *out);
/*
 * The role of an `Authorization` header value ("Bearer T") into rq->role
 * (ROLE_NONE when none/unknown). A node credential gives ROLE_AGENT with
 * rq->node_id, rq->agent_cluster and rq->agent_node set; an admin or viewer
 * token sets rq->token_id. 0 or a store error.
 */
int auth_role(struct store *st, const char *header, struct req *rq);
/* The cache of known tokens (srv->auth_cache; see auth.c). 0 or -ENOMEM. */
int auth_cache_new(struct auth_cache **out);
void auth_cache_free(struct auth_cache *c);
/* "admin" / "viewer" to a role; ROLE_NONE for anything else. */
enum role auth_role_parse(const char *name);

#endif
