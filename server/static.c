/* static: the web console's embedded files (see static.h). */
#include "static.h"
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static const struct static_file *find(const char *name)
{
    for (size_t i = 0; i < static_nfiles; i++)
        if (strcmp(static_files[i].name, name) == 0)
            return &static_files[i];
    return NULL;
}

/* Answers file `f`: 304 when the client holds this version, else its bytes. */
static int send_file(struct req *rq, struct resp *rs, const struct static_file *f)
{
    const char *have = rq->if_none_match;
    rs->extra = f->headers;
    rs->ctype = content_type(f->name);
    if (have && strcmp(have, f->etag) == 0) {
        rs->status = 304;
        return 0;
    }
    /* Text: http.c sends up to the first NUL, and embed.sh takes no file that holds one. */
    rs->text = malloc(f->len + 1);
    if (!rs->text)
        return -ENOMEM;
    memcpy(rs->text, f->data, f->len);
    rs->text[f->len] = '\0';
    rs->status = 200;
    return 0;
}

int static_page(struct req *rq, struct resp *rs)
{
    const struct static_file *f = find("index.html");
    if (!f)
        return resp_error(rs, 404, "", "this moat-server was built without the console");
    return send_file(rq, rs, f);
}

int static_asset(struct req *rq, struct resp *rs)
{
    const char *name = rq->params[0];
    const struct static_file *f = strcmp(name, "index.html") == 0 ? NULL : find(name);
    if (!f)
        return resp_error(rs, 404, "", "no such file: /assets/%s", name);
    return send_file(rq, rs, f);
}
