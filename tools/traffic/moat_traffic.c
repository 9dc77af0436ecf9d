/*
 * moat-traffic: the echo server and clients the lab tests send traffic with.
 *
 *   moat-traffic serve [--tcp PORT]... [--udp PORT]... [--bind ADDR]
 *   moat-traffic connect --tcp|--udp ADDR PORT [--timeout-ms N] [--count N]
 *                        [--payload TEXT]
 *   moat-traffic stream --tcp ADDR PORT --interval-ms N --duration-ms N
 *                       [--timeout-ms N]
 *
 * `serve` echoes on every port given at once (one poll loop): each TCP
 * connection gets back what it sends (so lines come back as lines), each UDP
 * datagram is sent back to its sender. It prints `ready` once every socket
 * listens and runs until SIGTERM or SIGINT.
 *
 * `connect` sends the payload (TCP: one line per --count; UDP: one datagram
 * per --count) and waits for each echo. `stream` keeps one TCP connection
 * and sends a line every interval for the duration, each echo awaited for
 * --timeout-ms; when one is not echoed it prints `cut after N ms`, N being
 * when that unanswered line was sent, counted from the start of the stream
 * (the flow was cut between the last echo and then).
 *
 * Clients print one line, `ok` (`ok N` for stream: lines echoed) or
 * `fail: reason`, and exit 0 when echoed, 1 when refused, timed out or not
 * echoed, 2 on usage errors. Addresses are numeric only: nothing is resolved.
 */
#include "moat/version.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_ECHOED = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

#define PORTS_MAX          64
#define CLIENTS_MAX        256
#define CLIENT_BUF         4096
#define PAYLOAD_MAX        1024
#define DEFAULT_TIMEOUT_MS 2000
#define DEFAULT_PAYLOAD    "moat-traffic"

/* Set by SIGTERM/SIGINT: `serve` stops. The only global. */
static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static const char usage_text[] =
    "usage: moat-traffic serve [--tcp PORT]... [--udp PORT]... [--bind ADDR]\n"
    "       moat-traffic connect --tcp|--udp ADDR PORT [--timeout-ms N] [--count N] "
    "[--payload TEXT]\n"
    "       moat-traffic stream --tcp ADDR PORT --interval-ms N --duration-ms N "
    "[--timeout-ms N]\n"
    "       moat-traffic rate --tcp ADDR PORT --duration-ms N [--timeout-ms N]\n"
    "       moat-traffic --version | --help\n";

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "moat-traffic: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage_text);
    return EXIT_USAGE;
}

static bool parse_num(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining(int64_t deadline)
{
    int64_t left = deadline - now_ms();
    return left < 0 ? 0 : (int)left;
}

/* A numeric address and port; 0 or a getaddrinfo error. */
static int resolve(const char *addr, const char *port, int type, struct addrinfo **out)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = type;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | (addr ? 0 : AI_PASSIVE);
    return getaddrinfo(addr, port, &hints, out);
}

static const char *reason_of(int err)
{
    switch (err) {
    case ECONNREFUSED:
        return "connection refused";
    case ETIMEDOUT:
        return "timed out";
    case EHOSTUNREACH:
        return "no route to host";
    case ENETUNREACH:
        return "network unreachable";
    case ECONNRESET:
        return "connection reset";
    case EPIPE:
        return "connection closed";
    default:
        return strerror(err);
    }
}

static int fail(const char *reason)
{
    printf("fail: %s\n", reason);
    return EXIT_FAILED;
}

/* ---------- serve ---------- */

struct client {
    int fd;
    char buf[CLIENT_BUF];
    size_t len, off; /* bytes waiting to be echoed: buf[off..len) */
};

struct server {
    int tcp[PORTS_MAX], udp[PORTS_MAX];
    size_t ntcp, nudp;
    struct client *clients[CLIENTS_MAX];
};

