/* test_cache_rebuild.c - the cache rebuilt beside the live one and swapped
 * in (projections/cache_rebuild.h), with the real projector process
 * following the log and a reader in another process reading in a loop:
 * - the reader never fails and never sees a partial catalogue, and follows
 *   the swap to the new generation;
 * - the projector carries on in the new generation, and the result equals a
 *   cache built from scratch;
 * - an abandoned rebuild leaves the live cache alone and its leftovers are
 *   removed by the next; a second rebuild at once is refused; old
 *   generations are pruned. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache_gen.h"
#include "cache_rebuild.h"
#include "core/support.h"
#include "core/wlock.h"
#include "proj_cache.h"

#define N_WATCHES 60

typedef struct fixture {
    char dir[256], uri[300], cache[300], keyfile[300];
    wr_writer *w;
    log_t *log; /* a second handle for the rebuilds */
    unsigned seed;
} fixture;

static void fx_init(fixture *f, unsigned events)
{
    char err[512];
    ts_tmpdir(f->dir, sizeof f->dir);
    snprintf(f->uri, sizeof f->uri, "lmdb:%s/log", f->dir);
    snprintf(f->cache, sizeof f->cache, "%s/cache", f->dir);
    snprintf(f->keyfile, sizeof f->keyfile, "%s/email.key", f->dir);
    FILE *kf = fopen(f->keyfile, "w");
    cr_assert_not_null(kf);
    for (int i = 0; i < 32; i++)
        fprintf(kf, "%02x", ts_email_key[i]);
    fclose(kf);
    wr_config cfg = {0};
    cfg.log_uri = f->uri;
    memcpy(cfg.email_key, ts_email_key, 32);
    cr_assert_eq(wr_open(&cfg, &f->w, err, sizeof err), 0, "%s", err);
    f->seed = 7;
    cr_assert_eq(ts_grow_log(f->w, events, &f->seed, 0, N_WATCHES), 0);
    cr_assert_eq(log_open(f->uri, LOG_READ, &f->log, err, sizeof err), 0, "%s", err);
}

static void fx_fini(fixture *f)
{
    log_close(f->log);
    wr_close(f->w);
    ts_rmtree(f->dir);
}

static uint64_t log_end_of(fixture *f)
{
    uint64_t end;
    cr_assert_eq(log_end(f->log, &end), 0);
    return end;
}

static pid_t start_projector(fixture *f)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test leaves nothing behind */
        freopen("/dev/null", "w", stderr);
        char a1[400], a2[400], a3[400];
        snprintf(a1, sizeof a1, "--log=%s", f->uri);
        snprintf(a2, sizeof a2, "--cache=%s", f->cache);
        snprintf(a3, sizeof a3, "--email-key-file=%s", f->keyfile);
        execl(getenv("PROJECTOR_BIN"), "projector", "--projection=cache", a1, a2, a3,
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop_child(pid_t pid, int want)
{
    kill(pid, SIGTERM);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == want, "child status %d, want exit %d", st,
              want);
}

/* The digest of the cache at `root` once it has applied everything below
 * `pos` (opened and closed here: call it only where this process has no
 * other environment on that generation). */
static void digest_at(const char *root, uint64_t pos, uint8_t out[32])
{
    char err[512];
    proj_cache_reader *r = NULL;
    for (int i = 0; i < 200 && proj_cache_open_reader(root, ts_email_key, &r, err, sizeof err);
         i++)
        usleep(20000);
    cr_assert_not_null(r, "%s", err);
    cr_assert_eq(proj_cache_wait(r, pos - 1, 10000), 0, "cache reaches %llu",
                 (unsigned long long)pos);
    cr_assert_eq(proj_cache_digest(r, out), 0);
    proj_cache_reader_close(r);
}

