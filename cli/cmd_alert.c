/*
 * cmd_alert: alerts and protection status over moat-server's API —
 * `moat alert list|get|status`, `moat alerts [--follow]` (the newest alerts,
 * then, with --follow, every new or changed alert as it arrives, polling
 * once a second until SIGINT or SIGTERM) and `moat status [CLUSTER]`
 * (SPEC 7, 8).
 *
 * --since and --until take the server's UTC times (YYYY-MM-DDTHH:MM:SSZ), a
 * day (YYYY-MM-DD, its start) or an age such as 90s, 30m, 24h or 7d (that
 * long before now). `alert get ID` reads GET /api/v1/alerts/{id}.
 */
#include "apicmd.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define V1_ALERTS      "/api/v1/alerts"
#define ALERTS_DEFAULT "20"  /* alerts `moat alerts` shows first */
#define FOLLOW_WINDOW  "100" /* newest alerts each poll of --follow looks at */

static const api_mask alert_filters = API_BIT(API_OPT_CLUSTER) | API_BIT(API_OPT_NODE) |
                                      API_BIT(API_OPT_KIND) | API_BIT(API_OPT_ACTION) |
                                      API_BIT(API_OPT_STATUS) | API_BIT(API_OPT_WORKLOAD) |
                                      API_BIT(API_OPT_SINCE) | API_BIT(API_OPT_UNTIL);

static const struct out_col alert_cols[] = {{"ID", "id"},
                                            {"LAST-SEEN", "last_seen"},
                                            {"CLUSTER", "cluster"},
                                            {"KIND", "kind"},
                                            {"ACTION", "applied_action"},
                                            {"RULE", "_rule"},
                                            {"SOURCE", "_source"},
                                            {"DESTINATION", "_destination"},
                                            {"ATTEMPTS", "attempts"},
                                            {"RISK", "risk"},
                                            {"STATUS", "status"},
                                            {NULL, NULL}};

static const char *str(const json_t *doc, const char *key)
{
    const char *s = json_string_value(json_object_get(doc, key));
    return s ? s : "";
}

/* An alert's endpoint: NAMESPACE/NAME or the address, with ":port" when asked. */
static void endpoint_text(const json_t *ep, bool port, char *buf, size_t n)
{
    const char *who = *str(ep, "workload") ? str(ep, "workload") : str(ep, "address");
    const json_t *p = json_object_get(ep, "port");
    if (port && json_is_integer(p))
        snprintf(buf, n, "%s:%lld", *who ? who : "-", (long long)json_integer_value(p));
    else
        snprintf(buf, n, "%s", *who ? who : "-");
}

/* Adds the table's flat columns (_rule, _source, _destination) to an alert. */
static int alert_flatten(json_t *a)
{
    char src[320], dst[320];
    const json_t *rule = json_object_get(a, "rule");
    endpoint_text(json_object_get(a, "source"), false, src, sizeof(src));
    endpoint_text(json_object_get(a, "destination"), true, dst, sizeof(dst));
    int bad = json_object_set_new(a, "_rule",
                                  json_string(*str(rule, "name") ? str(rule, "name") : "-")) < 0;
    bad |= json_object_set_new(a, "_source", json_string(src)) < 0;
    bad |= json_object_set_new(a, "_destination", json_string(dst)) < 0;
    return bad ? -ENOMEM : 0;
}

/* One alert as one line (the form `moat alerts` and `moat status` print). */
static void alert_line(FILE *out, const char *indent, const json_t *a)
{
    char src[320], dst[320];
    endpoint_text(json_object_get(a, "source"), false, src, sizeof(src));
    endpoint_text(json_object_get(a, "destination"), true, dst, sizeof(dst));
    const char *rule = str(json_object_get(a, "rule"), "name");
    fprintf(out, "%s%s  #%lld  %s/%s  %s%s%s  %s  %s -> %s  attempts=%lld  risk=%s  %s\n", indent,
            str(a, "last_seen"), (long long)json_integer_value(json_object_get(a, "id")),
            str(a, "cluster"), str(a, "node"), str(a, "kind"), *rule ? ":" : "", rule,
            str(a, "applied_action"), src, dst,
            (long long)json_integer_value(json_object_get(a, "attempts")), str(a, "risk"),
            str(a, "status"));
}