static int listen_on(const char *bind_addr, long port, int type)
{
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%ld", port);
    struct addrinfo *ai = NULL;
    /* Default: IPv6 any with IPv4 mapped (both families); IPv4 any without IPv6. */
    int gai = resolve(bind_addr ? bind_addr : "::", portstr, type, &ai);
    if (gai && !bind_addr)
        gai = resolve("0.0.0.0", portstr, type, &ai);
    if (gai) {
        fprintf(stderr, "moat-traffic: serve: %s: %s\n", bind_addr ? bind_addr : "any",
                gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && !bind_addr && ai->ai_family == AF_INET6) {
        freeaddrinfo(ai);
        ai = NULL;
        if (resolve("0.0.0.0", portstr, type, &ai) == 0)
            fd = socket(ai->ai_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    int one = 1, zero = 0;
    bool ok = fd >= 0;
    if (ok && ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (ok && type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ok = ok && bind(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    ok = ok && (type != SOCK_STREAM || listen(fd, 128) == 0);
    if (!ok) {
        fprintf(stderr, "moat-traffic: serve: %s port %ld: %s\n",
                type == SOCK_STREAM ? "tcp" : "udp", port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    if (ai)
        freeaddrinfo(ai);
    return fd;
}

static void client_close(struct server *s, size_t i)
{
    close(s->clients[i]->fd);
    free(s->clients[i]);
    s->clients[i] = NULL;
}

static void accept_all(struct server *s, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        size_t i = 0;
        while (i < CLIENTS_MAX && s->clients[i])
            i++;
        struct client *c = i < CLIENTS_MAX ? calloc(1, sizeof(*c)) : NULL;
        if (!c) {
            close(fd); /* full: the client sees the connection closed */
            continue;
        }
        c->fd = fd;
        s->clients[i] = c;
    }
}

/* Sends what is pending; false when the connection is done for. */
static bool client_flush(struct client *c)
{
    while (c->off < c->len) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        c->off += (size_t)n;
    }
    c->off = c->len = 0;
    return true;
}

static bool client_read(struct client *c)
{
    ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);
    if (n == 0)
        return false;
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c->len = (size_t)n;
    c->off = 0;
    return client_flush(c);
}

static void udp_echo(int fd)
{
    char buf[65536];
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &plen);
        if (n < 0)
            return;
        sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, plen);
    }
}

static int serve_loop(struct server *s, const sigset_t *waitmask)
{
    struct pollfd pfd[2 * PORTS_MAX + CLIENTS_MAX];
    size_t who[CLIENTS_MAX];
    while (!stop_requested) {
        size_t n = 0, nc = 0;
        for (size_t i = 0; i < s->ntcp; i++)
            pfd[n++] = (struct pollfd){s->tcp[i], POLLIN, 0};
        for (size_t i = 0; i < s->nudp; i++)
            pfd[n++] = (struct pollfd){s->udp[i], POLLIN, 0};
        for (size_t i = 0; i < CLIENTS_MAX; i++) {
            const struct client *c = s->clients[i];
            if (!c)
                continue;
            pfd[n++] = (struct pollfd){c->fd, (short)(c->len > c->off ? POLLOUT : POLLIN), 0};
            who[nc++] = i;
        }
        if (ppoll(pfd, n, NULL, waitmask) < 0) {
            if (errno == EINTR)
                continue;
            perror("moat-traffic: serve: poll");
            return EXIT_FAILED;
        }
        size_t k = 0;
        for (size_t i = 0; i < s->ntcp; i++, k++)
            if (pfd[k].revents)
                accept_all(s, s->tcp[i]);
        for (size_t i = 0; i < s->nudp; i++, k++)
            if (pfd[k].revents)
                udp_echo(s->udp[i]);
        for (size_t j = 0; j < nc; j++, k++) {
            struct client *c = s->clients[who[j]];
            short ev = pfd[k].revents;
            if (!ev)
                continue;
            bool alive = (ev & POLLOUT) ? client_flush(c) : client_read(c);
            if (!alive || ((ev & (POLLERR | POLLNVAL)) && !(ev & POLLIN)))
                client_close(s, who[j]);
        }
    }
    return EXIT_ECHOED;
}

static int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"tcp", required_argument, NULL, 't'},
                                         {"udp", required_argument, NULL, 'u'},
                                         {"bind", required_argument, NULL, 'b'},
                                         {NULL, 0, NULL, 0}};
    long tcp[PORTS_MAX], udp[PORTS_MAX];
    size_t ntcp = 0, nudp = 0;
    const char *bind_addr = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        long port;
        if (c == 'b') {
            bind_addr = optarg;
            continue;
        }
        if (c != 't' && c != 'u')
            return usage("serve: %s: unknown option or missing value", argv[optind - 1]);
        if (!parse_num(optarg, 1, 65535, &port))
            return usage("serve: \"%s\" is not a port 1..65535", optarg);
        if ((c == 't' ? ntcp : nudp) >= PORTS_MAX)
            return usage("serve: at most %d ports of each protocol", PORTS_MAX);
        if (c == 't')
            tcp[ntcp++] = port;
        else
            udp[nudp++] = port;
    }
    if (optind < argc)
        return usage("serve: unexpected argument \"%s\"", argv[optind]);
    if (!ntcp && !nudp)
        return usage("serve: give at least one --tcp or --udp PORT");

    /* Signals are only let in while waiting in ppoll, so none is missed. */
    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGINT);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct server *s = calloc(1, sizeof(*s));
    if (!s) {
        perror("moat-traffic");
        return EXIT_FAILED;
    }
    int rc = EXIT_ECHOED;
    for (size_t i = 0; i < ntcp && rc == EXIT_ECHOED; i++) {
        int fd = listen_on(bind_addr, tcp[i], SOCK_STREAM);
        if (fd < 0)
            rc = EXIT_FAILED;
        else
            s->tcp[s->ntcp++] = fd;
    }
    for (size_t i = 0; i < nudp && rc == EXIT_ECHOED; i++) {
        int fd = listen_on(bind_addr, udp[i], SOCK_DGRAM);
        if (fd < 0)
            rc = EXIT_FAILED;
        else
            s->udp[s->nudp++] = fd;
    }
    if (rc == EXIT_ECHOED) {
        printf("ready\n");
        fflush(stdout);
        rc = serve_loop(s, &waitmask);
    }
    for (size_t i = 0; i < CLIENTS_MAX; i++)
        if (s->clients[i])
            client_close(s, i);
    for (size_t i = 0; i < s->ntcp; i++)
        close(s->tcp[i]);
    for (size_t i = 0; i < s->nudp; i++)
        close(s->udp[i]);
    free(s);
    return rc;
}

