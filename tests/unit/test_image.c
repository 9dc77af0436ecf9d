/*
 * Unit tests for lib/image: image references, their short forms and image
 * patterns (SPEC 2): `nginx:1.27` and `nginx:*` match
 * `docker.io/library/nginx:1.27`, a missing tag reads `:latest`, digests are
 * kept and may be matched, registry hosts (also with a port) may be left out.
 */
#include "testutil.h"

#include "image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST "sha256:4c0fdaa8b6341bfdeca5f18f7837462c80cff90527ee35ef185571e1c327beac"

/* True when normalised `pattern` matches reference `ref` (which must be valid). */
static bool matches(const char *pattern, const char *ref)
{
    struct image_forms f;
    char norm[MOAT_IMAGE_MAX + 16];
    const char *why = NULL;
    if (image_forms(ref, &f) != 0)
        fail_msg("reference \"%s\" rejected", ref);
    if (image_pattern_normalise(pattern, norm, sizeof(norm), &why) != 0)
        fail_msg("pattern \"%s\" rejected: %s", pattern, why);
    bool want = image_forms_match(&f, norm);
    int err;
    char *packed = image_forms_pack(ref, &err); /* what a model keeps: the same answer */
    assert_int_equal(err, 0);
    if (image_packed_match(packed, norm) != want)
        fail_msg("pattern \"%s\" vs reference \"%s\": packed forms disagree", pattern, ref);
    free(packed);
    return want;
}

static void expect(const char *pattern, const char *ref, bool want)
{
    if (matches(pattern, ref) != want)
        fail_msg("pattern \"%s\" vs reference \"%s\": expected %s", pattern, ref,
                 want ? "match" : "no match");
}

static bool has_form(const struct image_forms *f, const char *form)
{
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->form[i], form) == 0)
            return true;
    return false;
}

static void test_forms_docker_hub(void **state)
{
    (void)state;
    struct image_forms f;
    assert_int_equal(image_forms("nginx:1.27", &f), 0);
    assert_string_equal(f.form[0], "docker.io/library/nginx:1.27");
    assert_int_equal(f.count, 3);
    assert_true(has_form(&f, "library/nginx:1.27"));
    assert_true(has_form(&f, "nginx:1.27"));

    assert_int_equal(image_forms("docker.io/library/nginx:1.27", &f), 0);
    assert_string_equal(f.form[0], "docker.io/library/nginx:1.27");
    assert_int_equal(f.count, 3);

    assert_int_equal(image_forms("index.docker.io/library/nginx:1.27", &f), 0);
    assert_string_equal(f.form[0], "docker.io/library/nginx:1.27");

    assert_int_equal(image_forms("nginx", &f), 0);
    assert_string_equal(f.form[0], "docker.io/library/nginx:latest");
    assert_true(has_form(&f, "nginx:latest"));

    /* A Docker Hub user repository keeps its path; only the host goes. */
    assert_int_equal(image_forms("myteam/api:2.1", &f), 0);
    assert_string_equal(f.form[0], "docker.io/myteam/api:2.1");
    assert_int_equal(f.count, 2);
    assert_true(has_form(&f, "myteam/api:2.1"));
}

static void test_forms_other_registries(void **state)
{
    (void)state;
    struct image_forms f;
    assert_int_equal(image_forms("registry.example.com/myteam/api:2.1", &f), 0);
    assert_string_equal(f.form[0], "registry.example.com/myteam/api:2.1");
    assert_int_equal(f.count, 2);
    assert_true(has_form(&f, "myteam/api:2.1"));

    /* A registry that is not Docker Hub keeps a single-component path as is. */
    assert_int_equal(image_forms("quay.io/nginx:1", &f), 0);
    assert_string_equal(f.form[0], "quay.io/nginx:1");
    assert_true(has_form(&f, "nginx:1"));
    assert_false(has_form(&f, "library/nginx:1"));

    assert_int_equal(image_forms("localhost:5000/app:1", &f), 0);
    assert_string_equal(f.form[0], "localhost:5000/app:1");
    assert_true(has_form(&f, "app:1"));

    assert_int_equal(image_forms("localhost:5000/app", &f), 0);
    assert_string_equal(f.form[0], "localhost:5000/app:latest");

    assert_int_equal(image_forms("localhost/app", &f), 0);
    assert_string_equal(f.form[0], "localhost/app:latest");

    assert_int_equal(image_forms("10.0.0.1:5000/team/app:v2", &f), 0);
    assert_string_equal(f.form[0], "10.0.0.1:5000/team/app:v2");
    assert_true(has_form(&f, "team/app:v2"));
}