/* A clean cache built from the whole log in its own root. */
static void clean_digest(fixture *f, uint8_t out[32])
{
    char root[400], err[512];
    snprintf(root, sizeof root, "%s/clean", f->dir);
    proj_sink s;
    cr_assert_eq(proj_cache_open_writer(root, ts_email_key, &s, err, sizeof err), 0, "%s", err);
    proj_stats st = {0};
    cr_assert_eq(proj_catch_up(f->log, &s, 5000, &st, err, sizeof err), 0, "%s", err);
    proj_cache_reader *r;
    cr_assert_eq(proj_cache_writer_reader(&s, &r, err, sizeof err), 0, "%s", err);
    cr_assert_eq(proj_cache_digest(r, out), 0);
    proj_cache_reader_close(r);
    proj_cache_close(&s);
}

static int count_fn(void *ud, const proj_cache_watch *w)
{
    (void)w;
    ++*(uint64_t *)ud;
    return 0;
}

/* The reader process: reads the whole catalogue and the brand counts in a
 * loop until SIGTERM; then, told the final position on `in`, waits for it.
 * Exit 0: every read succeeded and was whole, and the reader reached the
 * final position (so it followed the swap: the old generation stops). */
static volatile sig_atomic_t reader_stop;
static void on_term(int sig)
{
    (void)sig;
    reader_stop = 1;
}

static int reader_main(const char *root, int in)
{
    signal(SIGTERM, on_term);
    char err[512];
    proj_cache_reader *r;
    if (proj_cache_open_reader(root, NULL, &r, err, sizeof err) != 0)
        return 2;
    uint64_t loops = 0, last_pos = 0;
    while (!reader_stop) {
        uint64_t seen = 0, total = 0;
        proj_cache_filter all = proj_cache_filter_all();
        if (proj_cache_watches(r, PROJ_CACHE_PRICE_ASC, &all, 0, 0, count_fn, &seen, &total))
            return 3;
        if (seen != N_WATCHES || total != N_WATCHES)
            return 4;
        proj_cache_brand *b;
        size_t n;
        if (proj_cache_brands(r, PROJ_CACHE_CAT_ANY, &b, &n) != 0)
            return 5;
        int whole = n == 1 && b[0].count == N_WATCHES;
        free(b);
        if (!whole)
            return 6;
        if (proj_cache_applied(r, &last_pos) != 0)
            return 7;
        loops++;
    }
    uint64_t final;
    if (read(in, &final, sizeof final) != sizeof final)
        return 8;
    int rc = proj_cache_wait(r, final - 1, 10000);
    proj_cache_reader_close(r);
    return loops > 10 && rc == 0 ? 0 : 9;
}

static pid_t start_reader(const char *root, int *to_reader)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(p[1]);
        _exit(reader_main(root, p[0]));
    }
    close(p[0]);
    *to_reader = p[1];
    return pid;
}

static unsigned live_gen(const char *root)
{
    char dir[CGEN_PATH_MAX], err[256];
    unsigned gen = 0;
    cr_assert_eq(cgen_current(root, dir, sizeof dir, &gen, err, sizeof err), 0, "%s", err);
    return gen;
}

static int gen_exists(const char *root, unsigned gen)
{
    char dir[CGEN_PATH_MAX];
    struct stat st;
    cgen_dir(root, gen, dir, sizeof dir);
    return stat(dir, &st) == 0;
}