/* The alert list's path for the filters given, with `limit` when not NULL. */
static int alerts_path(struct api_args *a, const char *limit, char *path)
{
    char since[64], until[64];
    const char *given_since = a->opt[API_OPT_SINCE], *given_until = a->opt[API_OPT_UNTIL];
    if (a->opt[API_OPT_SINCE]) {
        api_time_arg(a->opt[API_OPT_SINCE], since, sizeof(since));
        a->opt[API_OPT_SINCE] = since;
    }
    if (a->opt[API_OPT_UNTIL]) {
        api_time_arg(a->opt[API_OPT_UNTIL], until, sizeof(until));
        a->opt[API_OPT_UNTIL] = until;
    }
    snprintf(path, API_PATH_MAX, V1_ALERTS);
    int err = api_filters(a, alert_filters | API_BIT(API_OPT_OFFSET), path, API_PATH_MAX);
    if (!err)
        err = api_query_append(path, API_PATH_MAX, "limit", limit);
    a->opt[API_OPT_SINCE] = given_since; /* they pointed here */
    a->opt[API_OPT_UNTIL] = given_until;
    return err < 0 ? cli_usage_error(a->cmd, "filters too long") : MOAT_EXIT_OK;
}

/* Prints a list of alerts: the table with flat columns, or the answer as it came. */
static int alerts_out(enum cli_format f, json_t *list)
{
    json_t *items = json_object_get(list, "items");
    for (size_t i = 0; f == CLI_FORMAT_TABLE && i < json_array_size(items); i++) {
        if (alert_flatten(json_array_get(items, i)) < 0) {
            json_decref(list);
            fprintf(stderr, "moat: out of memory\n");
            return MOAT_EXIT_ERROR;
        }
    }
    return out_list(f, list, alert_cols);
}

int cmd_alert_list(int argc, char **argv)
{
    const api_mask mask = alert_filters | API_BIT(API_OPT_LIMIT) | API_BIT(API_OPT_OFFSET);
    struct api_args a;
    char path[API_PATH_MAX];
    json_t *list = NULL;
    int rc = api_args_parse("alert list", mask, 0, 0, argc, argv, &a);
    if (rc || a.help)
        return rc;
    rc = alerts_path(&a, a.opt[API_OPT_LIMIT], path);
    if (!rc)
        rc = api_once(&a, "GET", path, NULL, &list);
    return rc ? rc : alerts_out(a.format, list);
}

static bool parse_id(const char *s, json_int_t *id)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    *id = v;
    return *s && !*end && v > 0;
}

int cmd_alert_get(int argc, char **argv)
{
    struct api_args a;
    json_t *doc = NULL;
    json_int_t id;
    char path[API_PATH_MAX] = V1_ALERTS;
    int rc = api_args_parse("alert get", 0, 1, 1, argc, argv, &a);
    if (rc || a.help)
        return rc;
    if (!parse_id(a.pos[0], &id))
        return cli_usage_error(a.cmd, "\"%s\" is not an alert id", a.pos[0]);
    if (api_path_add(path, sizeof(path), a.pos[0]) < 0)
        return cli_usage_error(a.cmd, "alert id too long");
    rc = api_once(&a, "GET", path, NULL, &doc);
    return rc ? rc : out_doc(a.format, doc);
}

int cmd_alert_status(int argc, char **argv)
{
    struct api_args a;
    struct api_client *c = NULL;
    int rc = api_args_parse("alert status", 0, 2, API_ARGS_MAX, argc, argv, &a);
    if (rc || a.help)
        return rc;
    const char *status = a.pos[a.npos - 1];
    if (strcmp(status, "handled") && strcmp(status, "ignored") && strcmp(status, "unhandled"))
        return cli_usage_error(a.cmd, "\"%s\": want handled, ignored or unhandled", status);
    json_int_t id;
    for (int i = 0; i < a.npos - 1; i++)
        if (!parse_id(a.pos[i], &id))
            return cli_usage_error(a.cmd, "\"%s\" is not an alert id", a.pos[i]);
    json_t *body = json_pack("{s:s}", "status", status), *done = json_array();
    rc = body && done ? api_open(&a, &c) : MOAT_EXIT_ERROR;
    for (int i = 0; !rc && i < a.npos - 1; i++) {
        char path[API_PATH_MAX] = V1_ALERTS;
        json_t *doc = NULL;
        if (api_path_add(path, sizeof(path), a.pos[i]) < 0)
            rc = cli_usage_error(a.cmd, "alert id too long");
        if (!rc)
            rc = api_do(c, a.cmd->name, "PATCH", path, body, &doc);
        if (!rc && a.format == CLI_FORMAT_TABLE)
            printf("alert %s %s\n", a.pos[i], status);
        if (!rc && json_array_append_new(done, doc) < 0)
            rc = MOAT_EXIT_ERROR;
    }
    api_client_free(c);
    json_decref(body);
    if (a.format != CLI_FORMAT_TABLE && done)
        out_doc(a.format, json_pack("{s:O}", "items", done));
    json_decref(done);
    return rc;
}

