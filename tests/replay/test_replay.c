/* test_replay.c - the replay command as auditors use it: --verify names the
 * damaged position, --dump prints the events, --help answers. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core/writer.h"
#include "core/support.h"

static const char *bin(void)
{
    const char *b = getenv("REPLAY_BIN");
    cr_assert_not_null(b, "REPLAY_BIN is set by ctest");
    return b;
}

/* Runs a shell command; returns its exit status and its stdout in out. */
static int run(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A log of `n` watches, each added by one command. */
static void make_log(const char *dir, int n)
{
    char uri[300];
    snprintf(uri, sizeof uri, "lmdb:%s", dir);
    wr_config cfg = {0};
    cfg.log_uri = uri;
    memcpy(cfg.email_key, ts_email_key, 32);
    wr_writer *w;
    char err[256];
    cr_assert_eq(wr_open(&cfg, &w, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < n; i++) {
        static wr_req r;
        memset(&r, 0, sizeof r);
        r.cmd = ts_cmd(DEC_WATCH_ADD, 1764000000000000ull + (uint64_t)i * 1000000);
        r.cmd.u.watch.watch_id[0] = 0x11;
        r.cmd.u.watch.watch_id[15] = (uint8_t)i;
        char name[32];
        snprintf(name, sizeof name, "marker-watch-%04d", i);
        r.cmd.u.watch.watch_name = ev_str_c(name);
        r.cmd.u.watch.price = 10000;
        r.cmd.u.watch.currency = EV_STR("USD");
        wr_req *p = &r;
        cr_assert_eq(wr_process(w, &p, 1), 0);
        cr_assert_eq(r.out.reason, DEC_OK);
    }
    wr_close(w);
}

Test(replay, verify_and_dump_a_sound_log)
{
    char dir[256], cmd[1024], out[1 << 16];
    ts_tmpdir(dir, sizeof dir);
    make_log(dir, 50);
    snprintf(cmd, sizeof cmd, "%s --quiet --log lmdb:%s --verify", bin(), dir);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert_not_null(strstr(out, "OK: 50 events verified"), "%s", out);

    snprintf(cmd, sizeof cmd, "%s --quiet --log lmdb:%s --dump --from 10 --limit 3", bin(), dir);
    cr_assert_eq(run(cmd, out, sizeof out), 0);
    cr_assert_not_null(strstr(out, "\"pos\":10,"));
    cr_assert_not_null(strstr(out, "\"pos\":12,"));
    cr_assert_null(strstr(out, "\"pos\":13,"));
    cr_assert_not_null(strstr(out, "marker-watch-0011"));

    /* By time: watch i was recorded at 2025-11-24T16:00:00Z + i seconds. */
    snprintf(cmd, sizeof cmd,
             "%s --quiet --log lmdb:%s --dump --from 2025-11-24T16:00:40Z --type watch.added",
             bin(), dir);
    cr_assert_eq(run(cmd, out, sizeof out), 0);
    cr_assert_not_null(strstr(out, "marker-watch-0040"), "%s", out);
    cr_assert_null(strstr(out, "marker-watch-0039"));
    ts_rmtree(dir);
}

Test(replay, verify_names_the_damaged_position)
{
    char dir[256], path[300], cmd[1024], out[4096];
    ts_tmpdir(dir, sizeof dir);
    make_log(dir, 50);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    static char data[1 << 22];
    size_t n = fread(data, 1, sizeof data, f);
    char *m = memmem(data, n, "marker-watch-0023", 17);
    cr_assert_not_null(m);
    fseek(f, (long)(m - data) + 14, SEEK_SET);
    fputc('9', f); /* marker-watch-0093 */
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s --quiet --log lmdb:%s --verify", bin(), dir);
    cr_assert_eq(run(cmd, out, sizeof out), 1, "%s", out);
    cr_assert_not_null(strstr(out, "DAMAGED at position 23"), "%s", out);
    ts_rmtree(dir);
}

Test(replay, help_and_usage_errors)
{
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd, "%s --help", bin());
    cr_assert_eq(run(cmd, out, sizeof out), 0);
    cr_assert_not_null(strstr(out, "--verify"));
    cr_assert_not_null(strstr(out, "Examples:"));
    snprintf(cmd, sizeof cmd, "%s --no-such-option 2>/dev/null", bin());
    cr_assert_eq(run(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "%s --verify --log lmdb:/nonexistent/log 2>&1", bin());
    cr_assert_eq(run(cmd, out, sizeof out), 2);
    cr_assert_not_null(strstr(out, "no log at /nonexistent/log"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s --catalogue", bin());
    cr_assert_eq(run(cmd, out, sizeof out), 0);
    cr_assert_not_null(strstr(out, "order.placed v1"));
    cr_assert_not_null(strstr(out, "shipping_address"));
}
