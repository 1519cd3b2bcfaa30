/*
 * tpl_render.c - renders per second of one template with one JSON data set,
 * the engine's hot path as the notifier uses it: the template compiled once,
 * the data parsed once, then render after render into a reused buffer.
 *
 *   bench_tpl_render TEMPLATE DATA [--target T] [--locale L] [--tz Z]
 *                    [--seconds S] [--rounds N] [--print]
 *
 * Prints one JSON line: {"impl":"vestnik","renders":...,"seconds":...,
 * "rate":...,"bytes":...} with the best of N rounds of S seconds each
 * (defaults 3 x 1 s). --print prints the rendered text once instead, so the
 * caller can check both implementations produce the same output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "core/common.h"
#include "templates/tpl.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct vn_buf b = VN_BUF_INIT;
    char chunk[8192];
    size_t n;
    if (f == NULL) {
        fprintf(stderr, "bench_tpl_render: cannot open %s\n", path);
        exit(2);
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        vn_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    if (b.data == NULL)
        vn_buf_append(&b, "", 0);
    return vn_buf_steal(&b);
}

int main(int argc, char **argv)
{
    const char *tpath = NULL, *dpath = NULL, *target = "telegram_html";
    const char *locale = "ru", *tz = "Europe/Moscow";
    double seconds = 1.0;
    int rounds = 3, print = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--target") == 0 && i + 1 < argc)
            target = argv[++i];
        else if (strcmp(argv[i], "--locale") == 0 && i + 1 < argc)
            locale = argv[++i];
        else if (strcmp(argv[i], "--tz") == 0 && i + 1 < argc)
            tz = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--print") == 0)
            print = 1;
        else if (tpath == NULL)
            tpath = argv[i];
        else if (dpath == NULL)
            dpath = argv[i];
        else {
            fprintf(stderr, "bench_tpl_render: unexpected %s\n", argv[i]);
            return 2;
        }
    }
    if (tpath == NULL || dpath == NULL || tpl_target_parse(target) < 0 || seconds <= 0 ||
        rounds < 1) {
        fprintf(stderr, "usage: bench_tpl_render TEMPLATE DATA [--target T] [--locale L] "
                        "[--tz Z] [--seconds S] [--rounds N] [--print]\n");
        return 2;
    }

    size_t tlen, dlen;
    char *src = slurp(tpath, &tlen), *data = slurp(dpath, &dlen);
    struct tpl_error err;
    struct tpl_compile_opts co = {tpath, (enum tpl_target)tpl_target_parse(target), NULL};
    struct tpl *t = tpl_compile(src, tlen, &co, &err);
    if (t == NULL) {
        fprintf(stderr, "%s:%u:%u: %s\n", tpath, err.line, err.col, err.msg);
        return 1;
    }
    struct json_object *j = json_tokener_parse(data);
    if (j == NULL) {
        fprintf(stderr, "bench_tpl_render: %s is not JSON\n", dpath);
        return 1;
    }
    struct tpl_fmt_cache *cache = tpl_fmt_cache_new();
    struct tpl_render_opts o = {locale, tz, 1772884800000LL, 0, NULL, NULL, NULL, cache};
    struct vn_buf out = VN_BUF_INIT;

    if (tpl_render(t, j, &o, &out, &err) != 0) {
        fprintf(stderr, "render: %u:%u: %s\n", err.line, err.col, err.msg);
        return 1;
    }
    if (print) {
        fwrite(out.data, 1, out.len, stdout);
        return 0;
    }
    size_t bytes = out.len;
    double best_rate = 0, best_secs = 0;
    long best_n = 0;
    for (int r = 0; r < rounds; r++) {
        long n = 0;
        double start = now_s(), el;
        do {
            for (int k = 0; k < 1000; k++) {
                vn_buf_reset(&out);
                if (tpl_render(t, j, &o, &out, &err) != 0)
                    return 1;
            }
            n += 1000;
            el = now_s() - start;
        } while (el < seconds);
        if (n / el > best_rate) {
            best_rate = n / el;
            best_secs = el;
            best_n = n;
        }
    }
    printf("{\"impl\":\"vestnik\",\"renders\":%ld,\"seconds\":%.3f,\"rate\":%.0f,\"bytes\":%zu}\n",
           best_n, best_secs, best_rate, bytes);
    vn_buf_free(&out);
    tpl_fmt_cache_free(cache);
    json_object_put(j);
    tpl_free(t);
    free(src);
    free(data);
    return 0;
}
