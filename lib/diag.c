/* diag: collected validation errors (see diag.h). */
#include "diag.h"
#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void diags_init(struct moat_diags *d)
{
    d->items = NULL;
    d->count = d->cap = d->dropped = 0;
    d->oom = false;
}

static void diag_free(struct moat_diag *e)
{
    free(e->file);
    free(e->text);
    free(e->ctx);
    free(e->field);
    free(e->detail);
}

void diags_clear(struct moat_diags *d)
{
    for (size_t i = 0; i < d->count; i++)
        diag_free(&d->items[i]);
    free(d->items);
    diags_init(d);
}

static char *format_message(const char *file, int line, const char *ctx, const char *field,
                            const char *msg)
{
    char loc[32] = "";
    if (line > 0)
        snprintf(loc, sizeof(loc), ":%d", line);
    return moat_asprintf("%s%s%s%s%s%s%s%s", file ? file : "", loc, file ? ": " : "",
                         ctx ? ctx : "", ctx ? ": " : "", field ? field : "", field ? ": " : "",
                         msg);
}

static void add(struct moat_diags *d, const char *file, int line, const char *ctx,
                const char *field, const char *msg)
{
    if (d->count >= MOAT_DIAGS_MAX) {
        d->dropped++;
        return;
    }
    if (moat_grow(&d->items, &d->cap, d->count + 1, sizeof(*d->items)) < 0) {
        d->oom = true;
        return;
    }
    struct moat_diag *e = &d->items[d->count];
    *e = (struct moat_diag){.line = line};
    e->file = moat_strdup(file);
    e->ctx = moat_strdup(ctx);
    e->field = moat_strdup(field);
    e->detail = moat_strdup(msg);
    e->text = format_message(file, line, ctx, field, msg);
    if ((file && !e->file) || (ctx && !e->ctx) || (field && !e->field) || !e->detail || !e->text) {
        diag_free(e);
        d->oom = true;
        return;
    }
    d->count++;
}

void diags_add(struct moat_diags *d, const char *file, int line, const char *ctx, const char *fmt,
               ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    add(d, file, line, ctx, NULL, msg);
}

void diags_add_field(struct moat_diags *d, const char *file, int line, const char *ctx,
                     const char *field, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    add(d, file, line, ctx, field, msg);
}

size_t diags_total(const struct moat_diags *d)
{
    return d->count + d->dropped;
}

bool diags_oom(const struct moat_diags *d)
{
    return d->oom;
}