/* ---------- clients ---------- */

struct client_args {
    int type; /* SOCK_STREAM or SOCK_DGRAM; 0 = not given */
    const char *addr, *port;
    long timeout_ms, count, interval_ms, duration_ms;
    const char *payload;
};

/* mode: 0 connect, 1 stream, 2 rate (stream options apply to rate too, bar the interval). */
static int parse_client(int argc, char **argv, int mode, struct client_args *a)
{
    bool stream = mode != 0;
    static const struct option opts[] = {{"tcp", no_argument, NULL, 't'},
                                         {"udp", no_argument, NULL, 'u'},
                                         {"timeout-ms", required_argument, NULL, 'T'},
                                         {"count", required_argument, NULL, 'c'},
                                         {"payload", required_argument, NULL, 'p'},
                                         {"interval-ms", required_argument, NULL, 'i'},
                                         {"duration-ms", required_argument, NULL, 'd'},
                                         {NULL, 0, NULL, 0}};
    const char *cmd = mode == 2 ? "rate" : stream ? "stream" : "connect";
    memset(a, 0, sizeof(*a));
    a->timeout_ms = stream ? 1000 : DEFAULT_TIMEOUT_MS;
    a->count = 1;
    a->payload = DEFAULT_PAYLOAD;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't':
        case 'u':
            if (a->type)
                return usage("%s: give one of --tcp and --udp", cmd);
            a->type = c == 't' ? SOCK_STREAM : SOCK_DGRAM;
            break;
        case 'T':
            if (!parse_num(optarg, 1, 3600000, &a->timeout_ms))
                return usage("--timeout-ms: \"%s\" is not 1..3600000", optarg);
            break;
        case 'c':
            if (stream || !parse_num(optarg, 1, 1000000, &a->count))
                return usage("--count: \"%s\" is not 1..1000000 (connect only)", optarg);
            break;
        case 'p':
            if (stream || !*optarg || strlen(optarg) > PAYLOAD_MAX || strchr(optarg, '\n'))
                return usage("--payload: \"%s\" must be 1..1024 bytes without a newline "
                             "(connect only)",
                             optarg);
            a->payload = optarg;
            break;
        case 'i':
        case 'd':
            if (!stream ||
                !parse_num(optarg, 1, 86400000, c == 'i' ? &a->interval_ms : &a->duration_ms))
                return usage("\"%s\": --interval-ms and --duration-ms take 1..86400000 "
                             "(stream only)",
                             optarg);
            break;
        default:
            return usage("%s: unknown option or missing value", argv[optind - 1]);
        }
    }
    if (optind + 2 != argc)
        return usage("%s: needs ADDR and PORT", cmd);
    a->addr = argv[optind];
    a->port = argv[optind + 1];
    long port;
    if (!parse_num(a->port, 1, 65535, &port))
        return usage("\"%s\" is not a port 1..65535", a->port);
    if (!a->type)
        return usage("%s: give --tcp or --udp", cmd);
    if (mode == 1 && (a->type != SOCK_STREAM || !a->interval_ms || !a->duration_ms))
        return usage("%s: needs --tcp, --interval-ms and --duration-ms", cmd);
    if (mode == 2 && (a->type != SOCK_STREAM || !a->duration_ms))
        return usage("%s: needs --tcp and --duration-ms", cmd);
    return 0;
}