Test(cache_rebuild, swapped_in_under_a_live_projector_and_a_reading_process, .timeout = 300)
{
    fixture f;
    fx_init(&f, 30000);
    pid_t proj = start_projector(&f);
    uint8_t d[32];
    digest_at(f.cache, log_end_of(&f), d); /* the live cache has caught up */
    cr_assert_eq(live_gen(f.cache), 1);
    int to_reader;
    pid_t reader = start_reader(f.cache, &to_reader);

    /* Rebuild while the log grows. */
    char err[512];
    proj_stats st;
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(ts_grow_log(f.w, 5000, &f.seed, 100000u * (unsigned)(round + 1),
                                 N_WATCHES),
                     0);
        cr_assert_eq(proj_cache_rebuild(f.log, f.cache, ts_email_key, 4000, NULL, NULL, &st,
                                        err, sizeof err),
                     0, "%s", err);
        cr_assert_str_empty(err, "no warning: %s", err);
        cr_assert_geq(st.applied, 30000u);
        cr_assert_eq(live_gen(f.cache), (unsigned)round + 2);
        cr_assert_eq(ts_grow_log(f.w, 3000, &f.seed, 100000u * (unsigned)(round + 1) + 50000,
                                 N_WATCHES),
                     0);
    }
    /* Two rebuilds: generation 1 is gone, 2 (the previous) is kept. */
    cr_assert(!gen_exists(f.cache, 1) && gen_exists(f.cache, 2) && gen_exists(f.cache, 3));

    uint64_t end = log_end_of(&f);
    kill(reader, SIGTERM);
    cr_assert_eq(write(to_reader, &end, sizeof end), (ssize_t)sizeof end);
    close(to_reader);
    int rst;
    cr_assert_eq(waitpid(reader, &rst, 0), reader);
    cr_assert(WIFEXITED(rst) && WEXITSTATUS(rst) == 0,
              "reader: never an error, never a partial catalogue, follows the swap (status %d)",
              rst);

    /* The projector moved to the new generation and kept it up to date. */
    digest_at(f.cache, end, d);
    stop_child(proj, 0);
    uint8_t clean[32];
    clean_digest(&f, clean);
    cr_assert_arr_eq(d, clean, 32, "the swapped-in cache equals a clean build");
    fx_fini(&f);
}

static int abandon_after_two(void *ud, const proj_stats *st, uint64_t end)
{
    (void)st;
    (void)end;
    return ++*(int *)ud >= 2;
}

Test(cache_rebuild, an_abandoned_rebuild_changes_nothing_and_one_at_a_time, .timeout = 120)
{
    fixture f;
    fx_init(&f, 8000);
    char err[512];
    proj_stats st;
    /* A first rebuild makes the cache (there was none). */
    cr_assert_eq(proj_cache_rebuild(f.log, f.cache, ts_email_key, 1000, NULL, NULL, &st, err,
                                    sizeof err),
                 0, "%s", err);
    unsigned gen = live_gen(f.cache);
    uint8_t before[32], after[32];
    digest_at(f.cache, log_end_of(&f), before);

    int calls = 0;
    cr_assert_neq(proj_cache_rebuild(f.log, f.cache, ts_email_key, 1000, abandon_after_two,
                                     &calls, &st, err, sizeof err),
                  0);
    cr_assert_eq(live_gen(f.cache), gen, "the live generation is unchanged");
    cr_assert(gen_exists(f.cache, gen + 1), "the abandoned build is left until the next");
    digest_at(f.cache, log_end_of(&f), after);
    cr_assert_arr_eq(before, after, 32);

    /* One rebuild at a time. */
    char lock[400];
    int fd;
    snprintf(lock, sizeof lock, "%s/rebuild.lock", f.cache);
    cr_assert_eq(wlock_take_file(lock, "cache rebuild", &fd, err, sizeof err), WLOCK_OK, "%s",
                 err);
    cr_assert_neq(proj_cache_rebuild(f.log, f.cache, ts_email_key, 1000, NULL, NULL, &st, err,
                                     sizeof err),
                  0);
    cr_assert_not_null(strstr(err, "already has a writer"), "%s", err);
    close(fd);

    /* The next rebuild clears the leftover and takes its number. */
    cr_assert_eq(proj_cache_rebuild(f.log, f.cache, ts_email_key, 1000, NULL, NULL, &st, err,
                                    sizeof err),
                 0, "%s", err);
    cr_assert_eq(live_gen(f.cache), gen + 1);
    digest_at(f.cache, log_end_of(&f), after);
    cr_assert_arr_eq(before, after, 32, "a rebuild of the same log is the same cache");
    fx_fini(&f);
}

