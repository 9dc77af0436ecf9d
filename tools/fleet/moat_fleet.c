/*
 * moat-fleet: a fleet of simulated agents for moat-server's fleet test and
 * benchmark — one process, one epoll loop, no thread per agent.
 *
 *   moat-fleet --port P --cluster C --join-token T --agents N
 *              [--admin-token A --change PATH --rounds R] [--reads N]
 *              [--heartbeats-per-s H] [--wait S] [--hold S] [--prefix NAME]
 *              [--metrics] [--pause FILE] [--register-only --tokens FILE]
 *
 * It registers N nodes (64 registrations at a time), then holds one policy
 * long-poll per node, each on its own connection from 127.1.X.Y (100 agents
 * per source address, so that the server's per-source limit is not what is
 * measured), re-polling at once with the revision it got, as moatd does.
 * With --admin-token and --change it then runs R rounds: PATCH PATH (a rule,
 * {"priority": ...}) and measure, per agent, the time from sending the
 * PATCH to receiving a policy answer of a newer revision. With --reads it
 * sends N admin reads (GET /api/v1/clusters/C/rules?limit=50), one after
 * another, while the long-polls are held, and measures each. Heartbeats
 * (--heartbeats-per-s) go over 16 keep-alive connections meanwhile.
 *
 * With --register-only it registers the N nodes, writes their credentials
 * to --tokens FILE (one a line) and ends.
 *
 * With --metrics it reads the server's gauges (long-polls waiting, open
 * connections) while the polls are held; with --pause FILE it then writes
 * FILE and waits (serving the fleet, at most --hold s) until FILE is removed,
 * so that a script can look at the server meanwhile.
 *
 * Every wait is bounded (registration, establishing the polls: --hold s;
 * each round: 30 s). Prints one JSON object: what it did and measured.
 * Exit status 0 when every agent registered, held its poll and got every
 * change; 1 otherwise; 2 for usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REG_PARALLEL   64
#define AGENTS_PER_SRC 100
#define HB_CONNS       16
#define ROUND_LIMIT_S  30.0
#define BUF_MAX        (8u << 20) /* an answer larger than this is an error */

enum cstate { C_IDLE, C_CONNECTING, C_SENDING, C_READING };

/* One connection and the request on it. */
struct conn {
    int fd;
    enum cstate st;
    int agent; /* the agent it belongs to, or -1 */
    char *out;
    size_t outlen, outoff;
    char *in;
    size_t inlen, incap;
    double sent_at;
    int kind; /* what the request is: K_* */
};

enum { K_REGISTER, K_POLL, K_HEARTBEAT, K_ADMIN };

struct agent {
    char token[80];
    long long revision; /* newest received */
    struct conn poll;
    double got_at; /* when a revision above `want` arrived (this round), or 0 */
    bool polling;
};

struct fleet {
    int ep;
    int port;
    const char *cluster, *join, *admin, *change, *prefix;
    int n, rounds, reads, wait_s;
    bool metrics, register_only;
    const char *pause, *tokens;
    double hb_rate, hold_s;
    struct agent *ag;
    int registered, reg_next, reg_inflight, reg_failed;
    long long want; /* revision a round waits for */
    double round_start;
    int errors;
    char last_error[200];
    struct conn reg[REG_PARALLEL];
    struct conn hb[HB_CONNS];
    int hb_next;
    long long hb_sent, hb_ok;
    struct conn admin_conn;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void note_error(struct fleet *f, const char *fmt, const char *what)
{
    f->errors++;
    snprintf(f->last_error, sizeof(f->last_error), fmt, what);
}

/* The source address of agent i: 127.1.X.Y, AGENTS_PER_SRC agents each. */
static void source_of(int i, struct sockaddr_in *a, int base)
{
    int s = i / AGENTS_PER_SRC;
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl((127u << 24) | ((unsigned)base << 16) | ((unsigned)(s / 250) << 8) |
                               (unsigned)(s % 250 + 1));
}

static int conn_open(struct fleet *f, struct conn *c, int src_index, int base)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    struct sockaddr_in src, dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    source_of(src_index, &src, base);
    int one = 1;
    setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
        (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS)) {
        int err = -errno;
        close(c->fd);
        c->fd = -1;
        return err;
    }
    c->st = C_CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    return epoll_ctl(f->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0 ? -errno : 0;
}