/* A socket connected to the target: the fd, or -1 with a reason printed. */
static int connect_to(const struct client_args *a)
{
    struct addrinfo *ai = NULL;
    int gai = resolve(a->addr, a->port, a->type, &ai);
    if (gai) {
        fprintf(stderr, "moat-traffic: \"%s\": not a numeric address (%s)\n", a->addr,
                gai_strerror(gai));
        return -2;
    }
    int fd = socket(ai->ai_family, a->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        fail(strerror(errno));
        return -1;
    }
    int err = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        err = errno;
    freeaddrinfo(ai);
    if (err == EINPROGRESS) {
        struct pollfd p = {fd, POLLOUT, 0};
        int n = poll(&p, 1, (int)a->timeout_ms);
        socklen_t len = sizeof(err);
        if (n == 0)
            err = ETIMEDOUT;
        else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
    }
    if (err) {
        close(fd);
        fail(reason_of(err));
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n >= 0) {
            off += (size_t)n;
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return errno;
        struct pollfd p = {fd, POLLOUT, 0};
        if (poll(&p, 1, remaining(deadline)) == 0)
            return ETIMEDOUT;
    }
    return 0;
}

/* Waits for exactly `want` back on a stream; 0, an errno, or -1 for a wrong echo. */
static int expect_echo(int fd, const char *want, size_t len, int64_t deadline)
{
    char buf[PAYLOAD_MAX + 64];
    size_t got = 0;
    while (got < len) {
        struct pollfd p = {fd, POLLIN, 0};
        int n = poll(&p, 1, remaining(deadline));
        if (n == 0)
            return ETIMEDOUT;
        if (n < 0 && errno != EINTR)
            return errno;
        ssize_t r = recv(fd, buf + got, len - got, 0);
        if (r == 0)
            return EPIPE;
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                continue;
            return errno;
        }
        got += (size_t)r;
        if (memcmp(buf, want, got) != 0)
            return -1;
    }
    return 0;
}

static int echo_reason(int err)
{
    return fail(err < 0 ? "wrong echo" : reason_of(err));
}

static int tcp_connect(const struct client_args *a)
{
    int fd = connect_to(a);
    if (fd < 0)
        return fd == -2 ? EXIT_USAGE : EXIT_FAILED;
    char line[PAYLOAD_MAX + 2];
    size_t len = (size_t)snprintf(line, sizeof(line), "%s\n", a->payload);
    int err = 0;
    for (long i = 0; i < a->count && !err; i++) {
        int64_t deadline = now_ms() + a->timeout_ms;
        err = send_all(fd, line, len, deadline);
        if (!err)
            err = expect_echo(fd, line, len, deadline);
    }
    close(fd);
    if (err)
        return echo_reason(err);
    printf("ok\n");
    return EXIT_ECHOED;
}

