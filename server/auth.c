/* auth: bearer tokens, hashed with SHA-256 (see auth.h). */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
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
    if (!err)
        err = st->ops->token_find(st, hash, &t);
    if (!err && strcmp(t.role, "agent") == 0)
        err = t.node_id ? agent_of(st, t.node_id, rq) : -ENOENT;
    else if (!err) {
        rq->role = auth_role_parse(t.role);
        rq->token_id = t.id;
    }
    return err == -ENOENT ? 0 : err;
}
