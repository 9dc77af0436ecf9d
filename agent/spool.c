/* spool: event batches on disk until the server has them (see spool.h). */
#include "spool.h"
#include "mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

struct spool {
    pthread_mutex_t lock;
    char *dir;
    size_t max;
    uint64_t *seqs; /* waiting batches, ascending */
    size_t n, cap;
    uint64_t next; /* sequence of the next batch */
    uint64_t dropped, dropped_events;
};

static void path_of(const struct spool *s, uint64_t seq, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%016" PRIu64 ".json", s->dir, seq);
}

/* Writes `len` bytes to `path` atomically: temporary file, fsync, rename, fsync of the folder. */
static int write_atomic(const char *dir, const char *path, const char *text, size_t len)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int err = 0;
    for (size_t off = 0; !err && off < len;) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno != EINTR)
            err = -errno;
        else if (w > 0)
            off += (size_t)w;
    }
    if (!err && fsync(fd) != 0)
        err = -errno;
    close(fd);
    if (!err && rename(tmp, path) != 0)
        err = -errno;
    if (err) {
        unlink(tmp);
        return err;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* the rename itself survives a power cut */
        close(dfd);
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int push_seq(struct spool *s, uint64_t seq)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        uint64_t *v = moat_reallocarray(s->seqs, cap, sizeof(*v));
        if (!v)
            return -ENOMEM;
        s->seqs = v;
        s->cap = cap;
    }
    s->seqs[s->n++] = seq;
    return 0;
}

static int scan(struct spool *s)
{
    DIR *d = opendir(s->dir);
    if (!d)
        return -errno;
    struct dirent *e;
    int err = 0;
    while (!err && (e = readdir(d))) {
        char *end;
        unsigned long long v = strtoull(e->d_name, &end, 10);
        if (end == e->d_name + 16 && strcmp(end, ".json") == 0) {
            err = push_seq(s, v);
            if (v >= s->next)
                s->next = v + 1;
        } else if (strstr(e->d_name, ".json.tmp")) {
            char p[4200];
            snprintf(p, sizeof(p), "%s/%s", s->dir, e->d_name);
            unlink(p); /* a batch whose write a crash interrupted: never acknowledged */
        }
    }
    closedir(d);
    if (s->n)
        qsort(s->seqs, s->n, sizeof(*s->seqs), cmp_u64);
    return err;
}

static void load_dropped(struct spool *s)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s/dropped", s->dir);
    FILE *f = fopen(p, "r");
    if (!f)
        return;
    if (fscanf(f, "%" SCNu64 " %" SCNu64, &s->dropped, &s->dropped_events) != 2)
        s->dropped = s->dropped_events = 0;
    fclose(f);
}

static void save_dropped(const struct spool *s)
{
    char p[4200], text[64];
    snprintf(p, sizeof(p), "%s/dropped", s->dir);
    int n =
        snprintf(text, sizeof(text), "%" PRIu64 " %" PRIu64 "\n", s->dropped, s->dropped_events);
    write_atomic(s->dir, p, text, (size_t)n);
}

int spool_open(const char *dir, size_t max_batches, struct spool **out)
{
    *out = NULL;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    struct spool *s = moat_calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    s->dir = moat_strdup(dir);
    s->max = max_batches ? max_batches : 1;
    s->next = 1;
    int err = s->dir ? scan(s) : -ENOMEM;
    if (err) {
        spool_close(s);
        return err;
    }
    load_dropped(s);
    *out = s;
    return 0;
}

void spool_close(struct spool *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    free(s->dir);
    free(s->seqs);
    free(s);
}

/* Number of events in the batch file `seq` (0 when unreadable). */
static size_t events_in(const struct spool *s, uint64_t seq)
{
    char p[4200];
    path_of(s, seq, p, sizeof(p));
    json_t *j = json_load_file(p, 0, NULL);
    size_t n = json_array_size(json_object_get(j, "events"));
    json_decref(j);
    return n;
}

static void drop_oldest(struct spool *s)
{
    char p[4200];
    uint64_t seq = s->seqs[0];
    s->dropped_events += events_in(s, seq);
    s->dropped++;
    path_of(s, seq, p, sizeof(p));
    unlink(p);
    memmove(s->seqs, s->seqs + 1, (s->n - 1) * sizeof(*s->seqs));
    s->n--;
    save_dropped(s);
}

int spool_add(struct spool *s, const json_t *events)
{
    unsigned char rnd[16];
    char id[33];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return -EIO;
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    json_t *batch = json_pack("{s:s,s:O}", "batch", id, "events", (json_t *)events);
    char *text = batch ? json_dumps(batch, JSON_COMPACT) : NULL;
    json_decref(batch);
    if (!text)
        return -ENOMEM;
    pthread_mutex_lock(&s->lock);
    while (s->n >= s->max)
        drop_oldest(s);
    char p[4200];
    uint64_t seq = s->next;
    path_of(s, seq, p, sizeof(p));
    int err = write_atomic(s->dir, p, text, strlen(text));
    if (!err)
        err = push_seq(s, seq);
    if (!err)
        s->next++;
    pthread_mutex_unlock(&s->lock);
    free(text);
    return err;
}

int spool_oldest(struct spool *s, char **text, uint64_t *seq)
{
    *text = NULL;
    pthread_mutex_lock(&s->lock);
    int err = -ENOENT;
    while (s->n && err == -ENOENT) {
        char p[4200];
        *seq = s->seqs[0];
        path_of(s, *seq, p, sizeof(p));
        FILE *f = fopen(p, "r");
        if (!f) { /* removed behind our back: forget it */
            memmove(s->seqs, s->seqs + 1, (s->n - 1) * sizeof(*s->seqs));
            s->n--;
            continue;
        }
        struct stat st;
        err = fstat(fileno(f), &st) == 0 ? 0 : -errno;
        char *buf = err ? NULL : malloc((size_t)st.st_size + 1);
        if (!err && !buf)
            err = -ENOMEM;
        if (!err && fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
            err = -EIO;
        fclose(f);
        if (err) {
            free(buf);
            break;
        }
        buf[st.st_size] = '\0';
        *text = buf;
    }
    pthread_mutex_unlock(&s->lock);
    return err;
}

int spool_done(struct spool *s, uint64_t seq)
{
    pthread_mutex_lock(&s->lock);
    char p[4200];
    path_of(s, seq, p, sizeof(p));
    int err = unlink(p) == 0 || errno == ENOENT ? 0 : -errno;
    for (size_t i = 0; i < s->n; i++)
        if (s->seqs[i] == seq) {
            memmove(s->seqs + i, s->seqs + i + 1, (s->n - i - 1) * sizeof(*s->seqs));
            s->n--;
            break;
        }
    pthread_mutex_unlock(&s->lock);
    return err;
}

struct spool_stats spool_stats(struct spool *s)
{
    pthread_mutex_lock(&s->lock);
    struct spool_stats st = {s->n, s->dropped, s->dropped_events};
    pthread_mutex_unlock(&s->lock);
    return st;
}
