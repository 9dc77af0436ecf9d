/* canon: settled values written back into documents (see canon.h). */
#include "canon.h"
#include "mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct canon {
    const struct moat_policy *p;
    const struct moat_rule **rules; /* by (cluster, name) */
    size_t nrules;
};

static int cmp_key(const char *ca, const char *na, const char *cb, const char *nb)
{
    int c = strcmp(ca, cb);
    return c ? c : strcmp(na, nb);
}

static int cmp_rule(const void *a, const void *b)
{
    const struct moat_rule *x = *(const struct moat_rule *const *)a;
    const struct moat_rule *y = *(const struct moat_rule *const *)b;
    return cmp_key(x->cluster_ref, x->name, y->cluster_ref, y->name);
}

int canon_new(const struct moat_policy *p, struct canon **out)
{
    *out = NULL;
    struct canon *c = moat_calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->p = p;
    c->rules = moat_calloc(p->nrules ? p->nrules : 1, sizeof(*c->rules));
    if (!c->rules) {
        free(c);
        return -ENOMEM;
    }
    for (size_t i = 0; i < p->nrules; i++)
        if (p->rules[i].cluster_ref && p->rules[i].name)
            c->rules[c->nrules++] = &p->rules[i];
    if (c->nrules > 1)
        qsort(c->rules, c->nrules, sizeof(*c->rules), cmp_rule);
    *out = c;
    return 0;
}

void canon_free(struct canon *c)
{
    if (!c)
        return;
    free(c->rules);
    free(c);
}

static const char *name_of(const json_t *doc)
{
    return json_string_value(json_object_get(doc, "name"));
}

int canon_cluster(const struct canon *c, json_t *doc)
{
    const char *name = name_of(doc);
    uint32_t i = name ? policy_find_cluster(c->p, name) : MOAT_NONE;
    if (i == MOAT_NONE)
        return -ENOENT;
    const struct moat_cluster *cl = &c->p->clusters[i];
    int rc = json_object_set_new(doc, "defense", json_string(cl->defense ? "on" : "off"));
    rc |= json_object_set_new(doc, "mode", json_string(mode_name(cl->mode)));
    rc |= json_object_set_new(doc, "default_action", json_string(action_name(cl->default_action)));
    return rc ? -ENOMEM : 0;
}

int canon_rule(const struct canon *c, json_t *doc, const char *cluster)
{
    const char *name = name_of(doc);
    if (!name || !cluster)
        return -ENOENT;
    size_t lo = 0, hi = c->nrules;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_key(c->rules[mid]->cluster_ref, c->rules[mid]->name, cluster, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == c->nrules || cmp_key(c->rules[lo]->cluster_ref, c->rules[lo]->name, cluster, name))
        return -ENOENT;
    const struct moat_rule *r = c->rules[lo];
    int rc = json_object_set_new(doc, "enabled", json_boolean(r->enabled));
    rc |= json_object_set_new(doc, "protocol", json_string(proto_name(r->proto)));
    rc |= json_object_set_new(doc, "action", json_string(action_name(r->action)));
    rc |= json_object_set_new(doc, "priority", json_integer(r->priority));
    rc |= json_object_set_new(doc, "type", json_string(rule_type_name(r->type)));
    return rc ? -ENOMEM : 0;
}
