/*
 * cmd_audit: `moat audit list` over GET /api/v1/audit — the server's record
 * of every change it accepted (who, when, what, before and after), newest
 * first. --since and --until take what `moat alert list` takes (a time, a
 * day, or an age such as 24h).
 */
#include "apicmd.h"

#include <string.h>

static const struct out_col audit_cols[] = {
    {"ID", "id"},         {"TIME", "time"}, {"ACTOR", "actor"},     {"SOURCE", "source"},
    {"ACTION", "action"}, {"KIND", "kind"}, {"CLUSTER", "cluster"}, {"NAME", "name"},
    {"RECORD", "record"}, {NULL, NULL}};

int cmd_audit_list(int argc, char **argv)
{
    const api_mask mask = API_BIT(API_OPT_ACTOR) | API_BIT(API_OPT_ACTION) | API_BIT(API_OPT_KIND) |
                          API_BIT(API_OPT_CLUSTER) | API_BIT(API_OPT_NAME) |
                          API_BIT(API_OPT_SINCE) | API_BIT(API_OPT_UNTIL) | API_BIT(API_OPT_LIMIT) |
                          API_BIT(API_OPT_OFFSET);
    struct api_args a;
    char path[API_PATH_MAX] = "/api/v1/audit", since[64], until[64];
    json_t *list = NULL;
    int rc = api_args_parse("audit list", mask, 0, 0, argc, argv, &a);
    if (rc || a.help)
        return rc;
    if (a.opt[API_OPT_SINCE]) {
        api_time_arg(a.opt[API_OPT_SINCE], since, sizeof(since));
        a.opt[API_OPT_SINCE] = since;
    }
    if (a.opt[API_OPT_UNTIL]) {
        api_time_arg(a.opt[API_OPT_UNTIL], until, sizeof(until));
        a.opt[API_OPT_UNTIL] = until;
    }
    if (api_filters(&a, mask, path, sizeof(path)) < 0)
        return cli_usage_error(a.cmd, "filters too long");
    rc = api_once(&a, "GET", path, NULL, &list);
    return rc ? rc : out_list(a.format, list, audit_cols);
}