/* ---- moat alerts [--follow] --------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* SIGINT and SIGTERM end --follow; no SA_RESTART, so they cut the sleep short. */
static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* What makes an alert "changed": its last_seen, attempts and status. */
static void signature(const json_t *a, char *buf, size_t n)
{
    snprintf(buf, n, "%s|%lld|%s", str(a, "last_seen"),
             (long long)json_integer_value(json_object_get(a, "attempts")), str(a, "status"));
}

/* Prints one alert of the stream in format f: a line, a JSON line or a YAML document. */
static void stream_one(enum cli_format f, const json_t *a)
{
    if (f == CLI_FORMAT_TABLE) {
        alert_line(stdout, "", a);
    } else if (f == CLI_FORMAT_JSON) {
        char *s = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s)
            printf("%s\n", s);
        free(s);
    } else {
        printf("---\n");
        out_yaml(stdout, a);
    }
}

/*
 * Prints the alerts of `items` (newest first) that are not in `seen` with
 * the same signature, oldest first, and makes `seen` the signatures of
 * `items` (so it stays as small as one answer).
 */
static int stream_new(enum cli_format f, const json_t *items, json_t *seen)
{
    json_t *now = json_object();
    if (!now)
        return -ENOMEM;
    for (size_t i = json_array_size(items); i-- > 0;) {
        const json_t *a = json_array_get(items, i);
        char id[32], sig[128];
        snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(json_object_get(a, "id")));
        signature(a, sig, sizeof(sig));
        const char *old = json_string_value(json_object_get(seen, id));
        if (!old || strcmp(old, sig) != 0)
            stream_one(f, a);
        if (json_object_set_new(now, id, json_string(sig)) < 0) {
            json_decref(now);
            return -ENOMEM;
        }
    }
    fflush(stdout);
    json_object_clear(seen);
    int err = json_object_update(seen, now) < 0 ? -ENOMEM : 0;
    json_decref(now);
    return err;
}

/* Sleeps about one second, less when a signal comes. */
static void pause_a_second(void)
{
    struct timespec ts = {1, 0};
    if (!interrupted)
        nanosleep(&ts, NULL);
}

/* One poll: GET the newest alerts, print what is new; on the first, only the newest `show`. */
static int poll_once(struct api_args *a, struct api_client *c, bool first, size_t show,
                     json_t *seen)
{
    char path[API_PATH_MAX];
    json_t *list = NULL;
    int rc = alerts_path(a, FOLLOW_WINDOW, path);
    if (!rc)
        rc = api_do(c, a->cmd->name, "GET", path, NULL, &list);
    const json_t *items = json_object_get(list, "items");
    for (size_t i = show; !rc && first && i < json_array_size(items); i++) {
        char id[32], sig[128];
        const json_t *x = json_array_get(items, i);
        snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(json_object_get(x, "id")));
        signature(x, sig, sizeof(sig));
        if (json_object_set_new(seen, id, json_string(sig)) < 0)
            rc = MOAT_EXIT_ERROR;
    }
    if (!rc && stream_new(a->format, items, seen) < 0)
        rc = MOAT_EXIT_ERROR;
    json_decref(list);
    return rc;
}

/*
 * --follow: polls once a second until SIGINT/SIGTERM (exit 0). A server that
 * cannot be reached or answers 5xx is tried again; other errors end it.
 */
static int follow(struct api_args *a, size_t show)
{
    struct api_client *c;
    json_t *seen = json_object();
    int rc = seen ? api_open(a, &c) : MOAT_EXIT_ERROR;
    if (rc) {
        json_decref(seen);
        return rc;
    }
    catch_signals();
    for (bool first = true; !interrupted; first = false) {
        rc = poll_once(a, c, first, show, seen);
        if (rc && rc != MOAT_EXIT_ERROR)
            break;
        pause_a_second();
    }
    api_client_free(c);
    json_decref(seen);
    return interrupted ? MOAT_EXIT_OK : rc;
}

int cmd_alerts(int argc, char **argv)
{
    const api_mask mask = alert_filters | API_BIT(API_OPT_LIMIT) | API_BIT(API_OPT_FOLLOW);
    struct api_args a;
    char path[API_PATH_MAX];
    json_t *list = NULL;
    int rc = api_args_parse("alerts", mask, 0, 0, argc, argv, &a);
    if (rc || a.help)
        return rc;
    const char *limit = a.opt[API_OPT_LIMIT] ? a.opt[API_OPT_LIMIT] : ALERTS_DEFAULT;
    char *end;
    long show = strtol(limit, &end, 10);
    if (*end || show < 1 || show > 100)
        return cli_usage_error(a.cmd, "--limit: \"%s\" is not 1..100", limit);
    if (a.opt[API_OPT_FOLLOW])
        return follow(&a, (size_t)show);
    rc = alerts_path(&a, limit, path);
    if (!rc)
        rc = api_once(&a, "GET", path, NULL, &list);
    if (rc)
        return rc;
    if (a.format != CLI_FORMAT_TABLE)
        return out_list(a.format, list, alert_cols);
    const json_t *items = json_object_get(list, "items");
    for (size_t i = json_array_size(items); i-- > 0;)
        alert_line(stdout, "", json_array_get(items, i));
    json_decref(list);
    return MOAT_EXIT_OK;
}

