/*
 * moat-server: the control plane (SPEC §9, §10).
 *
 *   moat-server --listen ADDR:PORT --data DIR|--database URL [--database-password-file F]
 *               [--heartbeat-interval S]
 *               [--retention-days D] [--min-agent-version V] [--data-table FILE]
 *               [--tls-cert FILE --tls-key FILE]  serve the REST API (HTTPS with TLS)
 *               [--alerts-out FILE|-]             and append alerts as JSON lines
 *               [--audit-out FILE|-]              and audit records as JSON lines
 *               [--threads N] [--max-connections N] [--max-connections-per-source N]
 *               [--header-timeout S] [--body-timeout S] [--auth-failures N/S]
 *               [--metrics-public]
 *   moat-server token create --data DIR|--database URL --role admin|viewer
 *   moat-server token list --data DIR|--database URL
 *   moat-server migrate --from-data DIR --database URL   copy SQLite into PostgreSQL
 *   moat-server routes                            print the route table
 *
 * Exit status: 0 ok, 1 could not complete (store, network), 2 usage (including a
 * TLS certificate or key file that cannot be read or holds no PEM block, and an
 * --alerts-out or --audit-out file that cannot be opened for appending).
 */
#include "audit.h"
#include "auth.h"
#include "fleet.h"
#include "http.h"
#include "jsonmem.h"
#include "migrate.h"
#include "peers.h"
#include "server.h"
#include "watch.h"
#include "writer.h"

#include "compat.h"
#include "diag.h"
#include "moat/version.h"
#include "throttle.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TABLE_FILE "kernel-support.tsv"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: moat-server --listen ADDR:PORT --data DIR|--database URL\n"
    "         [--database-password-file FILE] [--heartbeat-interval S]\n"
    "         [--retention-days D] [--min-agent-version V] [--data-table FILE]\n"
    "         [--tls-cert FILE --tls-key FILE] [--alerts-out FILE|-] [--audit-out FILE|-]\n"
    "         [--threads N] [--max-connections N] [--max-connections-per-source N]\n"
    "         [--header-timeout S] [--body-timeout S] [--auth-failures N/S]\n"
    "         [--metrics-public]\n"
    "       moat-server token create --data DIR|--database URL --role admin|viewer\n"
    "       moat-server token list --data DIR|--database URL\n"
    "       moat-server migrate --from-data DIR --database URL\n"
    "       moat-server routes\n"
    "       moat-server --version | --help\n";

