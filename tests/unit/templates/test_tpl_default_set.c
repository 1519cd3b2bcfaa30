/*
 * test_tpl_default_set.c - the shipped set in templates/default/: it loads,
 * every template renders with its sample in strict mode, each event and
 * bot message exists in ru and en for every channel it should, a few
 * renders match exactly, and every template survives hostile data: each
 * string in its sample replaced by markup, MarkdownV2 characters, quotes,
 * newlines and a javascript: URL, the output still parses as the target
 * requires and carries no live markup from the data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bot/tg_text.h"
#include "templates/tpl_set.h"
#include "tpl_test.h"

static const char *const EVENTS[] = {"task.assigned",      "task.due", "task.completed",
                                     "reminder.scheduled", "reminder", "notification.requested"};
static const char *const BOT[] = {
    "bot.welcome",         "bot.help",        "bot.remind.ask_text", "bot.remind.ask_time",
    "bot.remind.bad_time", "bot.remind.done", "bot.tasks",           "bot.settings",
    "bot.cancel"};

static struct tpl_set *set;

static int setup(void **state)
{
    (void)state;
    char *dir = tt_path("templates/default");
    struct vn_buf errors = VN_BUF_INIT;
    struct tpl_set_opts o = {"en", NULL, 0, 0};
    if (tpl_set_load(dir, &o, &set, &errors) != 0) {
        print_error("templates/default does not load:\n%s", errors.data);
        vn_buf_free(&errors);
        free(dir);
        return -1;
    }
    vn_buf_free(&errors);
    free(dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tpl_set_free(set);
    return 0;
}

static struct json_object *sample(const char *name)
{
    char *rel = xasprintf("templates/default/samples/%s.json", name);
    char *path = tt_path(rel);
    free(rel);
    struct json_object *j = json_object_from_file(path);
    if (j == NULL)
        fail_msg("no sample %s", path);
    free(path);
    return j;
}

static char *render(const char *name, enum tpl_part part, struct json_object *data,
                    const char *locale, const char *tz)
{
    struct tpl_render_opts o = {locale, tz, TT_NOW_MS, 0, NULL, NULL, NULL, NULL};
    struct vn_buf out = VN_BUF_INIT;
    struct tpl_error err;
    if (tpl_set_render(set, name, part, data, &o, &out, &err) != 0) {
        struct vn_buf b = VN_BUF_INIT;
        tpl_error_format(&err, &b);
        fail_msg("%s.%s %s: %s", name, tpl_part_name(part), locale, b.data);
    }
    if (out.data == NULL)
        vn_buf_append(&out, "", 0);
    return vn_buf_steal(&out);
}

static void test_check_passes(void **state)
{
    (void)state;
    char *samples = tt_path("templates/default/samples");
    struct vn_buf errors = VN_BUF_INIT;
    size_t renders = 0;
    size_t problems = tpl_set_check(set, samples, "Europe/Moscow", TT_NOW_MS, &errors, &renders);
    if (problems)
        fail_msg("%zu problems:\n%s", problems, errors.data);
    /* 6 events x 5 parts + 61 bot messages and button labels, in 2 locales */
    assert_int_equal(renders, 2 * (6 * 5 + 61));
    assert_int_equal(tpl_set_locale_count(set), 2);
    vn_buf_free(&errors);
    free(samples);
}

static void test_every_message_in_both_languages(void **state)
{
    (void)state;
    static const char *const locales[] = {"ru", "en"};
    for (size_t l = 0; l < 2; l++) {
        for (size_t i = 0; i < VN_ARRAY_LEN(EVENTS); i++)
            for (int p = 0; p < TPL_PART__COUNT; p++) {
                const char *found = NULL;
                if (p == TPL_PART_TELEGRAM_MD2)
                    continue;
                if (tpl_set_find(set, EVENTS[i], (enum tpl_part)p, locales[l], &found) == NULL ||
                    strcmp(found, locales[l]) != 0)
                    fail_msg("no %s/%s.%s", locales[l], EVENTS[i], tpl_part_name(p));
            }
        for (size_t i = 0; i < VN_ARRAY_LEN(BOT); i++) {
            const char *found = NULL;
            if (tpl_set_find(set, BOT[i], TPL_PART_TELEGRAM, locales[l], &found) == NULL ||
                strcmp(found, locales[l]) != 0)
                fail_msg("no %s/%s.telegram", locales[l], BOT[i]);
        }
    }
}

