/*
 * http: moat-server's HTTP side on libmicrohttpd — listening, reading
 * bodies (at most MOAT_BODY_MAX bytes; more is answered 413), matching
 * routes, checking bearer tokens and roles (401 without a valid token, 403
 * when the role is too low), calling handlers, and counting every request
 * in the metrics. Each connection has its own thread. Read-only routes run
 * side by side, each on a store snapshot of its own; the others take turns
 * on the store's writer under server.lock (see server.h), and a long-poll
 * waiting on server.changed releases it.
 */
#ifndef MOAT_SERVER_HTTP_H
#define MOAT_SERVER_HTTP_H

#include "server.h"

/*
 * Listens on `listen` ("ADDR:PORT", "[V6ADDR]:PORT"; port 0 picks a free
 * one), prints `moat-server: listening on ADDR:PORT` on stdout and serves
 * until SIGINT or SIGTERM (then waiting long-polls are woken and answered) — HTTPS only when
 * srv->opts.tls_cert and tls_key are set, plain HTTP otherwise. The caller must have
 * blocked those signals in every thread (http_block_signals) before opening anything. Returns 0
 * after a clean stop, -EINVAL for a bad address, -EPROTONOSUPPORT when TLS is asked for but
 * libmicrohttpd was built without it, -EIO when the daemon cannot start (port taken, or a
 * certificate or key that GnuTLS refuses).
 */
int http_serve(struct server *srv, const char *listen);
/* Blocks SIGINT, SIGTERM (and ignores SIGPIPE) so http_serve can wait for them. */
int http_block_signals(void);

#endif