static int usage(void)
{
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

/* --help: the usage and what each option does (the man page is made from it). */
static int help(void)
{
    printf("%s\nmoat-server is Moat's control plane: the REST API under /api/v1, the agents'\n"
           "endpoints, the alert store, the audit trail, Prometheus /metrics and the web\n"
           "console at / (see moat-server(8)).\n\n"
           "Options:\n"
           "  --listen ADDR:PORT        address to serve on (127.0.0.1:8080, [::1]:8080)\n"
           "  --data DIR                the SQLite store's folder (created when missing)\n"
           "  --database URL            keep the state in PostgreSQL instead: a libpq URI\n"
           "                            (postgresql://user@host/db?sslmode=verify-full) or\n"
           "                            conninfo; several servers may share one database\n"
           "  --database-password-file FILE\n"
           "                            the database password (first line of FILE); else\n"
           "                            the URL's, PGPASSFILE's or ~/.pgpass\n"
           "  --from-data DIR           migrate: the SQLite folder to copy into --database\n"
           "  --heartbeat-interval S    seconds between agent heartbeats (default 10)\n"
           "  --retention-days D        days alerts and audit records are kept (default 180)\n"
           "  --min-agent-version V     agents below V are reported outdated\n"
           "  --data-table FILE         the kernel-support table (default: installed copy)\n"
           "  --tls-cert FILE           serve HTTPS with this PEM certificate chain...\n"
           "  --tls-key FILE            ...and this PEM private key\n"
           "  --alerts-out FILE|-       also append every alert as a JSON line (- stdout)\n"
           "  --audit-out FILE|-        also append every audit record as a JSON line\n"
           "  --threads N               worker threads, each with its own epoll set (default 4)\n"
           "  --max-connections N       connections in all (default 32768, cut to what the\n"
           "                            file-descriptor limit allows)\n"
           "  --max-connections-per-source N\n"
           "                            connections from one client address (default 256)\n"
           "  --header-timeout S        seconds for a request's headers, and for an idle\n"
           "                            keep-alive connection (default 15)\n"
           "  --body-timeout S          seconds for a body once its headers are in (default 30)\n"
           "  --auth-failures N/S       failed authentications a client address may make at\n"
           "                            once, then one per S seconds; beyond: 429 (default 30/1)\n"
           "  --metrics-public          GET /metrics without a token (default: a viewer token)\n"
           "  --role admin|viewer       token create: the new token's role\n"
           "  --version                 print the version and exit\n"
           "  --help                    print this help and exit\n"
           "\nExit status: 0 ok, 1 could not complete (store, network), 2 usage.\n",
           usage_text);
    return EXIT_OK;
}

#define PASSWORD_MAX 1024

/* The first line of --database-password-file into out[PASSWORD_MAX + 1]. 0 or -errno. */
static int password_read(const char *path, char *out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int err = -errno;
        fprintf(stderr, "moat-server: --database-password-file '%s': %s\n", path, strerror(-err));
        return err;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & 077))
        fprintf(stderr,
                "moat-server: --database-password-file '%s': readable by others (chmod 600)\n",
                path);
    size_t n = fread(out, 1, PASSWORD_MAX + 1, f);
    int err = ferror(f) ? -EIO : 0;
    fclose(f);
    if (!err && n > PASSWORD_MAX)
        err = -EFBIG;
    if (!err) {
        out[n] = '\0';
        out[strcspn(out, "\r\n")] = '\0';
        if (!*out || strlen(out) != strcspn(out, "\r\n"))
            err = -EINVAL;
    }
    if (err)
        fprintf(stderr, "moat-server: --database-password-file '%s': %s\n", path,
                err == -EINVAL  ? "empty (the password is its first line)"
                : err == -EFBIG ? "longer than 1024 bytes"
                                : strerror(-err));
    return err;
}

/*
 * Opens the store: PostgreSQL at `database` (with `password`, may be NULL)
 * when given, else SQLite in folder `dir`, creating the folder when missing.
 */
static int open_store(struct store *st, const char *dir, const char *database, const char *password)
{
    if (database) {
        st->ops = &store_pg_ops;
        st->password = password;
        int err = st->ops->open(st, database);
        if (err) /* the URL may hold a password: not printed */
            fprintf(stderr, "moat-server: --database: cannot open the PostgreSQL store: %s\n",
                    err == -EIO ? "see above" : strerror(-err));
        return err;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "moat-server: data folder '%s': %s\n", dir, strerror(errno));
        return -errno;
    }
    st->ops = &store_sqlite_ops;
    int err = st->ops->open(st, dir);
    if (err)
        fprintf(stderr, "moat-server: store '%s': cannot open: %s\n", dir, strerror(-err));
    return err;
}

struct opts {
    const char *database, *password_file, *from_data;
    char password[PASSWORD_MAX + 1];
    const char *listen, *data, *role, *table, *min_version, *tls_cert, *tls_key, *alerts_out,
        *audit_out;
    long interval, retention, threads, max_conns, max_source, header_timeout, body_timeout;
    double auth_burst, auth_rate;
    bool metrics_public;
};

/* --auth-failures N/S: N failures at once, then one per S seconds. */
static bool parse_rate(const char *s, double *burst, double *rate)
{
    char *end;
    long n = strtol(s, &end, 10);
    if (n < 1 || n > 1000000 || *end != '/')
        return false;
    char *end2;
    double secs = strtod(end + 1, &end2);
    if (!(secs > 0) || secs > 86400 || *end2)
        return false;
    *burst = (double)n;
    *rate = 1.0 / secs;
    return true;
}

