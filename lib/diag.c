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

void diags_clear(struct moat_diags *d)
{
    for (size_t i = 0; i < d->count; i++) {
        free(d->items[i].file);
        free(d->items[i].text);
    }
    free(d->items);
    diags_init(d);
}

static char *format_message(const char *file, int line, const char *ctx, const char *msg)
{
    char loc[32] = "";
    if (line > 0)
        snprintf(loc, sizeof(loc), ":%d", line);
    return moat_asprintf("%s%s%s%s%s%s", file ? file : "", loc, file ? ": " : "", ctx ? ctx : "",
                         ctx ? ": " : "", msg);
}

void diags_add(struct moat_diags *d, const char *file, int line, const char *ctx, const char *fmt,
               ...)
{
    if (d->count >= MOAT_DIAGS_MAX) {
        d->dropped++;
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (moat_grow(&d->items, &d->cap, d->count + 1, sizeof(*d->items)) < 0) {
        d->oom = true;
        return;
    }
    struct moat_diag *e = &d->items[d->count];
    e->line = line;
    e->file = moat_strdup(file);
    e->text = format_message(file, line, ctx, msg);
    if ((file && !e->file) || !e->text) {
        free(e->file);
        free(e->text);
        d->oom = true;
        return;
    }
    d->count++;
}

size_t diags_total(const struct moat_diags *d)
{
    return d->count + d->dropped;
}

bool diags_oom(const struct moat_diags *d)
{
    return d->oom;
}