static void conn_close(struct fleet *f, struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(f->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->st = C_IDLE;
    c->inlen = 0;
}

/* Queues a request on c: METHOD PATH with `token` and `body` (may be NULL). */
static int conn_request(struct fleet *f, struct conn *c, int kind, const char *method,
                        const char *path, const char *token, const char *body)
{
    size_t blen = body ? strlen(body) : 0;
    free(c->out);
    c->out = malloc(512 + strlen(path) + blen);
    if (!c->out)
        return -ENOMEM;
    int n = sprintf(c->out, "%s %s HTTP/1.1\r\nHost: moat\r\n", method, path);
    if (token)
        n += sprintf(c->out + n, "Authorization: Bearer %s\r\n", token);
    if (body)
        n += sprintf(c->out + n, "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    n += sprintf(c->out + n, "\r\n");
    if (body)
        memcpy(c->out + n, body, blen);
    c->outlen = (size_t)n + blen;
    c->outoff = 0;
    c->inlen = 0;
    c->kind = kind;
    c->sent_at = now_s();
    if (c->st == C_IDLE) {
        c->st = C_SENDING;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
        epoll_ctl(f->ep, EPOLL_CTL_MOD, c->fd, &ev);
    } else if (c->st != C_CONNECTING) {
        c->st = C_SENDING;
    }
    (void)f;
    return 0;
}

/* A complete answer in c->in: its status, body and body length; 0 when not complete yet. */
static int answer_of(struct conn *c, const char **body, size_t *blen)
{
    if (c->inlen < 12)
        return 0;
    c->in[c->inlen] = '\0';
    char *end = strstr(c->in, "\r\n\r\n");
    if (!end)
        return 0;
    int status = atoi(c->in + 9);
    size_t len = 0;
    for (char *h = strstr(c->in, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n")) {
        if (strncasecmp(h + 2, "Content-Length:", 15) == 0)
            len = strtoul(h + 17, NULL, 10);
    }
    if (c->inlen < (size_t)(end + 4 - c->in) + len)
        return 0;
    *body = end + 4;
    *blen = len;
    return status;
}

/* "key":"value" or "key":number out of a JSON text, into out[n]; false when absent. */
static bool field(const char *text, const char *key, char *out, size_t n)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(text, pat);
    if (!p)
        return false;
    p += strlen(pat);
    if (*p == '"')
        p++;
    size_t i = 0;
    while (p[i] && p[i] != '"' && p[i] != ',' && p[i] != '}' && i + 1 < n) {
        out[i] = p[i];
        i++;
    }
    out[i] = '\0';
    return i > 0;
}

static void start_poll(struct fleet *f, struct agent *a)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/agents/policy?revision=%lld&wait=%d", a->revision,
             f->wait_s);
    conn_request(f, &a->poll, K_POLL, "GET", path, a->token, NULL);
    a->polling = true;
}

static void start_register(struct fleet *f, struct conn *c, int i)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"cluster\":\"%s\",\"node\":\"%s-%d\",\"join_token\":\"%s\",\"os\":\"Debian "
             "12\",\"kernel\":\"6.1.0-13-amd64\",\"agent_version\":\"0.1.0\"}",
             f->cluster, f->prefix, i, f->join);
    c->agent = i;
    conn_request(f, c, K_REGISTER, "POST", "/api/v1/agents/register", NULL, body);
}

