/*
 * nodelock: one moatd per node, and the record of the last one (nodelock.h).
 */
#include "nodelock.h"

#include "mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NETNS_DIR "/run/netns"
#define TRIES     20 /* 10 ms apart: rides over a `moatd status` peeking at the lock */

struct nodelock {
    int fd;
    char path[512];
};

void nodelock_path(const char *node, char *buf, size_t n)
{
    snprintf(buf, n, NODELOCK_DIR "/moatd-%s.lock", node);
}

void nodelock_netns_self(char *name, size_t n, unsigned long long *ino)
{
    struct stat self, st;
    name[0] = '\0';
    *ino = 0;
    if (stat("/proc/self/ns/net", &self) != 0)
        return;
    *ino = (unsigned long long)self.st_ino;
    DIR *d = opendir(NETNS_DIR);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char p[512];
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), NETNS_DIR "/%s", e->d_name);
        if (stat(p, &st) == 0 && st.st_ino == self.st_ino && st.st_dev == self.st_dev) {
            snprintf(name, n, "%s", e->d_name);
            break;
        }
    }
    if (d)
        closedir(d);
}

bool nodelock_netns_gone(const struct nodelock_info *info)
{
    struct stat st;
    char p[512];
    if (!info->netns[0])
        return false;
    snprintf(p, sizeof(p), NETNS_DIR "/%s", info->netns);
    return stat(p, &st) != 0 || (unsigned long long)st.st_ino != info->netns_ino;
}

/* Parses "pid N\nnetns NAME\nnetns_ino N\n"; unknown lines are skipped. */
static void read_info(int fd, struct nodelock_info *info)
{
    char buf[1024];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    for (char *line = buf, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (strncmp(line, "pid ", 4) == 0)
            info->pid = strtol(line + 4, NULL, 10);
        else if (strncmp(line, "netns ", 6) == 0)
            snprintf(info->netns, sizeof(info->netns), "%s", line + 6);
        else if (strncmp(line, "netns_ino ", 10) == 0)
            info->netns_ino = strtoull(line + 10, NULL, 10);
    }
}

static void pause_ms(long ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
    nanosleep(&ts, NULL);
}

int nodelock_acquire(const char *node, struct nodelock **out, struct nodelock_info *prev)
{
    struct nodelock_info scratch;
    if (!prev)
        prev = &scratch;
    *out = NULL;
    struct nodelock *lk = moat_calloc(1, sizeof(*lk));
    if (!lk)
        return -ENOMEM;
    nodelock_path(node, lk->path, sizeof(lk->path));
    if (mkdir(NODELOCK_DIR, 0755) != 0 && errno != EEXIST) {
        free(lk);
        return -errno;
    }
    int err = -EBUSY;
    for (int i = 0; i < TRIES; i++) {
        memset(prev, 0, sizeof(*prev));
        int fd = open(lk->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            err = -errno;
            break;
        }
        prev->exists = true;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            err = errno == EWOULDBLOCK ? -EBUSY : -errno;
            read_info(fd, prev);
            prev->held = true;
            close(fd);
            if (err != -EBUSY)
                break;
            pause_ms(10);
            continue;
        }
        /* Locked; but if `moatd remove` deleted the file meanwhile, this is a
         * lock on nothing: try again with the file that is there now. */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(lk->path, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            read_info(fd, prev);
            prev->exists = prev->pid != 0 || prev->netns_ino != 0;
            lk->fd = fd;
            *out = lk;
            return 0;
        }
        close(fd);
        err = -EAGAIN;
    }
    free(lk);
    return err;
}

int nodelock_record(struct nodelock *lk, const char *netns_name)
{
    char name[256];
    unsigned long long ino;
    nodelock_netns_self(name, sizeof(name), &ino);
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "pid %ld\nnetns %s\nnetns_ino %llu\n", (long)getpid(),
                     netns_name ? netns_name : name, ino);
    /* Write, then cut: a reader never sees an empty file. */
    if (pwrite(lk->fd, buf, (size_t)n, 0) != n || ftruncate(lk->fd, n) != 0)
        return -errno;
    return 0;
}

int nodelock_unlink(struct nodelock *lk)
{
    return unlink(lk->path) != 0 && errno != ENOENT ? -errno : 0;
}

void nodelock_release(struct nodelock *lk)
{
    if (!lk)
        return;
    close(lk->fd);
    free(lk);
}

int nodelock_probe(const char *node, struct nodelock_info *info)
{
    char path[512];
    memset(info, 0, sizeof(*info));
    nodelock_path(node, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    info->exists = true;
    /* A shared lock for a moment: refused while an agent holds its exclusive one. */
    if (flock(fd, LOCK_SH | LOCK_NB) != 0)
        info->held = errno == EWOULDBLOCK;
    read_info(fd, info);
    close(fd); /* drops the shared lock if it was taken */
    return 0;
}