/* A positive integer option value; -1 when it is not one. */
static long positive(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v > 0 && v <= 100000 ? v : -1;
}

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {
        {"listen", required_argument, NULL, 'l'},
        {"data", required_argument, NULL, 'd'},
        {"database", required_argument, NULL, 'D'},
        {"database-password-file", required_argument, NULL, 'W'},
        {"from-data", required_argument, NULL, 'f'},
        {"role", required_argument, NULL, 'r'},
        {"heartbeat-interval", required_argument, NULL, 'i'},
        {"retention-days", required_argument, NULL, 't'},
        {"min-agent-version", required_argument, NULL, 'm'},
        {"data-table", required_argument, NULL, 'k'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'y'},
        {"alerts-out", required_argument, NULL, 'a'},
        {"audit-out", required_argument, NULL, 'A'},
        {"threads", required_argument, NULL, 'T'},
        {"max-connections", required_argument, NULL, 'C'},
        {"max-connections-per-source", required_argument, NULL, 'P'},
        {"header-timeout", required_argument, NULL, 'H'},
        {"body-timeout", required_argument, NULL, 'B'},
        {"auth-failures", required_argument, NULL, 'F'},
        {"metrics-public", no_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        if (c == 'l')
            o->listen = optarg;
        else if (c == 'd')
            o->data = optarg;
        else if (c == 'D')
            o->database = optarg;
        else if (c == 'W')
            o->password_file = optarg;
        else if (c == 'f')
            o->from_data = optarg;
        else if (c == 'r')
            o->role = optarg;
        else if (c == 'i' && (o->interval = positive(optarg)) > 0)
            continue;
        else if (c == 't' && (o->retention = positive(optarg)) > 0)
            continue;
        else if (c == 'm')
            o->min_version = optarg;
        else if (c == 'k')
            o->table = optarg;
        else if (c == 'c')
            o->tls_cert = optarg;
        else if (c == 'y')
            o->tls_key = optarg;
        else if (c == 'a')
            o->alerts_out = optarg;
        else if (c == 'A')
            o->audit_out = optarg;
        else if (c == 'T' && (o->threads = positive(optarg)) > 0 && o->threads <= 64)
            continue;
        else if (c == 'C' && (o->max_conns = positive(optarg)) > 0)
            continue;
        else if (c == 'P' && (o->max_source = positive(optarg)) > 0)
            continue;
        else if (c == 'H' && (o->header_timeout = positive(optarg)) > 0)
            continue;
        else if (c == 'B' && (o->body_timeout = positive(optarg)) > 0)
            continue;
        else if (c == 'F' && parse_rate(optarg, &o->auth_burst, &o->auth_rate))
            continue;
        else if (c == 'M')
            o->metrics_public = true;
        else
            return -EINVAL;
    }
    return 0;
}

/* Exactly one of --data and --database (true), else false after saying so. */
static bool one_store(const struct opts *o)
{
    if (!o->data == !o->database) {
        fprintf(stderr, "moat-server: give one of --data DIR and --database URL\n");
        return false;
    }
    if (o->password_file && !o->database) {
        fprintf(stderr, "moat-server: --database-password-file goes with --database\n");
        return false;
    }
    return true;
}

static int store_of(const struct opts *o, struct store *st)
{
    return open_store(st, o->data, o->database, o->password_file ? o->password : NULL);
}

static int token_create(const struct opts *o)
{
    if (!one_store(o) || auth_role_parse(o->role) == ROLE_NONE)
        return usage();
    struct store st = {0};
    char token[AUTH_TOKEN_LEN + 1], hash[AUTH_HASH_LEN + 1];
    int err = store_of(o, &st);
    if (err)
        return EXIT_FAIL;
    int64_t id = 0;
    err = auth_token_new(token);
    if (!err)
        err = auth_hash(token, hash);
    if (!err)
        err = st.ops->begin(&st);
    if (!err)
        err = st.ops->token_add(&st, hash, o->role, 0, &id);
    json_t *after = err ? NULL : json_pack("{s:s}", "role", o->role);
    if (!err && !after)
        err = -ENOMEM;
    if (!err) {
        char name[32];
        snprintf(name, sizeof(name), "%lld", (long long)id);
        err = audit_local(&st, "create", "token", name, id, after);
    }
    json_decref(after);
    if (!err)
        err = st.ops->commit(&st);
    else
        st.ops->rollback(&st);
    st.ops->close(&st);
    if (err) {
        fprintf(stderr, "moat-server: token create: %s\n", strerror(-err));
        return EXIT_FAIL;
    }
    printf("%s\n", token);
    return EXIT_OK;
}