/* An answer arrived on c. */
static void answered(struct fleet *f, struct conn *c, int status, const char *body)
{
    char v[128];
    if (c->kind == K_REGISTER) {
        f->reg_inflight--;
        if (status == 201 && field(body, "token", v, sizeof(v))) {
            snprintf(f->ag[c->agent].token, sizeof(f->ag[c->agent].token), "%s", v);
            f->registered++;
        } else {
            f->reg_failed++;
            note_error(f, "register: HTTP %s", status ? "answer" : "none");
        }
        return;
    }
    if (c->kind == K_POLL) {
        struct agent *a = &f->ag[c->agent];
        a->polling = false;
        if (status == 200 && field(body, "revision", v, sizeof(v))) {
            long long rev = atoll(v);
            if (rev > a->revision)
                a->revision = rev;
            if (f->want && rev >= f->want && !a->got_at)
                a->got_at = now_s();
        } else if (status != 304) {
            char what[32];
            snprintf(what, sizeof(what), "%d", status);
            note_error(f, "poll: HTTP %s", what);
        }
        start_poll(f, a);
        return;
    }
    if (c->kind == K_HEARTBEAT) {
        f->hb_ok += status == 200;
        return;
    }
}

static void conn_ready(struct fleet *f, struct conn *c, uint32_t events)
{
    if (c->st == C_IDLE && (events & (EPOLLERR | EPOLLHUP | EPOLLIN))) {
        conn_close(f, c); /* an idle keep-alive connection the server closed: made anew */
        return;
    }
    if (events & (EPOLLERR | EPOLLHUP) && c->st != C_READING) {
        note_error(f, "connection: %s", "closed");
        conn_close(f, c);
        return;
    }
    if (c->st == C_CONNECTING && (events & EPOLLOUT))
        c->st = c->outlen ? C_SENDING : C_IDLE;
    while (c->st == C_SENDING && c->outoff < c->outlen) {
        ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w <= 0) {
            note_error(f, "send: %s", strerror(errno));
            conn_close(f, c);
            return;
        }
        c->outoff += (size_t)w;
        if (c->outoff == c->outlen)
            c->st = C_READING;
    }
    if (c->st != C_READING)
        return;
    for (;;) {
        if (c->incap - c->inlen < 65537) {
            size_t cap = c->incap ? c->incap * 2 : 65536 * 2;
            char *b = cap <= BUF_MAX ? realloc(c->in, cap) : NULL;
            if (!b) {
                note_error(f, "read: %s", "answer too large");
                conn_close(f, c);
                return;
            }
            c->in = b;
            c->incap = cap;
        }
        ssize_t r = recv(c->fd, c->in + c->inlen, c->incap - c->inlen - 1, 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (r <= 0) {
            note_error(f, "read: %s", r == 0 ? "closed by the server" : strerror(errno));
            conn_close(f, c);
            return;
        }
        c->inlen += (size_t)r;
    }
    const char *body;
    size_t blen;
    int status = answer_of(c, &body, &blen);
    if (!status)
        return;
    c->st = C_IDLE;
    answered(f, c, status, body);
}

/* Runs the loop until `done(f)` or `limit` seconds pass; false on timeout. */
static bool loop_until(struct fleet *f, bool (*done)(struct fleet *), double limit)
{
    struct epoll_event evs[512];
    double end = now_s() + limit, next_hb = now_s();
    while (!done(f)) {
        double t = now_s();
        if (t >= end)
            return false;
        if (f->hb_rate > 0 && f->registered == f->n && t >= next_hb) {
            struct conn *c = &f->hb[f->hb_next];
            f->hb_next = (f->hb_next + 1) % HB_CONNS;
            if (c->fd >= 0 && c->st == C_IDLE) {
                int a = (int)(f->hb_sent % f->n);
                conn_request(f, c, K_HEARTBEAT, "POST", "/api/v1/agents/heartbeat", f->ag[a].token,
                             "{\"datapath\":{\"state\":\"enforcing\",\"reason\":\"\"}}");
                f->hb_sent++;
            }
            next_hb = t + 1.0 / f->hb_rate;
        }
        int n = epoll_wait(f->ep, evs, 512, 5);
        for (int i = 0; i < n; i++)
            conn_ready(f, evs[i].data.ptr, evs[i].events);
    }
    return true;
}