/* ---- moat status [CLUSTER] ---------------------------------------------- */

static long long num(const json_t *doc, const char *a, const char *b)
{
    return (long long)json_integer_value(json_object_get(json_object_get(doc, a), b));
}

/* A top list [{LABEL: x, attempts: n}] as "x (n), y (m)". */
static void top_line(const json_t *top, const char *key, const char *title)
{
    const json_t *list = json_object_get(top, key);
    size_t i;
    const json_t *e;
    printf("%-18s", title);
    if (!json_array_size(list))
        printf(" -");
    json_array_foreach(list, i, e)
    {
        const char *k;
        const json_t *v;
        char label[256] = "?";
        json_object_foreach((json_t *)e, k, v)
        {
            if (strcmp(k, "attempts") == 0)
                continue;
            if (json_is_string(v))
                snprintf(label, sizeof(label), "%s", json_string_value(v));
            else if (json_is_integer(v))
                snprintf(label, sizeof(label), "%lld", (long long)json_integer_value(v));
        }
        printf("%s %s (%lld)", i ? "," : "", label,
               (long long)json_integer_value(json_object_get(e, "attempts")));
    }
    printf("\n");
}

static void status_table(const json_t *s)
{
    printf("%-18s %lld total, %lld unprotected\n", "clusters", num(s, "clusters", "total"),
           num(s, "clusters", "unprotected"));
    printf("%-18s %lld in 24 hours, %lld in 30 days, %lld in 180 days\n", "risks (alerts)",
           num(s, "alerts", "last_24h"), num(s, "alerts", "last_30d"),
           num(s, "alerts", "last_180d"));
    printf("%-18s %lld total, %lld enabled, %lld disabled, %lld suggested\n", "rules",
           num(s, "rules", "total"), num(s, "rules", "enabled"), num(s, "rules", "disabled"),
           num(s, "rules", "suggested"));
    const json_t *per = json_object_get(s, "alerts_7d_per_cluster");
    printf("%-18s", "alerts, 7 days");
    if (!json_array_size(per))
        printf(" -");
    for (size_t i = 0; i < json_array_size(per); i++) {
        const json_t *e = json_array_get(per, i);
        printf("%s %s %lld", i ? "," : "", str(e, "cluster"),
               (long long)json_integer_value(json_object_get(e, "alerts")));
    }
    printf("\n");
    const json_t *kinds = json_object_get(s, "alerts_by_kind_30d");
    const char *k;
    const json_t *v;
    const char *sep = " ";
    printf("%-18s", "by kind, 30 days");
    json_object_foreach((json_t *)kinds, k, v)
    {
        if (json_integer_value(v)) {
            printf("%s%s %lld", sep, k, (long long)json_integer_value(v));
            sep = ", ";
        }
    }
    printf("%s\n", sep[0] == ',' ? "" : " -");
    printf("%-18s %lld active\n", "quarantines", num(s, "quarantines", "active"));
    const json_t *top = json_object_get(s, "top");
    top_line(top, "rules", "top rules");
    top_line(top, "sources", "top sources");
    top_line(top, "destinations", "top destinations");
    top_line(top, "ports", "top ports");
    api_print_hourly(s);
    const json_t *newest = json_object_get(s, "newest");
    printf("newest alerts%s\n", json_array_size(newest) ? "" : "      -");
    for (size_t i = 0; i < json_array_size(newest); i++)
        alert_line(stdout, "  ", json_array_get(newest, i));
}

int cmd_status(int argc, char **argv)
{
    struct api_args a;
    char path[API_PATH_MAX] = "/api/v1/status";
    json_t *doc = NULL;
    int rc = api_args_parse("status", 0, 0, 1, argc, argv, &a);
    if (rc || a.help)
        return rc;
    if (a.npos) {
        snprintf(path, sizeof(path), "/api/v1/clusters");
        if (api_path_add(path, sizeof(path), a.pos[0]) < 0 ||
            strlen(path) + sizeof("/status") > sizeof(path))
            return cli_usage_error(a.cmd, "cluster id too long");
        strcat(path, "/status");
    }
    rc = api_once(&a, "GET", path, NULL, &doc);
    if (rc)
        return rc;
    if (a.format != CLI_FORMAT_TABLE)
        return out_doc(a.format, doc);
    if (a.npos)
        printf("%-18s %s\n", "cluster", a.pos[0]);
    status_table(doc);
    json_decref(doc);
    return MOAT_EXIT_OK;
}