/* Runs `projector --projection=cache --once` with the key file `keyfile`. */
static int projector_once(fixture *f, const char *keyfile)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        freopen("/dev/null", "w", stderr);
        char a1[400], a2[400], a3[400];
        snprintf(a1, sizeof a1, "--log=%s", f->uri);
        snprintf(a2, sizeof a2, "--cache=%s", f->cache);
        snprintf(a3, sizeof a3, "--email-key-file=%s", keyfile);
        execl(getenv("PROJECTOR_BIN"), "projector", "--projection=cache", "--once", a1, a2, a3,
              (char *)NULL);
        _exit(127);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Test(cache_rebuild, the_projector_rebuilds_a_cache_it_cannot_use, .timeout = 120)
{
    fixture f;
    fx_init(&f, 3000);
    char other[400];
    snprintf(other, sizeof other, "%s/other.key", f.dir);
    FILE *kf = fopen(other, "w");
    cr_assert_not_null(kf);
    for (int i = 0; i < 32; i++)
        fprintf(kf, "%02x", 0xa0 + i);
    fclose(kf);
    /* Made with another e-mail key (as after a key change, or another
     * layout after an upgrade): the projector builds a new generation from
     * the log and carries on. */
    cr_assert_eq(projector_once(&f, other), 0);
    cr_assert_eq(live_gen(f.cache), 1);
    cr_assert_eq(projector_once(&f, f.keyfile), 0, "the projector rebuilt the cache");
    cr_assert_eq(live_gen(f.cache), 2);
    uint8_t d[32], clean[32];
    digest_at(f.cache, log_end_of(&f), d);
    clean_digest(&f, clean);
    cr_assert_arr_eq(d, clean, 32);
    fx_fini(&f);
}

static bool has_marker(const char *root, unsigned gen)
{
    char dir[CGEN_PATH_MAX], path[CGEN_PATH_MAX + 16];
    struct stat st;
    cgen_dir(root, gen, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/unsynced", dir);
    return stat(path, &st) == 0;
}

Test(cache_rebuild, a_cache_left_unsynced_by_a_machine_crash_is_rebuilt, .timeout = 120)
{
    fixture f;
    fx_init(&f, 3000);
    /* The live projector commits without syncing; while it runs its
     * generation carries this boot's marker, and a clean stop syncs and
     * removes it. */
    pid_t pid = start_projector(&f);
    uint8_t d[32], clean[32];
    digest_at(f.cache, log_end_of(&f), d);
    cr_assert(has_marker(f.cache, 1), "the running projector marked its generation");
    char dir[CGEN_PATH_MAX], err[512];
    cgen_dir(f.cache, 1, dir, sizeof dir);
    cr_assert_not(cgen_unsynced_stale(dir), "this boot's marker is not stale");
    stop_child(pid, 0);
    cr_assert_not(has_marker(f.cache, 1), "a clean stop leaves no marker");
    /* A process crash leaves this boot's marker: the cache is still good. */
    pid = start_projector(&f);
    for (int i = 0; i < 500 && !has_marker(f.cache, 1); i++)
        usleep(10000);
    cr_assert(has_marker(f.cache, 1), "the projector opened the cache again");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert(has_marker(f.cache, 1));
    cr_assert_eq(projector_once(&f, f.keyfile), 0);
    cr_assert_eq(live_gen(f.cache), 1, "after a process crash the generation is kept");
    /* A marker from another boot: the machine stopped with commits not on
     * disk. Readers refuse the generation as absent; the projector builds
     * a new one from the log and swaps it in. */
    char path[CGEN_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/unsynced", dir);
    FILE *m = fopen(path, "w");
    cr_assert_not_null(m);
    fputs("00000000-0000-4000-8000-000000000000", m);
    fclose(m);
    cr_assert(cgen_unsynced_stale(dir));
    proj_cache_reader *r = NULL;
    cr_assert_eq(proj_cache_open_reader(f.cache, ts_email_key, &r, err, sizeof err),
                 PROJ_CACHE_ENOENT, "a reader refuses it: %s", err);
    cr_assert_eq(projector_once(&f, f.keyfile), 0, "the projector rebuilt the cache");
    cr_assert_eq(live_gen(f.cache), 2);
    cr_assert_not(has_marker(f.cache, 2));
    digest_at(f.cache, log_end_of(&f), d);
    clean_digest(&f, clean);
    cr_assert_arr_eq(d, clean, 32);
    fx_fini(&f);
}