/* `token list`: id, role and creation time of every admin and viewer token (never a secret). */
static int token_list(const struct opts *o)
{
    if (!one_store(o))
        return usage();
    struct store st = {0};
    if (store_of(o, &st))
        return EXIT_FAIL;
    json_t *items = NULL;
    int err = st.ops->token_list(&st, &items);
    st.ops->close(&st);
    if (err) {
        fprintf(stderr, "moat-server: token list: %s\n", strerror(-err));
        return EXIT_FAIL;
    }
    printf("%-6s %-8s %s\n", "ID", "ROLE", "CREATED");
    size_t i;
    const json_t *t;
    json_array_foreach(items, i, t)
        printf("%-6lld %-8s %s\n", (long long)json_integer_value(json_object_get(t, "id")),
               jstr(t, "role"), jstr(t, "created"));
    json_decref(items);
    return EXIT_OK;
}

/* `migrate`: an SQLite folder copied into an empty PostgreSQL database. */
static int migrate(const struct opts *o)
{
    if (!o->from_data || !o->database || o->data)
        return usage();
    struct stat sb;
    char db[PATH_MAX + 16];
    snprintf(db, sizeof(db), "%s/moat.db", o->from_data);
    if (stat(db, &sb) < 0) { /* never make an empty one to copy from */
        fprintf(stderr, "moat-server: migrate: --from-data '%s': no moat.db there: %s\n",
                o->from_data, strerror(errno));
        return EXIT_FAIL;
    }
    struct store from = {0}, to = {0};
    if (open_store(&from, o->from_data, NULL, NULL))
        return EXIT_FAIL;
    int err = store_of(o, &to);
    if (!err) {
        err = store_migrate(&from, &to, stdout);
        to.ops->close(&to);
    }
    from.ops->close(&from);
    if (err == -ENOTEMPTY)
        fprintf(stderr, "moat-server: migrate: --database: not empty: nothing copied (migrate "
                        "into a new database)\n");
    else if (err == -EPROTO)
        fprintf(stderr, "moat-server: migrate: the counts differ (above)\n");
    else if (err)
        fprintf(stderr, "moat-server: migrate: %s: nothing copied\n", strerror(-err));
    else
        printf("migrate: done; serve with --database\n");
    return err ? EXIT_FAIL : EXIT_OK;
}

/*
 * The kernel-support table: --data-table FILE, else the first that exists of
 * ../../data/, ../data/, ../share/moat/ beside the executable, then
 * /usr/share/moat/. NULL (nodes are then never certified) when none is found;
 * a table that does not parse stops the server (-EINVAL).
 */
static int load_table(const char *given, struct compat_table **out)
{
    static const char *const beside[] = {"/../../data/", "/../data/", "/../share/moat/"};
    char exe[PATH_MAX], path[PATH_MAX + 64];
    *out = NULL;
    const char *found = given;
    ssize_t len = given ? 0 : readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash = len > 0 ? (exe[len] = '\0', strrchr(exe, '/')) : NULL;
    if (slash)
        *slash = '\0';
    for (size_t i = 0; !found && slash && i < 3; i++) {
        snprintf(path, sizeof(path), "%s%s%s", exe, beside[i], TABLE_FILE);
        if (access(path, R_OK) == 0)
            found = path;
    }
    if (!found && access("/usr/share/moat/" TABLE_FILE, R_OK) == 0)
        found = "/usr/share/moat/" TABLE_FILE;
    if (!found) {
        fprintf(stderr, "moat-server: %s not found; nodes will not be certified\n", TABLE_FILE);
        return 0;
    }
    struct moat_diags d;
    diags_init(&d);
    int err = compat_table_load(out, found, &d);
    if (err)
        fprintf(stderr, "moat-server: kernel-support table '%s': %s\n", found,
                err == -EINVAL ? "does not parse" : strerror(-err));
    diags_clear(&d);
    return err;
}

#define PEM_MAX (1u << 20) /* a certificate chain or key file larger than this is refused */

/*
 * The text of PEM file `path` (--`what`) into *out (caller frees). Returns 0,
 * or -errno / -EINVAL (too large, or no "-----BEGIN" in it) after printing why.
 */
