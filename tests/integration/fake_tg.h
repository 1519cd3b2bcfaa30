/*
 * fake_tg.h - start and drive the fake Bot API server from C tests.
 *
 * fake_tg_start() runs the vestnik-fake-telegram binary (FAKE_TELEGRAM_BIN) on
 * a free port and waits for its {"listening":PORT} line; control calls use
 * blocking libcurl, which is fine in test code outside the loop.
 */
#ifndef VN_TEST_FAKE_TG_H
#define VN_TEST_FAKE_TG_H

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/common.h"

struct fake_tg {
    pid_t pid;
    int port;
    char url[64]; /* http://127.0.0.1:PORT */
};

static size_t fake_tg__sink(char *p, size_t s, size_t n, void *ud)
{
    vn_buf_append(ud, p, s * n);
    return s * n;
}

/* Start the fake with extra args (NULL-terminated). Returns 0 or -1. */
static inline int fake_tg_start(struct fake_tg *f, const char *const *extra)
{
    const char *bin = getenv("FAKE_TELEGRAM_BIN");
    int fds[2];
    char line[256];
    const char *argv[16] = {bin, "--host", "127.0.0.1", "--port", "0"};
    int argc = 5;
    memset(f, 0, sizeof(*f));
    if (bin == NULL || pipe(fds) != 0)
        return -1;
    for (; extra && *extra && argc < 15; extra++)
        argv[argc++] = *extra;
    argv[argc] = NULL;
    f->pid = fork();
    if (f->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    if (in == NULL || fgets(line, sizeof(line), in) == NULL) {
        if (in)
            fclose(in);
        return -1;
    }
    fclose(in);
    const char *p = strstr(line, "\"listening\":");
    if (p == NULL)
        return -1;
    f->port = (int)strtol(p + 12, NULL, 10);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", f->port);
    return f->port > 0 ? 0 : -1;
}

static inline int fake_tg_stop(struct fake_tg *f)
{
    int status = 0;
    if (f->pid <= 0)
        return -1;
    kill(f->pid, SIGTERM);
    waitpid(f->pid, &status, 0);
    f->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* method + path (+ JSON body) against the fake; returns the HTTP status and
 * fills out (caller frees) when not NULL. */
static inline long fake_tg_call(const struct fake_tg *f, const char *method, const char *path,
                                const char *json, struct vn_buf *out)
{
    char url[512];
    long code = 0;
    struct vn_buf sink = VN_BUF_INIT;
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(url, sizeof(url), "%s%s", f->url, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    if (json)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fake_tg__sink);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out ? out : &sink);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    vn_buf_free(&sink);
    return code;
}

#endif
