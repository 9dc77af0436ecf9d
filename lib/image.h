/*
 * image: container image references and image patterns (SPEC §2).
 *
 * A reference as a runtime reports it (`docker.io/library/nginx:1.27`,
 * `nginx`, `registry.example.com:5000/team/api:2.1@sha256:...`) is normalised
 * into registry host, path, tag and digest: no host means Docker Hub
 * (`docker.io`, also for `index.docker.io`), a Docker Hub path without `/`
 * gets `library/`, and no tag and no digest reads as `:latest`.
 * A pattern matches a reference when it matches any of its forms: the full
 * reference, the reference without registry host, and for Docker Hub also
 * without `library/`; each with and without the digest, and for a reference
 * with both a tag and a digest also with the digest alone.
 */
#ifndef MOAT_IMAGE_H
#define MOAT_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

#define MOAT_IMAGE_MAX   512
#define MOAT_IMAGE_FORMS 9

struct image_forms {
    size_t count;
    char form[MOAT_IMAGE_FORMS][MOAT_IMAGE_MAX + 80];
};

/*
 * Fills `out` with the forms of reference `ref` (the first is the full
 * normalised reference). Returns 0, or -EINVAL when `ref` is not a reference
 * (empty, too long, spaces, empty path component, empty tag or digest, a
 * colon in the path).
 */
int image_forms(const char *ref, struct image_forms *out);
/* True when `pattern` (see image_pattern_normalise) matches any form. */
bool image_forms_match(const struct image_forms *forms, const char *pattern);
/*
 * The forms of `ref` packed into one allocation of just their size (caller
 * frees): each form NUL-terminated, an empty string after the last. A
 * struct image_forms is ~5 KiB whatever the reference; a model keeps one per
 * workload, and 100,000 of them must fit an agent (issue 17). NULL with
 * *err -EINVAL (not a reference, as image_forms) or -ENOMEM.
 */
char *image_forms_pack(const char *ref, int *err);
/* image_forms_match on packed forms. */
bool image_packed_match(const char *packed, const char *pattern);
/*
 * Normalises a pattern into `out` (size `n`): a pattern without tag, digest
 * or `*` in its last path component gets `:latest`, as a reference would.
 * Returns 0 or -EINVAL with a static reason in *why (also for an empty tag
 * `nginx:` or digest `nginx@`).
 */
int image_pattern_normalise(const char *pattern, char *out, size_t n, const char **why);

#endif