static int pem_read(const char *what, const char *path, char **out)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        int err = -errno;
        fprintf(stderr, "moat-server: --%s '%s': %s\n", what, path, strerror(-err));
        return err;
    }
    char *buf = malloc(PEM_MAX + 1);
    size_t n = buf ? fread(buf, 1, PEM_MAX + 1, f) : 0;
    int err = !buf ? -ENOMEM : ferror(f) ? -EIO : n > PEM_MAX ? -EFBIG : 0;
    fclose(f);
    if (!err) {
        buf[n] = '\0';
        if (strlen(buf) != n || !strstr(buf, "-----BEGIN "))
            err = -EINVAL;
    }
    if (err) {
        fprintf(stderr, "moat-server: --%s '%s': %s\n", what, path,
                err == -EINVAL ? "not a PEM file" : strerror(-err));
        free(buf);
        return err;
    }
    *out = buf;
    return 0;
}

/* --alerts-out, --audit-out: "-" is stdout, else a file opened for appending (created 0600). */
static int lines_open(const char *what, const char *path, FILE **out)
{
    if (strcmp(path, "-") == 0) {
        *out = stdout;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    *out = fd < 0 ? NULL : fdopen(fd, "a");
    if (!*out) {
        int err = -errno;
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "moat-server: --%s '%s': %s\n", what, path, strerror(-err));
        return err;
    }
    return 0;
}

static void lines_close(const char *what, FILE *f)
{
    if (f && f != stdout && fclose(f) != 0)
        fprintf(stderr, "moat-server: --%s: %s\n", what, strerror(errno));
}

static int sync_init(struct server *srv)
{
    if (pthread_mutex_init(&srv->throttle_lock, NULL) != 0)
        return -ENOMEM;
    if (pthread_mutex_init(&srv->cache_lock, NULL) != 0) {
        pthread_mutex_destroy(&srv->throttle_lock);
        return -ENOMEM;
    }
    return 0;
}

/* Everything but the store that serving needs: threads, the fleet's index, the throttle,
 * the change feed. */
static int start_parts(struct server *srv)
{
    int err = throttle_new(srv->opts.auth_burst, srv->opts.auth_rate, 4096, &srv->throttle);
    if (!err)
        err = changes_init(srv);
    if (!err)
        err = auth_cache_new(&srv->auth_cache);
    if (!err)
        err = fleet_load(srv);
    if (!err)
        err = watch_start(srv);
    if (!err)
        err = writer_start(srv);
    if (!err)
        err = peers_start(srv);
    return err;
}

static void stop_parts(struct server *srv)
{
    peers_stop(srv); /* its thread uses the fleet, the watch and the caches */
    writer_stop(srv);
    watch_stop(srv);
    fleet_free(srv->fleet);
    srv->fleet = NULL;
    throttle_free(srv->throttle);
    srv->throttle = NULL;
    auth_cache_free(srv->auth_cache);
    srv->auth_cache = NULL;
}

static int serve_on(struct server *srv, const struct opts *o)
{
    int err = alerts_expire(srv);
    if (!err)
        err = start_parts(srv);
    if (!err)
        err = http_serve(srv, o->listen);
    if (err == -EINVAL)
        fprintf(stderr, "moat-server: --listen '%s': not ADDR:PORT\n", o->listen);
    else if (err == -EPROTONOSUPPORT)
        fprintf(stderr, "moat-server: --tls-cert: this libmicrohttpd was built without TLS\n");
    else if (err == -ENOSYS)
        fprintf(stderr, "moat-server: this libmicrohttpd was built without epoll\n");
    else if (err && o->tls_cert)
        fprintf(stderr,
                "moat-server: cannot serve HTTPS on %s (port taken, or the certificate "
                "'%s' and key '%s' do not load or do not match)\n",
                o->listen, o->tls_cert, o->tls_key);
    else if (err)
        fprintf(stderr, "moat-server: cannot serve on %s: %s\n", o->listen, strerror(-err));
    stop_parts(srv);
    return err == -EINVAL ? EXIT_USAGE : err ? EXIT_FAIL : EXIT_OK;
}