static bool all_registered(struct fleet *f)
{
    while (f->reg_inflight < REG_PARALLEL && f->reg_next < f->n) {
        struct conn *pool = f->reg;
        struct conn *c = NULL;
        for (int i = 0; i < REG_PARALLEL && !c; i++)
            if (pool[i].fd < 0 || pool[i].st == C_IDLE)
                c = &pool[i];
        if (!c)
            break;
        if (c->fd < 0 && conn_open(f, c, (int)(c - pool) * AGENTS_PER_SRC, 2) < 0) {
            note_error(f, "connect: %s", strerror(errno));
            f->reg_failed++;
            f->reg_next++;
            continue;
        }
        start_register(f, c, f->reg_next++);
        f->reg_inflight++;
    }
    return f->registered + f->reg_failed == f->n;
}

static bool none(struct fleet *f)
{
    (void)f;
    return false;
}

static bool paused(struct fleet *f)
{
    return access(f->pause, F_OK) != 0;
}

/* Every agent got its first answer and waits in a long-poll. */
static bool all_holding(struct fleet *f)
{
    for (int i = 0; i < f->n; i++)
        if (f->ag[i].revision == 0 && f->ag[i].poll.fd >= 0)
            return false;
    return true;
}

static bool round_done(struct fleet *f)
{
    for (int i = 0; i < f->n; i++)
        if (!f->ag[i].got_at)
            return false;
    return true;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* p50, p99, max of v[0..n) (sorts v) into JSON text. */
static void percentiles(double *v, int n, char *out, size_t size)
{
    if (n == 0) {
        snprintf(out, size, "{\"n\":0}");
        return;
    }
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    snprintf(out, size, "{\"n\":%d,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f}", n,
             v[n / 2] * 1e3, v[(int)((double)n * 0.99) < n ? (int)((double)n * 0.99) : n - 1] * 1e3,
             v[n - 1] * 1e3);
}

/* One blocking-style request on the admin connection (the loop keeps serving the fleet). */
static int admin_request(struct fleet *f, const char *method, const char *path, const char *body,
                         double *took)
{
    struct conn *c = &f->admin_conn;
    if (c->fd < 0 && conn_open(f, c, 0, 3) < 0)
        return -1;
    conn_request(f, c, K_ADMIN, method, path, f->admin, body);
    double start = now_s();
    struct epoll_event evs[512];
    while (now_s() - start < 30) {
        if (c->fd < 0)
            return -1;
        int n = epoll_wait(f->ep, evs, 512, 5);
        for (int i = 0; i < n; i++)
            conn_ready(f, evs[i].data.ptr, evs[i].events);
        const char *b;
        size_t bl;
        int status = c->st == C_IDLE ? answer_of(c, &b, &bl) : 0;
        if (status) {
            *took = now_s() - start;
            return status;
        }
    }
    return -1;
}

static int usage(void)
{
    fprintf(stderr, "usage: moat-fleet --port P --cluster C --join-token T --agents N\n"
                    "         [--admin-token A --change PATH --rounds R] [--reads N]\n"
                    "         [--heartbeats-per-s H] [--wait S] [--hold S] [--prefix NAME]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct fleet f = {.wait_s = 55, .hold_s = 120, .prefix = "sim", .rounds = 1};
    static const struct option longs[] = {{"port", 1, NULL, 'p'},
                                          {"cluster", 1, NULL, 'c'},
                                          {"join-token", 1, NULL, 'j'},
                                          {"agents", 1, NULL, 'n'},
                                          {"admin-token", 1, NULL, 'a'},
                                          {"change", 1, NULL, 'x'},
                                          {"rounds", 1, NULL, 'r'},
                                          {"reads", 1, NULL, 'R'},
                                          {"heartbeats-per-s", 1, NULL, 'h'},
                                          {"wait", 1, NULL, 'w'},
                                          {"hold", 1, NULL, 'H'},
                                          {"prefix", 1, NULL, 'P'},
                                          {"metrics", 0, NULL, 'm'},
                                          {"pause", 1, NULL, 'z'},
                                          {"register-only", 0, NULL, 'O'},
                                          {"tokens", 1, NULL, 't'},
                                          {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        if (o == 'p')
            f.port = atoi(optarg);
        else if (o == 'c')
            f.cluster = optarg;
        else if (o == 'j')
            f.join = optarg;
        else if (o == 'n')
            f.n = atoi(optarg);
        else if (o == 'a')
            f.admin = optarg;
        else if (o == 'x')
            f.change = optarg;
        else if (o == 'r')
            f.rounds = atoi(optarg);
        else if (o == 'R')
            f.reads = atoi(optarg);
        else if (o == 'h')
            f.hb_rate = atof(optarg);
        else if (o == 'w')
            f.wait_s = atoi(optarg);
        else if (o == 'H')
            f.hold_s = atof(optarg);
        else if (o == 'P')
            f.prefix = optarg;
        else if (o == 'm')
            f.metrics = true;
        else if (o == 'z')
            f.pause = optarg;
        else if (o == 'O')
            f.register_only = true;
        else if (o == 't')
            f.tokens = optarg;
        else
            return usage();
    }
    if (!f.port || !f.cluster || !f.join || f.n < 1 || (f.change && !f.admin) ||
        (f.register_only && !f.tokens))
        return usage();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    f.ep = epoll_create1(EPOLL_CLOEXEC);
    f.ag = calloc((size_t)f.n, sizeof(*f.ag));
    if (f.ep < 0 || !f.ag) {
        free(f.ag);
        return 1;
    }
    f.admin_conn.fd = -1;
    for (int i = 0; i < REG_PARALLEL; i++)
        f.reg[i].fd = -1;
    for (int i = 0; i < HB_CONNS; i++) {
        f.hb[i].fd = -1;
        f.hb[i].agent = -1;
    }
    double t0 = now_s();
    bool ok = loop_until(&f, all_registered, f.hold_s);
    double reg_s = now_s() - t0;
    for (int i = 0; i < REG_PARALLEL; i++)
        conn_close(&f, &f.reg[i]);
    if (f.register_only) {
        FILE *out = fopen(f.tokens, "w");
        for (int i = 0; out && i < f.n; i++)
            fprintf(out, "%s\n", f.ag[i].token);
        if (out)
            fclose(out);
        printf("{\"agents\":%d,\"registered\":%d,\"register_s\":%.2f,\"errors\":%d}\n", f.n,
               f.registered, reg_s, f.errors);
        free(f.ag);
        return ok && out && f.registered == f.n ? 0 : 1;
    }
    /* the long-polls: the first answers at once (revision 0), then every agent waits */
    for (int i = 0; ok && i < f.n; i++) {
        f.ag[i].poll.fd = -1;
        f.ag[i].poll.agent = i;
        if (!f.ag[i].token[0] || conn_open(&f, &f.ag[i].poll, i, 1) < 0) {
            note_error(&f, "poll connect: %s", strerror(errno));
            ok = false;
            continue;
        }
        start_poll(&f, &f.ag[i]);
    }
    for (int i = 0; i < HB_CONNS && f.hb_rate > 0; i++)
        conn_open(&f, &f.hb[i], i * AGENTS_PER_SRC, 4); /* idle once connected */
    /* every poll answered once (revision 0 -> current) and sent again: then they wait */
    double t1 = now_s();
    ok = loop_until(&f, all_holding, f.hold_s) && ok;
    double hold_s = now_s() - t1;
    loop_until(&f, none, 1);
    int holding = 0;
    for (int i = 0; i < f.n; i++)
        holding += f.ag[i].revision > 0 && f.ag[i].poll.fd >= 0;
    double *lat = calloc((size_t)(f.n > f.reads ? f.n : f.reads) + 1, sizeof(double));
    char reads_json[200] = "{\"n\":0}", rounds_json[4096] = "[";
    int missing_total = 0;
    if (f.reads && f.admin && lat) {
        char path[256];
        int m = 0;
        snprintf(path, sizeof(path), "/api/v1/clusters/%s/rules?limit=50", f.cluster);
        for (int i = 0; i < f.reads; i++) {
            double took;
            if (admin_request(&f, "GET", path, NULL, &took) == 200)
                lat[m++] = took;
            else
                note_error(&f, "admin read: %s", "failed");
        }
        percentiles(lat, m, reads_json, sizeof(reads_json));
    }
    for (int r = 0; f.change && lat && r < f.rounds; r++) {
        long long top = 0;
        for (int i = 0; i < f.n; i++) {
            top = f.ag[i].revision > top ? f.ag[i].revision : top;
            f.ag[i].got_at = 0;
        }
        f.want = top + 1;
        char body[64];
        snprintf(body, sizeof(body), "{\"priority\":%d}", 100 + r % 800);
        f.round_start = now_s();
        double took;
        int st = admin_request(&f, "PATCH", f.change, body, &took);
        bool all = st == 200 && loop_until(&f, round_done, ROUND_LIMIT_S);
        int m = 0, missing = 0;
        for (int i = 0; i < f.n; i++) {
            if (f.ag[i].got_at)
                lat[m++] = f.ag[i].got_at - f.round_start;
            else
                missing++;
        }
        missing_total += missing;
        char one[256];
        percentiles(lat, m, one, sizeof(one));
        snprintf(rounds_json + strlen(rounds_json), sizeof(rounds_json) - strlen(rounds_json),
                 "%s{\"round\":%d,\"patch_status\":%d,\"patch_ms\":%.1f,\"all\":%s,\"missing\":%d,"
                 "\"propagation\":%s}",
                 r ? "," : "", r + 1, st, took * 1e3, all ? "true" : "false", missing, one);
        loop_until(&f, none, 1); /* the re-polls settle */
    }
    strcat(rounds_json, "]");
    long long polls = -1, conns = -1;
    if (f.metrics && f.admin) {
        double took;
        if (admin_request(&f, "GET", "/metrics", NULL, &took) == 200) {
            const char *b;
            size_t bl;
            answer_of(&f.admin_conn, &b, &bl);
            const char *p = strstr(b, "\nmoat_long_polls ");
            const char *q = strstr(b, "\nmoat_http_connections ");
            polls = p ? atoll(p + 17) : -1;
            conns = q ? atoll(q + 23) : -1;
        }
    }
    if (f.pause) {
        FILE *pf = fopen(f.pause, "w");
        if (pf)
            fclose(pf);
        loop_until(&f, paused, f.hold_s);
    }
    printf("{\"agents\":%d,\"registered\":%d,\"register_s\":%.2f,\"hold_s\":%.2f,\"holding\":%d,"
           "\"heartbeats_sent\":%lld,\"heartbeats_ok\":%lld,\"admin_reads\":%s,\"rounds\":%s,"
           "\"server_long_polls\":%lld,\"server_connections\":%lld,\"errors\":%d,"
           "\"last_error\":\"%s\"}\n",
           f.n, f.registered, reg_s, hold_s, holding, f.hb_sent, f.hb_ok, reads_json, rounds_json,
           polls, conns, f.errors, f.last_error);
    free(lat);
    free(f.ag);
    return ok && f.registered == f.n && holding == f.n && missing_total == 0 ? 0 : 1;
}
