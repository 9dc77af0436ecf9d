/* testutil: helpers for unit tests (see testutil.h). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

const char *testutil_write_file(const char *name, const char *text)
{
    static char dir[64];
    static char path[512];
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/moat-unit.%d", (int)getpid());
        if (mkdir(dir, 0700) != 0 && access(dir, W_OK) != 0) {
            perror(dir);
            abort();
        }
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        abort();
    }
    fputs(text, f);
    fclose(f);
    return path;
}

json_t *testutil_parse_json(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j)
        print_message("parse: %s at %d\n", e.text, e.position);
    assert_non_null(j);
    return j;
}