static int serve(const struct opts *o)
{
    if (!one_store(o) || !o->listen || !o->tls_cert != !o->tls_key)
        return usage();
    char *cert = NULL, *key = NULL;
    if (o->tls_cert && (pem_read("tls-cert", o->tls_cert, &cert) < 0 ||
                        pem_read("tls-key", o->tls_key, &key) < 0)) {
        free(cert);
        return EXIT_USAGE;
    }
    FILE *alerts_out = NULL, *audit_out = NULL;
    if ((o->alerts_out && lines_open("alerts-out", o->alerts_out, &alerts_out) < 0) ||
        (o->audit_out && lines_open("audit-out", o->audit_out, &audit_out) < 0)) {
        lines_close("alerts-out", alerts_out);
        free(cert);
        free(key);
        return EXIT_USAGE;
    }
    struct compat_table *table = NULL;
    if (load_table(o->table, &table) < 0) {
        lines_close("alerts-out", alerts_out);
        lines_close("audit-out", audit_out);
        free(cert);
        free(key);
        return EXIT_FAIL;
    }
    struct server srv = {
        .opts = {.heartbeat_interval = o->interval ? (int)o->interval : 10,
                 .retention_days = o->retention ? (int)o->retention : 180,
                 .min_agent_version = o->min_version ? o->min_version : "0",
                 .compat = table,
                 .tls_cert = cert,
                 .tls_key = key,
                 .threads = o->threads ? (unsigned)o->threads : 4,
                 .max_conns = o->max_conns ? (unsigned)o->max_conns : 0, /* 0: the default */
                 .max_conns_source = o->max_source ? (unsigned)o->max_source : 256,
                 .header_timeout = o->header_timeout ? (unsigned)o->header_timeout : 15,
                 .body_timeout = o->body_timeout ? (unsigned)o->body_timeout : 30,
                 .auth_burst = o->auth_burst > 0 ? o->auth_burst : 30,
                 .auth_rate = o->auth_rate > 0 ? o->auth_rate : 1,
                 .metrics_public = o->metrics_public},
        .alerts_out = alerts_out,
        .audit_out = audit_out};
    int rc = EXIT_FAIL;
    size_t nroutes;
    routes_table(&nroutes);
    json_object_seed(0); /* jansson's hash seed, before any thread (jansson: thread safety) */
    int err = sync_init(&srv);
    if (!err)
        err = http_block_signals();
    if (!err)
        err = metrics_init(&srv.metrics, nroutes);
    if (err)
        fprintf(stderr, "moat-server: %s\n", strerror(-err));
    else if (store_of(o, &srv.store) == 0) {
        rc = serve_on(&srv, o);
        srv.store.ops->close(&srv.store);
    }
    metrics_free(&srv.metrics);
    agents_cache_free(&srv);
    detect_cache_free(&srv);
    if (!err) {
        pthread_mutex_destroy(&srv.throttle_lock);
        pthread_mutex_destroy(&srv.cache_lock);
    }
    lines_close("alerts-out", alerts_out);
    lines_close("audit-out", audit_out);
    compat_table_free(table);
    free(cert);
    free(key);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    if (jsonmem_init() < 0)
        fprintf(stderr, "moat-server: jsonmem: %s (JSON values use malloc)\n", strerror(ENOMEM));
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return help();
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("moat-server %s\n", MOAT_VERSION);
        return EXIT_OK;
    }
    if (argc >= 2 && strcmp(argv[1], "routes") == 0) {
        routes_print();
        return EXIT_OK;
    }
    bool token = argc >= 3 && strcmp(argv[1], "token") == 0 && strcmp(argv[2], "create") == 0;
    bool list = argc >= 3 && strcmp(argv[1], "token") == 0 && strcmp(argv[2], "list") == 0;
    bool move = argc >= 2 && strcmp(argv[1], "migrate") == 0;
    int skip = token || list ? 2 : move ? 1 : 0;
    if (parse(argc - skip, argv + skip, &o) < 0 || optind != argc - skip)
        return usage();
    if (!move && o.from_data)
        return usage();
    if (o.password_file && password_read(o.password_file, o.password) < 0)
        return EXIT_USAGE;
    return move ? migrate(&o) : token ? token_create(&o) : list ? token_list(&o) : serve(&o);
}
