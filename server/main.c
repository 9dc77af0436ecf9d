/*
 * moat-server: the control plane (SPEC §9, §10).
 *
 *   moat-server --listen ADDR:PORT --data DIR     serve the REST API
 *   moat-server token create --data DIR --role admin|viewer
 *   moat-server routes                            print the route table
 *
 * Exit status: 0 ok, 1 could not complete (store, network), 2 usage.
 */
#include "auth.h"
#include "http.h"
#include "server.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static int usage(void)
{
    fprintf(stderr, "usage: moat-server --listen ADDR:PORT --data DIR\n"
                    "       moat-server token create --data DIR --role admin|viewer\n"
                    "       moat-server routes\n");
    return EXIT_USAGE;
}

/* Opens the store in `dir`, creating the folder when missing. */
static int open_store(struct store *st, const char *dir)
{
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
    const char *listen, *data, *role;
};

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {{"listen", required_argument, NULL, 'l'},
                                          {"data", required_argument, NULL, 'd'},
                                          {"role", required_argument, NULL, 'r'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        if (c == 'l')
            o->listen = optarg;
        else if (c == 'd')
            o->data = optarg;
        else if (c == 'r')
            o->role = optarg;
        else
            return -EINVAL;
    }
    return 0;
}

static int token_create(const struct opts *o)
{
    if (!o->data || auth_role_parse(o->role) == ROLE_NONE)
        return usage();
    struct store st = {0};
    char token[AUTH_TOKEN_LEN + 1], hash[AUTH_HASH_LEN + 1];
    int err = open_store(&st, o->data);
    if (err)
        return EXIT_FAIL;
    err = auth_token_new(token);
    if (!err)
        err = auth_hash(token, hash);
    if (!err)
        err = st.ops->token_add(&st, hash, o->role);
    st.ops->close(&st);
    if (err) {
        fprintf(stderr, "moat-server: token create: %s\n", strerror(-err));
        return EXIT_FAIL;
    }
    printf("%s\n", token);
    return EXIT_OK;
}

static int serve(const struct opts *o)
{
    if (!o->data || !o->listen)
        return usage();
    struct server srv = {0};
    size_t nroutes;
    routes_table(&nroutes);
    int err = http_block_signals();
    if (!err)
        err = metrics_init(&srv.metrics, nroutes);
    if (err) {
        fprintf(stderr, "moat-server: %s\n", strerror(-err));
        return EXIT_FAIL;
    }
    if (open_store(&srv.store, o->data) < 0) {
        metrics_free(&srv.metrics);
        return EXIT_FAIL;
    }
    err = http_serve(&srv, o->listen);
    if (err == -EINVAL)
        fprintf(stderr, "moat-server: --listen '%s': not ADDR:PORT\n", o->listen);
    else if (err)
        fprintf(stderr, "moat-server: cannot listen on %s\n", o->listen);
    srv.store.ops->close(&srv.store);
    metrics_free(&srv.metrics);
    return err == -EINVAL ? EXIT_USAGE : err ? EXIT_FAIL : EXIT_OK;
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    if (argc >= 2 && strcmp(argv[1], "routes") == 0) {
        routes_print();
        return EXIT_OK;
    }
    bool token = argc >= 3 && strcmp(argv[1], "token") == 0 && strcmp(argv[2], "create") == 0;
    int skip = token ? 2 : 0;
    if (parse(argc - skip, argv + skip, &o) < 0 || optind != argc - skip)
        return usage();
    return token ? token_create(&o) : serve(&o);
}