static void test_forms_digest(void **state)
{
    (void)state;
    struct image_forms f;
    assert_int_equal(image_forms("nginx@" DIGEST, &f), 0);
    assert_string_equal(f.form[0], "docker.io/library/nginx@" DIGEST);
    assert_true(has_form(&f, "nginx@" DIGEST));
    assert_true(has_form(&f, "nginx")); /* the digest may be left out */
    assert_false(has_form(&f, "nginx:latest"));

    assert_int_equal(image_forms("nginx:1.27@" DIGEST, &f), 0);
    assert_string_equal(f.form[0], "docker.io/library/nginx:1.27@" DIGEST);
    assert_true(has_form(&f, "nginx:1.27@" DIGEST));
    assert_true(has_form(&f, "nginx:1.27"));
    assert_true(has_form(&f, "nginx@" DIGEST)); /* the digest names the image; the tag may go */
    assert_true(f.count <= MOAT_IMAGE_FORMS);
}

static void test_invalid_references(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        " ",
        "nginx 1",
        "nginx\t",
        "ngi\nnx",
        "a//b",
        "/nginx",
        "nginx/",
        "nginx:",
        "nginx@",
        ":1.27",
        "@" DIGEST,
        "nginx:1.27:x",
        "registry.example.com/",
        "docker.io/",
        "nginx:1@",
        "a/b:/c",
    };
    struct image_forms f;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (image_forms(bad[i], &f) != -EINVAL)
            fail_msg("reference \"%s\" accepted", bad[i]);
    char longref[MOAT_IMAGE_MAX + 2];
    memset(longref, 'a', sizeof(longref) - 1);
    longref[sizeof(longref) - 1] = '\0';
    assert_int_equal(image_forms(longref, &f), -EINVAL);
    longref[MOAT_IMAGE_MAX - 10] = '\0';
    assert_int_equal(image_forms(longref, &f), 0);
}

static void test_spec_examples(void **state)
{
    (void)state;
    expect("nginx:1.27", "docker.io/library/nginx:1.27", true);
    expect("nginx:*", "docker.io/library/nginx:1.27", true);
    expect("myteam/api:*", "registry.example.com/myteam/api:2.1", true);
    expect("nginx:1.27", "nginx:1.27", true);
    expect("nginx:1.27", "docker.io/library/nginx:1.26", false);
    expect("nginx:*", "docker.io/library/nginx-extra:1.27", false);
    expect("nginx*", "docker.io/library/nginx-extra:1.27", true);
    expect("myteam/api:*", "registry.example.com/otherteam/api:2.1", false);
    expect("api:*", "registry.example.com/myteam/api:2.1", false);
    expect("*/api:*", "registry.example.com/myteam/api:2.1", true);
}

/* Packed forms: the forms of image_forms, in order, then an empty string; bad references refused.
 */
static void test_packed_forms(void **state)
{
    (void)state;
    struct image_forms f;
    int err;
    assert_int_equal(image_forms("registry.example.com/myteam/api:2.1", &f), 0);
    char *packed = image_forms_pack("registry.example.com/myteam/api:2.1", &err);
    assert_int_equal(err, 0);
    const char *s = packed;
    for (size_t i = 0; i < f.count; i++, s += strlen(s) + 1)
        assert_string_equal(s, f.form[i]);
    assert_string_equal(s, "");
    free(packed);
    assert_null(image_forms_pack("bad ref", &err));
    assert_int_equal(err, -EINVAL);
    assert_false(image_packed_match(NULL, "*"));
}

static void test_full_and_partial_forms(void **state)
{
    (void)state;
    expect("docker.io/library/nginx:1.27", "nginx:1.27", true);
    expect("library/nginx:1.27", "nginx:1.27", true);
    expect("docker.io/nginx:1.27", "nginx:1.27", false); /* not a form of the reference */
    expect("registry.example.com/myteam/api:2.1", "registry.example.com/myteam/api:2.1", true);
    expect("registry.example.com/*", "registry.example.com/myteam/api:2.1", true);
    expect("registry.example.com/*", "docker.io/library/nginx:1.27", false);
    expect("docker.io/*", "nginx", true);
    expect("*", "anything/at/all:1", true);
    /* Only Docker Hub drops `library/`. */
    expect("nginx:1", "quay.io/library/nginx:1", false);
    expect("library/nginx:1", "quay.io/library/nginx:1", true);
}

