/*
 * test_amqp_url.c - the pure helpers of core/amqp.c: AMQP URL parsing (with
 * the default vhost and errors that never show the password) and reading a
 * string out of a headers table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/amqp.h"
#include "core/common.h"

static void test_parse_full(void **state)
{
    (void)state;
    struct amqp_connection_info info;
    char *buf = NULL, err[160] = "";

    assert_int_equal(
        mq__parse_url("amqp://guest:guest@127.0.0.1:5673/", &buf, &info, err, sizeof(err)), 0);
    assert_non_null(buf);
    assert_string_equal(info.user, "guest");
    assert_string_equal(info.password, "guest");
    assert_string_equal(info.host, "127.0.0.1");
    assert_int_equal(info.port, 5673);
    /* A lone trailing slash means the default vhost, not the vhost "". */
    assert_string_equal(info.vhost, "/");
    assert_false(info.ssl);
    free(buf);
}

static void test_parse_defaults_and_escapes(void **state)
{
    (void)state;
    struct amqp_connection_info info;
    char *buf = NULL, err[160] = "";

    assert_int_equal(mq__parse_url("amqp://rabbit", &buf, &info, err, sizeof(err)), 0);
    assert_string_equal(info.host, "rabbit");
    assert_int_equal(info.port, 5672);
    assert_string_equal(info.vhost, "/");
    assert_string_equal(info.user, "guest");
    free(buf);

    /* Percent-escapes: '@' in the password, '/' in the vhost. */
    assert_int_equal(mq__parse_url("amqp://app:p%40ss@mq.internal:5672/prod%2fv1", &buf, &info, err,
                                   sizeof(err)),
                     0);
    assert_string_equal(info.user, "app");
    assert_string_equal(info.password, "p@ss");
    assert_string_equal(info.vhost, "prod/v1");
    free(buf);

    assert_int_equal(mq__parse_url("amqp://h/%2f", &buf, &info, err, sizeof(err)), 0);
    assert_string_equal(info.vhost, "/");
    free(buf);
}

static void test_parse_errors_hide_password(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "amqp://user:hunter2@host:notaport/", "http://user:hunter2@host/",
        "amqp://user:hunter2@host:99999/",    "amqp://user:hunter2@host/a/b",
        "amqps://user:hunter2@host/",         "",
    };
    for (size_t i = 0; i < VN_ARRAY_LEN(bad); i++) {
        struct amqp_connection_info info;
        char *buf = (char *)"sentinel", err[160] = "";
        assert_int_equal(mq__parse_url(bad[i], &buf, &info, err, sizeof(err)), VN_EINVAL);
        assert_null(buf);
        assert_true(strlen(err) > 0);
        assert_null(strstr(err, "hunter2"));
    }
    struct amqp_connection_info info;
    char *buf = NULL, err[160] = "";
    assert_int_equal(mq__parse_url(NULL, &buf, &info, err, sizeof(err)), VN_EINVAL);
    assert_int_equal(mq__parse_url("amqps://h/", &buf, &info, err, sizeof(err)), VN_EINVAL);
    assert_non_null(strstr(err, "amqps"));
}

static void test_table_get_str(void **state)
{
    (void)state;
    amqp_table_entry_t e[3];
    amqp_table_t t = {3, e};

    e[0].key = amqp_cstring_bytes("x-n");
    e[0].value.kind = AMQP_FIELD_KIND_I32;
    e[0].value.value.i32 = 7;
    e[1].key = amqp_cstring_bytes("content_type");
    e[1].value.kind = AMQP_FIELD_KIND_UTF8;
    e[1].value.value.bytes = amqp_cstring_bytes("text/plain");
    e[2].key = amqp_cstring_bytes("raw");
    e[2].value.kind = AMQP_FIELD_KIND_BYTES;
    e[2].value.value.bytes = amqp_empty_bytes;

    char *s = mq__table_get_str(&t, "content_type");
    assert_string_equal(s, "text/plain");
    free(s);
    s = mq__table_get_str(&t, "raw"); /* empty bytes give "" */
    assert_string_equal(s, "");
    free(s);
    assert_null(mq__table_get_str(&t, "x-n"));           /* not a string */
    assert_null(mq__table_get_str(&t, "content"));       /* prefix is not a match */
    assert_null(mq__table_get_str(&t, "content_type2")); /* nor is a longer key */
    assert_null(mq__table_get_str(NULL, "content_type"));
    assert_null(mq__table_get_str(&amqp_empty_table, "content_type"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full),
        cmocka_unit_test(test_parse_defaults_and_escapes),
        cmocka_unit_test(test_parse_errors_hide_password),
        cmocka_unit_test(test_table_get_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
