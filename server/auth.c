/* auth: bearer tokens, hashed with SHA-256 (see auth.h). */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int auth_token_new(char *out)
{
    unsigned char raw[32];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = read(fd, raw + got, sizeof(raw) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? -errno : -EIO;
            close(fd);
            return err;
        }
        got += (size_t)n;
    }
    close(fd);
    memcpy(out, "moat_", 5);
    hex(raw, sizeof(raw), out + 5);
    return 0;
}

int auth_hash(const char *token, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, token, strlen(token)) == 1 &&
             EVP_DigestFinal_ex(ctx, md, &n) == 1 && n == AUTH_HASH_LEN / 2;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -EIO;
    hex(md, n, out);
    return 0;
}

enum role auth_role_parse(const char *name)
{
    if (name && strcmp(name, "admin") == 0)
        return ROLE_ADMIN;
    if (name && strcmp(name, "viewer") == 0)
        return ROLE_VIEWER;
    return ROLE_NONE;
}

/*
 * Known tokens, by hash: what one store lookup found, kept so that a busy
 * fleet's requests (a re-poll per agent after every change) do not each
 * read the tokens table and the node record. An entry counts only while the
 * server's auth generation is the one it was made in: every committed write
 * that can take a credential away (a node or cluster deleted) moves the
 * generation on (writer.c). Tokens that are not known are not kept: each
 * wrong token costs one indexed lookup, and failures are throttled.
 */
#define AUTH_CACHE_SLOTS 8192

struct auth_entry {
    char hash[AUTH_HASH_LEN + 1];
    uint64_t gen;
    enum role role;
    int64_t token_id, node_id;
    char cluster[SERVER_NAME_MAX + 1], node[SERVER_NAME_MAX + 1];
};

struct auth_cache {
    pthread_mutex_t lock;
    struct auth_entry e[AUTH_CACHE_SLOTS];
};

int auth_cache_new(struct auth_cache **out)
{
    *out = calloc(1, sizeof(**out));
    if (!*out)
        return -ENOMEM;
    if (pthread_mutex_init(&(*out)->lock, NULL) != 0) {
        free(*out);
        *out = NULL;
        return -ENOMEM;
    }
    return 0;
}

void auth_cache_free(struct auth_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* The slot of a hash: its first 8 hex digits (SHA-256 spreads them evenly). */
static struct auth_entry *slot_of(struct auth_cache *c, const char *hash)
{
    uint32_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v * 16 + (uint32_t)(hash[i] <= '9' ? hash[i] - '0' : hash[i] - 'a' + 10);
    return &c->e[v % AUTH_CACHE_SLOTS];
}

/* The cached role of `hash` into rq: true when it was there and current. */
static bool cache_get(struct server *srv, const char *hash, struct req *rq)
{
    struct auth_cache *c = srv->auth_cache;
    if (!c)
        return false;
    uint64_t gen = __atomic_load_n(&srv->auth_gen, __ATOMIC_ACQUIRE);
    pthread_mutex_lock(&c->lock);
    struct auth_entry *e = slot_of(c, hash);
    bool hit = e->gen == gen && strcmp(e->hash, hash) == 0;
    if (hit) {
        rq->role = e->role;
        rq->token_id = e->token_id;
        rq->node_id = e->node_id;
        memcpy(rq->agent_cluster, e->cluster, sizeof(e->cluster));
        memcpy(rq->agent_node, e->node, sizeof(e->node));
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

static void cache_put(struct server *srv, const char *hash, const struct req *rq, uint64_t gen)
{
    struct auth_cache *c = srv->auth_cache;
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    struct auth_entry *e = slot_of(c, hash);
    memcpy(e->hash, hash, sizeof(e->hash));
    e->gen = gen;
    e->role = rq->role;
    e->token_id = rq->token_id;
    e->node_id = rq->node_id;
    memcpy(e->cluster, rq->agent_cluster, sizeof(e->cluster));
    memcpy(e->node, rq->agent_node, sizeof(e->node));
    pthread_mutex_unlock(&c->lock);
}

/* A node credential: its node record's cluster and name into rq. 0, -ENOENT or a store error. */
static int agent_of(struct store *st, int64_t node_id, struct req *rq)
{
    json_t *node = NULL;
    char *cluster = NULL;
    int err = st->ops->get(st, STORE_NODE, node_id, &node, &cluster);
    if (!err) {
        rq->role = ROLE_AGENT;
        rq->node_id = node_id;
        snprintf(rq->agent_cluster, sizeof(rq->agent_cluster), "%s", cluster ? cluster : "");
        snprintf(rq->agent_node, sizeof(rq->agent_node), "%s", jstr(node, "name"));
    }
    json_decref(node);
    free(cluster);
    return err;
}

int auth_role(struct store *st, const char *header, struct req *rq)
{
    rq->role = ROLE_NONE;
    /* the scheme is case-insensitive (RFC 9110 11.1) */
    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return 0;
    const char *token = header + 7;
    if (strlen(token) != AUTH_TOKEN_LEN)
        return 0;
    char hash[AUTH_HASH_LEN + 1];
    struct store_token t;
    int err = auth_hash(token, hash);
    if (err)
        return err;
    if (cache_get(rq->srv, hash, rq))
        return 0;
    /* the generation before the lookup: a revocation committed meanwhile makes the entry stale */
    uint64_t gen = __atomic_load_n(&rq->srv->auth_gen, __ATOMIC_ACQUIRE);
    err = st->ops->token_find(st, hash, &t);
    if (!err && strcmp(t.role, "agent") == 0)
        err = t.node_id ? agent_of(st, t.node_id, rq) : -ENOENT;
    else if (!err) {
        rq->role = auth_role_parse(t.role);
        rq->token_id = t.id;
    }
    if (!err && rq->role != ROLE_NONE)
        cache_put(rq->srv, hash, rq, gen);
    return err == -ENOENT ? 0 : err;
}
