/*
 * static: the web console's files (web/ and the vendored chart library),
 * compiled into moat-server by mk/embed.sh (build/gen/static_files.c), so the
 * console needs nothing from outside the binary. static.c serves them: GET /
 * and the console's page paths answer index.html, GET /assets/NAME the file
 * NAME. Every answer carries STATIC_HEADERS: a Content-Security-Policy that
 * lets the page load scripts, styles, images and connections from this
 * server only (so no inline script runs, and no request leaves the origin),
 * and an ETag for revalidation (If-None-Match gets 304).
 */
#ifndef MOAT_SERVER_STATIC_H
#define MOAT_SERVER_STATIC_H

#include <stddef.h>

#define STATIC_CSP                                                                                 \
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "                 \
    "frame-ancestors 'none'"

/* The headers of every console answer but its ETag, as "Name: value" lines (server.h). */
#define STATIC_HEADERS                                                                             \
    "Content-Security-Policy: " STATIC_CSP "\n"                                                    \
    "X-Content-Type-Options: nosniff\n"                                                            \
    "Referrer-Policy: no-referrer\n"                                                               \
    "Cache-Control: no-cache\n"

struct static_file {
    const char *name; /* base name: "index.html", "app.js" */
    const unsigned char *data;
    size_t len;
    const char *headers; /* STATIC_HEADERS and "ETag: \"...\"" (content hash) */
    const char *etag;    /* the ETag's value, quotes included */
};

/* The embedded files (generated). */
extern const struct static_file static_files[];
extern const size_t static_nfiles;

#endif
