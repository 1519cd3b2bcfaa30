/* redis:// URL parsing, including what the fuzzer found: a userinfo without
 * ':' is a user name, never a password (redaction relies on the same rule). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/config.h"
#include "core/redis.h"

static void test_full(void **state)
{
    (void)state;
    struct rds_url u;
    char err[128];
    assert_int_equal(rds_parse_url("redis://app:s3cr%t@cache.local:6390/4", &u, err, sizeof(err)),
                     0);
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "s3cr%t");
    assert_string_equal(u.host, "cache.local");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 4);
}

static void test_defaults(void **state)
{
    (void)state;
    struct rds_url u;
    char err[128];
    assert_int_equal(rds_parse_url("redis://127.0.0.1", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");
    assert_int_equal(rds_parse_url("redis://:pw@h/", &u, err, sizeof(err)), 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "pw");
    assert_int_equal(u.db, 0);
}

static void test_user_without_password(void **state)
{
    (void)state;
    struct rds_url u;
    char err[128];
    assert_int_equal(rds_parse_url("redis://secretish@h:1/0", &u, err, sizeof(err)), 0);
    assert_string_equal(u.user, "secretish");
    assert_string_equal(u.password, "");
    /* and whatever rds_parse_url calls a password, redaction hides */
    const char *url = "redis://>s\x94"
                      "cret@126.0.0.4secret0";
    assert_int_equal(rds_parse_url(url, &u, err, sizeof(err)), 0);
    assert_string_equal(u.password, "");
    url = "redis://u:longpassword@h:1/0";
    assert_int_equal(rds_parse_url(url, &u, err, sizeof(err)), 0);
    char *red = cfg_redact_url(url);
    assert_null(strstr(red, u.password));
    free(red);
}

static void test_errors(void **state)
{
    (void)state;
    struct rds_url u;
    char err[128];
    assert_int_equal(rds_parse_url("http://h", &u, err, sizeof(err)), VN_EINVAL);
    assert_string_equal(err, "URL must start with redis://");
    assert_int_equal(rds_parse_url("redis://", &u, err, sizeof(err)), VN_EINVAL);
    assert_int_equal(rds_parse_url("redis://h:0", &u, err, sizeof(err)), VN_EINVAL);
    assert_int_equal(rds_parse_url("redis://h:70000", &u, err, sizeof(err)), VN_EINVAL);
    assert_int_equal(rds_parse_url("redis://h:12ab", &u, err, sizeof(err)), VN_EINVAL);
    assert_int_equal(rds_parse_url("redis://h/abc", &u, err, sizeof(err)), VN_EINVAL);
    assert_string_equal(err, "database after '/' must be a number");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_user_without_password),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
