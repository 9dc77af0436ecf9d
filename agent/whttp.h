/*
 * whttp: the HTTP client of the workload sources (libcurl, blocking, one
 * handle per thread): plain calls whose answer is read whole, and streams
 * (the engine's events, Kubernetes watches) delivered line by line. It
 * speaks over a UNIX socket (the container engine's API) or TCP with TLS
 * (the API server: CA, client certificate or bearer token). Every call can be
 * cut short by the stop flag (checked several times a second), so a thread
 * waiting on a quiet stream stops promptly.
 */
#ifndef MOAT_AGENT_WHTTP_H
#define MOAT_AGENT_WHTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct whttp_opts {
    const char *unix_socket;          /* NULL: TCP */
    const char *ca_file;              /* NULL: ca_pem, else the system CAs */
    const char *ca_pem;               /* PEM text (kubeconfig certificate-authority-data) */
    const char *cert_file, *key_file; /* client certificate, or the PEM texts below */
    const char *cert_pem, *key_pem;
    const char *token; /* bearer token; NULL: none */
    bool insecure;     /* kubeconfig insecure-skip-tls-verify */
    const atomic_bool *stop;
};

struct whttp;

/* A client with copies of `o`'s strings; NULL when out of memory. */
struct whttp *whttp_new(const struct whttp_opts *o);
void whttp_free(struct whttp *h);

/*
 * GET `url` and read the answer whole (at most `max` bytes), waiting at most
 * `timeout_s`. Returns the HTTP status with *body (NUL-terminated, caller
 * frees; NULL when empty), or -errno when no answer came, the reason in why.
 */
int whttp_get(struct whttp *h, const char *url, long timeout_s, size_t max, char **body, char *why,
              size_t n);

/*
 * GET `url` as a stream of lines: each complete line (without its newline,
 * NUL-terminated, at most 16 MiB) goes to on_line while the status is 200;
 * a nonzero return from on_line ends the stream. Other statuses keep the
 * first 4 KiB of the answer in *errbody (caller frees). `idle_s` > 0 ends a
 * stream that sent nothing for that long. Returns the HTTP status when the
 * stream ended (the server closed it, or on_line asked), or -errno.
 */
int whttp_stream(struct whttp *h, const char *url, long idle_s,
                 int (*on_line)(void *ctx, char *line, size_t len), void *ctx, char **errbody,
                 char *why, size_t n);

#endif