static int udp_connect(const struct client_args *a)
{
    int fd = connect_to(a);
    if (fd < 0)
        return fd == -2 ? EXIT_USAGE : EXIT_FAILED;
    size_t len = strlen(a->payload);
    int err = 0;
    for (long i = 0; i < a->count && !err; i++) {
        int64_t deadline = now_ms() + a->timeout_ms;
        if (send(fd, a->payload, len, 0) < 0) {
            err = errno;
            break;
        }
        char buf[PAYLOAD_MAX + 1];
        for (;;) {
            struct pollfd p = {fd, POLLIN, 0};
            int n = poll(&p, 1, remaining(deadline));
            if (n == 0) {
                err = ETIMEDOUT;
                break;
            }
            ssize_t r = recv(fd, buf, sizeof(buf), 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r < 0)
                err = errno; /* ECONNREFUSED: an ICMP port unreachable came back */
            else if ((size_t)r != len || memcmp(buf, a->payload, len) != 0)
                err = -1;
            break;
        }
    }
    close(fd);
    if (err)
        return echo_reason(err);
    printf("ok\n");
    return EXIT_ECHOED;
}

static int cmd_connect(int argc, char **argv)
{
    struct client_args a;
    int rc = parse_client(argc, argv, 0, &a);
    if (rc)
        return rc;
    return a.type == SOCK_STREAM ? tcp_connect(&a) : udp_connect(&a);
}

static int cmd_stream(int argc, char **argv)
{
    struct client_args a;
    int rc = parse_client(argc, argv, 1, &a);
    if (rc)
        return rc;
    int fd = connect_to(&a);
    if (fd < 0)
        return fd == -2 ? EXIT_USAGE : EXIT_FAILED;
    int64_t start = now_ms(), end = start + a.duration_ms, next = start;
    long echoed = 0;
    int err = 0;
    int64_t sent_at = start;
    while (!err && now_ms() < end) {
        int wait = remaining(next);
        if (wait > 0) {
            poll(NULL, 0, wait);
            continue;
        }
        char line[64];
        size_t len = (size_t)snprintf(line, sizeof(line), "moat-traffic %ld\n", echoed + 1);
        sent_at = now_ms();
        int64_t deadline = sent_at + a.timeout_ms;
        err = send_all(fd, line, len, deadline);
        if (!err)
            err = expect_echo(fd, line, len, deadline);
        if (!err)
            echoed++;
        next += a.interval_ms;
    }
    close(fd);
    if (err) {
        printf("cut after %lld ms\n", (long long)(sent_at - start));
        fprintf(stderr, "moat-traffic: stream: line %ld: %s\n", echoed + 1,
                err < 0 ? "wrong echo" : reason_of(err));
        return EXIT_FAILED;
    }
    printf("ok %ld\n", echoed);
    return EXIT_ECHOED;
}

/* rate: new TCP connections (connect, one echoed line, close) for a while; counts them. */
static int cmd_rate(int argc, char **argv)
{
    struct client_args a;
    int rc = parse_client(argc, argv, 2, &a);
    if (rc)
        return rc;
    int64_t start = now_ms(), end = start + a.duration_ms;
    long done = 0, failed = 0;
    char line[] = "moat-traffic rate\n";
    while (now_ms() < end) {
        int fd = connect_to(&a);
        if (fd == -2)
            return EXIT_USAGE;
        int err = fd < 0 ? ETIMEDOUT : 0;
        int64_t deadline = now_ms() + a.timeout_ms;
        if (!err)
            err = send_all(fd, line, sizeof(line) - 1, deadline);
        if (!err)
            err = expect_echo(fd, line, sizeof(line) - 1, deadline);
        if (fd >= 0) {
            /* Close with a reset: no TIME_WAIT on the client, so the ephemeral
             * ports never run out and each run measures the same thing. */
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            close(fd);
        }
        if (err)
            failed++;
        else
            done++;
    }
    double secs = (double)(now_ms() - start) / 1000.0;
    printf("ok %ld connections in %.2f s: %.0f/s, %ld failed\n", done, secs, done / secs, failed);
    return done ? EXIT_ECHOED : EXIT_FAILED;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage("a command is required");
    opterr = 0;
    const char *cmd = argv[1];
    /* getopt sees the command as argv[0]. */
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "connect") == 0)
        return cmd_connect(argc - 1, argv + 1);
    if (strcmp(cmd, "stream") == 0)
        return cmd_stream(argc - 1, argv + 1);
    if (strcmp(cmd, "rate") == 0)
        return cmd_rate(argc - 1, argv + 1);
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        printf("moat-traffic: echo server and clients for the Moat lab (docs/lab.md)\n%s",
               usage_text);
        return EXIT_ECHOED;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("moat-traffic %s\n", MOAT_VERSION);
        return EXIT_ECHOED;
    }
    return usage("unknown command \"%s\"", cmd);
}