static void test_missing_tag_is_latest(void **state)
{
    (void)state;
    expect("nginx", "nginx", true);
    expect("nginx", "docker.io/library/nginx:latest", true);
    expect("nginx", "nginx:latest", true);
    expect("nginx", "nginx:1.27", false);
    expect("nginx:latest", "nginx", true);
    expect("nginx:latest", "docker.io/library/nginx", true);
    expect("docker.io/library/nginx", "nginx", true);
    expect("myteam/api", "registry.example.com/myteam/api", true);
    expect("myteam/api", "registry.example.com/myteam/api:2.1", false);
    expect("localhost:5000/app", "localhost:5000/app", true);
    expect("localhost:5000/app", "localhost:5000/app:1", false);
    expect("localhost:5000/app:1", "localhost:5000/app:1", true);
    expect("app:1", "localhost:5000/app:1", true);
}

static void test_index_docker_io(void **state)
{
    (void)state;
    expect("nginx:1.27", "index.docker.io/library/nginx:1.27", true);
    expect("docker.io/library/nginx:1.27", "index.docker.io/library/nginx:1.27", true);
    expect("myteam/api:*", "index.docker.io/myteam/api:3", true);
    expect("nginx:1.27", "index.docker.io/nginx:1.27", true);
}

static void test_digest_matching(void **state)
{
    (void)state;
    /* Digest only. */
    expect("nginx@" DIGEST, "nginx@" DIGEST, true);
    expect("docker.io/library/nginx@" DIGEST, "nginx@" DIGEST, true);
    expect("nginx@*", "nginx@" DIGEST, true);
    expect("nginx*", "nginx@" DIGEST, true);
    expect("nginx@sha256:0000", "nginx@" DIGEST, false);
    expect("nginx", "nginx@" DIGEST, false); /* no tag with a digest: not :latest */
    /* Tag and digest: with and without the digest. */
    expect("nginx:1.27", "nginx:1.27@" DIGEST, true);
    expect("nginx:*", "nginx:1.27@" DIGEST, true);
    expect("nginx:1.27@" DIGEST, "nginx:1.27@" DIGEST, true);
    expect("nginx@" DIGEST, "nginx:1.27@" DIGEST, true);
    expect("*@" DIGEST, "registry.example.com/team/app:3@" DIGEST, true);
    expect("nginx:1.26@" DIGEST, "nginx:1.27@" DIGEST, false);
    expect("nginx:1.27@sha256:0000", "nginx:1.27@" DIGEST, false);
    /* A digest pattern never matches a reference without that digest. */
    expect("nginx@" DIGEST, "nginx:1.27", false);
    expect("nginx:1.27@" DIGEST, "nginx:1.27", false);
}

static void test_pattern_normalise(void **state)
{
    (void)state;
    char out[MOAT_IMAGE_MAX + 16];
    const char *why = NULL;
    static const char *const same[] = {"nginx:1.27",
                                       "nginx:*",
                                       "nginx*",
                                       "*",
                                       "nginx@" DIGEST,
                                       "localhost:5000/app:1",
                                       "registry.example.com/*"};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        assert_int_equal(image_pattern_normalise(same[i], out, sizeof(out), &why), 0);
        assert_string_equal(out, same[i]);
    }
    assert_int_equal(image_pattern_normalise("nginx", out, sizeof(out), &why), 0);
    assert_string_equal(out, "nginx:latest");
    assert_int_equal(image_pattern_normalise("myteam/api", out, sizeof(out), &why), 0);
    assert_string_equal(out, "myteam/api:latest");
    assert_int_equal(image_pattern_normalise("localhost:5000/app", out, sizeof(out), &why), 0);
    assert_string_equal(out, "localhost:5000/app:latest");

    assert_int_equal(image_pattern_normalise("", out, sizeof(out), &why), -EINVAL);
    assert_string_equal(why, "must not be empty");
    assert_int_equal(image_pattern_normalise("ngi nx", out, sizeof(out), &why), -EINVAL);
    assert_string_equal(why, "contains a space or control character");
    assert_int_equal(image_pattern_normalise("team/", out, sizeof(out), &why), -EINVAL);
    assert_string_equal(why, "ends with '/'");
    assert_int_equal(image_pattern_normalise("nginx:", out, sizeof(out), &why), -EINVAL);
    assert_string_equal(why, "has an empty tag");
    assert_int_equal(image_pattern_normalise("nginx@", out, sizeof(out), &why), -EINVAL);
    assert_string_equal(why, "has an empty digest");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms_docker_hub),  cmocka_unit_test(test_forms_other_registries),
        cmocka_unit_test(test_forms_digest),      cmocka_unit_test(test_invalid_references),
        cmocka_unit_test(test_spec_examples),     cmocka_unit_test(test_full_and_partial_forms),
        cmocka_unit_test(test_packed_forms),      cmocka_unit_test(test_missing_tag_is_latest),
        cmocka_unit_test(test_index_docker_io),   cmocka_unit_test(test_digest_matching),
        cmocka_unit_test(test_pattern_normalise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
