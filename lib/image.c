/* image: image reference normalisation and matching (see image.h). */
#include "image.h"
#include "mem.h"
#include "pattern.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

struct image_parts {
    char host[MOAT_IMAGE_MAX + 1];
    char path[MOAT_IMAGE_MAX + 1];
    char tag[MOAT_IMAGE_MAX + 1];
    char digest[MOAT_IMAGE_MAX + 1];
};

/* The first path component is a registry host when it looks like one. */
static bool is_registry_host(const char *comp, size_t len)
{
    if (len == 9 && strncmp(comp, "localhost", 9) == 0)
        return true;
    for (size_t i = 0; i < len; i++)
        if (comp[i] == '.' || comp[i] == ':')
            return true;
    return false;
}

static bool valid_reference_text(const char *ref)
{
    size_t n = strlen(ref);
    if (n == 0 || n > MOAT_IMAGE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)ref[i];
        if (c <= ' ' || c == 0x7f)
            return false;
    }
    return strstr(ref, "//") == NULL && ref[0] != '/' && ref[n - 1] != '/';
}

static int image_split(const char *ref, struct image_parts *p)
{
    memset(p, 0, sizeof(*p));
    if (!valid_reference_text(ref))
        return -EINVAL;
    char buf[MOAT_IMAGE_MAX + 1];
    snprintf(buf, sizeof(buf), "%s", ref);
    char *at = strchr(buf, '@');
    if (at) {
        *at = '\0';
        snprintf(p->digest, sizeof(p->digest), "%s", at + 1);
        if (!p->digest[0])
            return -EINVAL;
    }
    char *last_slash = strrchr(buf, '/');
    char *colon = strrchr(last_slash ? last_slash : buf, ':');
    if (colon) {
        *colon = '\0';
        snprintf(p->tag, sizeof(p->tag), "%s", colon + 1);
        if (!p->tag[0])
            return -EINVAL;
    }
    char *slash = strchr(buf, '/');
    if (slash && is_registry_host(buf, (size_t)(slash - buf))) {
        *slash = '\0';
        snprintf(p->host, sizeof(p->host), "%s", buf);
        snprintf(p->path, sizeof(p->path), "%s", slash + 1);
    } else {
        snprintf(p->host, sizeof(p->host), "docker.io");
        snprintf(p->path, sizeof(p->path), "%s", buf);
    }
    if (strcmp(p->host, "index.docker.io") == 0)
        snprintf(p->host, sizeof(p->host), "docker.io");
    if (!p->path[0] || strchr(p->path, ':'))
        return -EINVAL; /* `nginx:1.27:x`: a colon outside the host and the tag */
    if (strcmp(p->host, "docker.io") == 0 && !strchr(p->path, '/')) {
        char tmp[MOAT_IMAGE_MAX + 1];
        int n = snprintf(tmp, sizeof(tmp), "library/%s", p->path);
        if (n < 0 || (size_t)n >= sizeof(tmp))
            return -EINVAL;
        memcpy(p->path, tmp, sizeof(tmp));
    }
    if (!p->tag[0] && !p->digest[0])
        snprintf(p->tag, sizeof(p->tag), "latest");
    return 0;
}

static void add_form(struct image_forms *out, const char *prefix, const char *path,
                     const struct image_parts *p, bool with_tag, bool with_digest)
{
    if (out->count >= MOAT_IMAGE_FORMS)
        return;
    char *f = out->form[out->count];
    size_t n = sizeof(out->form[0]);
    bool tag = with_tag && p->tag[0];
    int len = snprintf(f, n, "%s%s%s%s%s%s", prefix, path, tag ? ":" : "", tag ? p->tag : "",
                       with_digest ? "@" : "", with_digest ? p->digest : "");
    if (len < 0 || (size_t)len >= n)
        return; /* cannot happen for references within MOAT_IMAGE_MAX */
    for (size_t i = 0; i < out->count; i++)
        if (strcmp(out->form[i], f) == 0)
            return;
    out->count++;
}

int image_forms(const char *ref, struct image_forms *out)
{
    struct image_parts p;
    out->count = 0;
    int err = image_split(ref, &p);
    if (err)
        return err;
    char host[MOAT_IMAGE_MAX + 2];
    snprintf(host, sizeof(host), "%s/", p.host);
    bool hub = strcmp(p.host, "docker.io") == 0 && strncmp(p.path, "library/", 8) == 0;
    /* With the digest (and tag), with the digest alone (a digest names the
     * image whatever its tag), then without the digest. */
    for (int d = p.digest[0] ? 2 : 0; d >= 0; d--) {
        bool with_tag = d != 1;
        if (d == 1 && !p.tag[0])
            continue;
        add_form(out, host, p.path, &p, with_tag, d > 0);
        add_form(out, "", p.path, &p, with_tag, d > 0);
        if (hub)
            add_form(out, "", p.path + 8, &p, with_tag, d > 0);
    }
    return 0;
}

bool image_forms_match(const struct image_forms *forms, const char *pattern)
{
    for (size_t i = 0; i < forms->count; i++)
        if (pattern_match(pattern, forms->form[i]))
            return true;
    return false;
}

char *image_forms_pack(const char *ref, int *err)
{
    struct image_forms f; /* on the stack: a heap block of 5 KiB per workload costs more */
    *err = image_forms(ref, &f);
    size_t len = 1;
    for (size_t i = 0; !*err && i < f.count; i++)
        len += strlen(f.form[i]) + 1;
    char *packed = *err ? NULL : moat_calloc(1, len);
    if (!*err && !packed)
        *err = -ENOMEM;
    for (size_t i = 0, at = 0; packed && i < f.count; i++) {
        size_t n = strlen(f.form[i]) + 1;
        memcpy(packed + at, f.form[i], n);
        at += n;
    }
    return packed;
}

bool image_packed_match(const char *packed, const char *pattern)
{
    for (const char *s = packed; s && *s; s += strlen(s) + 1)
        if (pattern_match(pattern, s))
            return true;
    return false;
}

int image_pattern_normalise(const char *pattern, char *out, size_t n, const char **why)
{
    *why = pattern_check(pattern);
    if (*why)
        return -EINVAL;
    if (strlen(pattern) > MOAT_IMAGE_MAX) {
        *why = "is longer than 512 characters";
        return -EINVAL;
    }
    const char *last = strrchr(pattern, '/');
    last = last ? last + 1 : pattern;
    bool open = strchr(last, ':') || strchr(pattern, '@') || strchr(last, '*');
    if (!*last) {
        *why = "ends with '/'";
        return -EINVAL;
    }
    size_t n_last = strlen(last);
    if (last[n_last - 1] == ':') {
        *why = "has an empty tag";
        return -EINVAL;
    }
    if (last[n_last - 1] == '@') {
        *why = "has an empty digest";
        return -EINVAL;
    }
    snprintf(out, n, "%s%s", pattern, open ? "" : ":latest");
    return 0;
}