static void test_golden_renders(void **state)
{
    (void)state;
    struct json_object *j = sample("task.assigned");
    char *s = render("task.assigned", TPL_PART_TELEGRAM, j, "ru-RU", "Europe/Moscow");
    assert_string_equal(s, "📌 <b>Новая задача</b> от Мария Иванова\n"
                           "\n"
                           "<b>Подготовить отчёт за первый квартал</b>\n"
                           "Проект: Финансы\n"
                           "Срок: 10 марта 2026\u202fг. в 18:00 (через 3 дня)\n"
                           "\n"
                           "Сводка по продажам и расходам.\n"
                           "Черновик — в общей папке.\n"
                           "\n"
                           "<a href=\"https://tasks.example.com/t/T-1042\">Открыть задачу</a>");
    free(s);
    s = render("task.assigned", TPL_PART_EMAIL_SUBJECT, j, "en", "UTC");
    assert_string_equal(s, "New task: Подготовить отчёт за первый квартал");
    free(s);
    json_object_put(j);

    j = sample("bot.tasks");
    s = render("bot.tasks", TPL_PART_TELEGRAM, j, "ru", "Europe/Moscow");
    assert_string_equal(
        s, "<b>Ваши задачи</b> — 3 задачи\n"
           "\n"
           "• Подготовить отчёт за первый квартал — 10 мар., 18:00\n"
           "⚠️ Согласовать договор с подрядчиком — 6 мар., "
           "15:00\n"
           "• Обновить презентацию");
    free(s);
    json_object_put(j);
    j = tt_json("{\"tasks\":[]}");
    s = render("bot.tasks", TPL_PART_TELEGRAM, j, "en", "UTC");
    assert_string_equal(s, "<b>Your tasks</b>\n\nNothing to do — enjoy 🌿");
    free(s);
    json_object_put(j);

    j = sample("reminder.scheduled");
    s = render("reminder.scheduled", TPL_PART_TELEGRAM, j, "en", "America/New_York");
    /* 09:00Z is 05:00 in New York: EDT began at 07:00Z that morning */
    assert_string_equal(s, "🗓 I'll remind you Sunday, March 8 at 5:00\u202fAM (in 21 hours):\n"
                           "<i>Позвонить маме</i>");
    free(s);
    s = render("reminder.scheduled", TPL_PART_WEBSOCKET, j, "ru", "Europe/Moscow");
    struct json_object *r = json_tokener_parse(s), *x;
    assert_non_null(r);
    assert_true(json_object_object_get_ex(r, "title", &x));
    assert_string_equal(json_object_get_string(x), "Напомню через 21 час");
    assert_true(json_object_object_get_ex(r, "reminder", &x));
    assert_true(json_object_object_get_ex(x, "id", &x));
    assert_string_equal(json_object_get_string(x), "r-77");
    json_object_put(r);
    free(s);
    json_object_put(j);
}

/* Replace every string in j (recursively) with hostile text; URLs with a
 * script URL; dates stay dates. */
static void poison(struct json_object *j)
{
    static const char hostile[] = "<script>x</script><b>*_[]()~`>#+-=|{}.!\\ & \"q\" 'a'\n🎉";
    if (json_object_get_type(j) == json_type_array) {
        for (size_t i = 0; i < json_object_array_length(j); i++) {
            struct json_object *e = json_object_array_get_idx(j, i);
            if (json_object_get_type(e) == json_type_string)
                json_object_array_put_idx(j, i, json_object_new_string(hostile));
            else
                poison(e);
        }
        return;
    }
    if (json_object_get_type(j) != json_type_object)
        return;
    json_object_object_foreach(j, key, val)
    {
        size_t kl = strlen(key);
        if (json_object_get_type(val) != json_type_string) {
            poison(val);
            continue;
        }
        if (kl > 3 && strcmp(key + kl - 3, "_at") == 0)
            continue;
        if (strcmp(key, "tz") == 0)
            continue;
        json_object_object_add(j, key,
                               json_object_new_string(strcmp(key, "url") == 0
                                                          ? "javascript:alert(document.cookie)"
                                                          : hostile));
    }
}

static void no_data_markup(const char *what, const char *s)
{
    if (strstr(s, "<script") || strstr(s, "<b>*") || strstr(s, "javascript:"))
        fail_msg("%s: data became markup:\n%s", what, s);
}

static void test_hostile_data_everywhere(void **state)
{
    (void)state;
    static const char *const locales[] = {"ru", "en"};
    const char *const *lists[] = {EVENTS, BOT};
    size_t lens[] = {VN_ARRAY_LEN(EVENTS), VN_ARRAY_LEN(BOT)};
    size_t renders = 0;
    for (size_t li = 0; li < 2; li++)
        for (size_t i = 0; i < lens[li]; i++) {
            const char *name = lists[li][i];
            struct json_object *j = sample(name);
            poison(j);
            for (size_t l = 0; l < 2; l++)
                for (int p = 0; p < TPL_PART__COUNT; p++) {
                    if (tpl_set_find(set, name, (enum tpl_part)p, locales[l], NULL) == NULL)
                        continue;
                    char *s = render(name, (enum tpl_part)p, j, locales[l], "Europe/Berlin");
                    char what[96];
                    snprintf(what, sizeof(what), "%s/%s.%s", locales[l], name, tpl_part_name(p));
                    renders++;
                    switch (p) {
                    case TPL_PART_TELEGRAM:
                        if (tg__check_markup(s, strlen(s), TG_PARSE_HTML) != 0)
                            fail_msg("%s: Telegram would reject:\n%s", what, s);
                        no_data_markup(what, s);
                        break;
                    case TPL_PART_EMAIL_HTML:
                        no_data_markup(what, s);
                        break;
                    case TPL_PART_EMAIL_SUBJECT:
                        if (strpbrk(s, "\r\n"))
                            fail_msg("%s: subject has a line break: %s", what, s);
                        break;
                    case TPL_PART_WEBSOCKET: {
                        struct json_object *r = json_tokener_parse(s);
                        if (r == NULL)
                            fail_msg("%s: not JSON:\n%s", what, s);
                        json_object_put(r);
                        break;
                    }
                    default:
                        break;
                    }
                    free(s);
                }
            json_object_put(j);
        }
    assert_int_equal(renders, 78);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_passes),
        cmocka_unit_test(test_every_message_in_both_languages),
        cmocka_unit_test(test_golden_renders),
        cmocka_unit_test(test_hostile_data_everywhere),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
