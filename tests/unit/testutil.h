/* testutil: small helpers shared by the cmocka unit tests. */
#ifndef MOAT_TESTUTIL_H
#define MOAT_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the headers above first. */
#include <cmocka.h>
#include <jansson.h>

/*
 * Writes `text` to a new file named `name` inside a per-process temporary
 * folder and returns its path (static storage, valid until the next call).
 */
const char *testutil_write_file(const char *name, const char *text);

/* The JSON text `s` parsed (the test fails, saying where, when it does not parse). */
json_t *testutil_parse_json(const char *s);

#endif
