/* labels: label keys, values and selectors (see labels.h). */
#include "labels.h"
#include "mem.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_alnum(char c)
{
    return isalnum((unsigned char)c) != 0;
}

static const char *name_check(const char *s, size_t n)
{
    if (n == 0)
        return "name part is empty";
    if (n > 63)
        return "name part is longer than 63 characters";
    if (!is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return "must start and end with a letter or digit";
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return "may only contain letters, digits, '-', '_' and '.'";
    return NULL;
}

static bool is_lower_alnum(char c)
{
    return islower((unsigned char)c) || isdigit((unsigned char)c);
}

/* A DNS subdomain (RFC 1123): dot-separated labels of [a-z0-9-], each starting
 * and ending with a letter or digit. */
static const char *prefix_check(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return "prefix must be 1..253 characters";
    for (size_t i = 0; i < n; i++) {
        bool edge = i == 0 || i == n - 1 || s[i - 1] == '.' || s[i + 1] == '.';
        if (!(is_lower_alnum(s[i]) || s[i] == '-' || s[i] == '.') ||
            (edge && !is_lower_alnum(s[i])))
            return "prefix must be a lower-case DNS name";
    }
    return NULL;
}

const char *label_key_check(const char *key)
{
    const char *slash = strchr(key, '/');
    if (!slash)
        return name_check(key, strlen(key));
    const char *why = prefix_check(key, (size_t)(slash - key));
    return why ? why : name_check(slash + 1, strlen(slash + 1));
}

const char *label_value_check(const char *value)
{
    size_t n = strlen(value);
    return n == 0 ? NULL : name_check(value, n);
}

int label_parse(const char *text, char **key, char **value, char *why, size_t n)
{
    *key = *value = NULL;
    size_t sep = strcspn(text, "=:");
    const char *rest = text + sep;
    if (!*rest || sep == 0 || strpbrk(rest + 1, "=:")) {
        snprintf(why, n, "\"%s\" is not key=value", text);
        return -EINVAL;
    }
    *key = moat_strndup(text, sep);
    *value = moat_strdup(rest + 1);
    if (!*key || !*value) {
        free(*key);
        free(*value);
        *key = *value = NULL;
        return -ENOMEM;
    }
    const char *bad = label_key_check(*key);
    const char *part = "key";
    if (!bad) {
        bad = label_value_check(*value);
        part = "value";
    }
    if (bad) {
        snprintf(why, n, "\"%s\": label %s %s", text, part, bad);
        free(*key);
        free(*value);
        *key = *value = NULL;
        return -EINVAL;
    }
    return 0;
}

void labels_free(struct moat_label *labels, size_t count)
{
    for (size_t i = 0; labels && i < count; i++) {
        free(labels[i].key);
        free(labels[i].value);
    }
    free(labels);
}

const char *labels_get(const struct moat_label *labels, size_t count, const char *key)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(labels[i].key, key) == 0)
            return labels[i].value;
    return NULL;
}
