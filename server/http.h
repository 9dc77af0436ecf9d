/*
 * http: moat-server's HTTP side on libmicrohttpd — listening (epoll
 * workers, no thread per connection), reading request targets strictly
 * (lib/uri.h) and bodies (bounded per route; more is answered 413),
 * matching routes, checking bearer tokens and roles (401 without a valid
 * token, 403 when the role is too low), calling handlers, and counting every
 * request in the metrics. Read-only routes run on the worker, each on a
 * store snapshot of its own; the others are queued for the writer thread
 * (writer.h) with their connection suspended; a long-poll (an agent's
 * policy, the console's change feed) is suspended in the watch (watch.h)
 * until what it waits for moves. See server.h.
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
