/* store_kinds: the record kinds' table (see store_kinds.h). */
#include "store_kinds.h"

#include <errno.h>
#include <string.h>

const struct store_kind_info store_kinds[STORE_KINDS] = {
    [STORE_CLUSTER] = {"clusters", false},
    [STORE_OBJECT] = {"objects", false},
    [STORE_RULE] = {"rules", true},
    [STORE_NODE] = {"nodes", true},
    [STORE_WORKLOAD] = {"workloads", true},
    [STORE_ALERT] = {"alerts", true},
    [STORE_BATCH] = {"batches", true},
    [STORE_JOIN] = {"joins", true},
    [STORE_REVISION] = {"revisions", true},
    [STORE_AUDIT] = {"audit", false},
    [STORE_QUARANTINE] = {"quarantines", true},
    [STORE_RELEASE] = {"releases", true},
    [STORE_THREATS] = {"threat_lists", true},
};

const char *store_kind_table(enum store_kind k)
{
    return (unsigned)k < STORE_KINDS ? store_kinds[k].table : "?";
}

bool store_kind_per_cluster(enum store_kind k)
{
    return (unsigned)k < STORE_KINDS && store_kinds[k].per_cluster;
}

size_t store_doc_depth(const json_t *v, size_t limit)
{
    size_t deepest = 0;
    json_t *x;
    if (limit == 0)
        return 1;
    if (json_is_object(v)) {
        const char *key;
        json_object_foreach((json_t *)v, key, x)
        {
            size_t d = store_doc_depth(x, limit - 1);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_array_foreach(v, i, x)
        {
            size_t d = store_doc_depth(x, limit - 1);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    return 0;
}

int store_token_list_of(json_t *rows, json_t **items)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < json_array_size(rows); i++) {
        const json_t *r = json_array_get(rows, i);
        if (!json_is_null(json_object_get(r, "node")))
            continue; /* a node's credential */
        json_t *t = json_pack("{s:O,s:O,s:O}", "id", json_object_get(r, "id"), "role",
                              json_object_get(r, "role"), "created", json_object_get(r, "created"));
        if (!t || json_array_append_new(arr, t) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    json_decref(rows);
    if (!arr)
        return -ENOMEM;
    *items = arr;
    return 0;
}

bool store_prefix_upper(const char *prefix, char *out)
{
    size_t n = prefix ? strlen(prefix) : 0;
    if (n == 0 || n > STORE_PREFIX_MAX || (unsigned char)prefix[n - 1] >= 0x7f)
        return false;
    memcpy(out, prefix, n + 1);
    out[n - 1]++;
    return true;
}
