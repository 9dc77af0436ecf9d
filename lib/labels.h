/*
 * labels: `key=value` labels of workloads and object label selectors.
 *
 * Keys and values follow Kubernetes' rules: a key is an optional DNS-subdomain
 * prefix and `/`, then a name of 1..63 characters of [A-Za-z0-9._-] that
 * starts and ends with a letter or digit; a value is empty or the same as a
 * name. Selectors are written `key=value`; `key:value` is accepted on input.
 */
#ifndef MOAT_LABELS_H
#define MOAT_LABELS_H

#include <stddef.h>

#define MOAT_LABEL_KEY_MAX   317 /* 253 prefix + '/' + 63 name */
#define MOAT_LABEL_VALUE_MAX 63

struct moat_label {
    char *key;   /* owned */
    char *value; /* owned */
};

/* NULL when `key` is a valid label key, else a static reason. */
const char *label_key_check(const char *key);
/* NULL when `value` is a valid label value, else a static reason. */
const char *label_value_check(const char *value);
/*
 * Splits selector text `key=value` (or `key:value`) into new strings *key and
 * *value (the caller frees both). Returns 0, -EINVAL with a message written to
 * `why` (size n), or -ENOMEM.
 */
int label_parse(const char *text, char **key, char **value, char *why, size_t n);
/* Frees the strings of `count` labels and the array itself. */
void labels_free(struct moat_label *labels, size_t count);
/* The value of `key` in `labels`, or NULL. */
const char *labels_get(const struct moat_label *labels, size_t count, const char *key);

#endif
