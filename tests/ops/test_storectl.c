/* test_storectl.c - storectl as operators use it: the binary (STORECTL_BIN)
 * on a log in a temporary folder, checked through the writer's state after
 * reopening the log and through the events it appended: the demo catalog
 * seeded once, admin accounts made or granted, roles granted, and the
 * message when another process is the log's writer. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/passwd.h"
#include "core/support.h"
#include "core/writer.h"

static const char *env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v, "%s is set by ctest", name);
    return v;
}

/* A store folder: the e-mail key file (the tests' key) and room for a log. */
static void make_store(char *dir, size_t cap)
{
    ts_tmpdir(dir, cap);
    char path[512];
    snprintf(path, sizeof path, "%s/key", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 32; i++)
        fprintf(f, "%02x", ts_email_key[i]);
    fputc('\n', f);
    fclose(f);
}

/* Runs storectl on the store with `args`; its exit status, and its output
 * (standard output and error) in out. */
static int ctl(const char *dir, const char *args, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s --log lmdb:%s/log --email-key-file %s/key --snapshot '' %s 2>&1",
             env("STORECTL_BIN"), dir, dir, args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static wr_writer *open_writer(const char *dir)
{
    char uri[300], err[512];
    snprintf(uri, sizeof uri, "lmdb:%s/log", dir);
    wr_config cfg = {0};
    cfg.log_uri = uri;
    memcpy(cfg.email_key, ts_email_key, 32);
    wr_writer *w = NULL;
    cr_assert_eq(wr_open(&cfg, &w, err, sizeof err), 0, "%s", err);
    return w;
}

/* The events in the log, and the state's account of an e-mail. */
typedef struct seen {
    uint64_t events;
    size_t watches;
    uint64_t customer_id; /* of the e-mail asked, 0: none */
    int role;             /* its role, -1: none */
    uint64_t max_customer_id;
} seen;

static seen look(const char *dir, const char *email)
{
    wr_writer *w = open_writer(dir);
    const st_state *st = wr_state(w);
    seen s = {st->next_pos, st->n_watches, 0, -1, st->max_customer_id};
    if (email && st_email_taken(st, ev_str_c(email), &s.customer_id))
        s.role = st_customer_get(st, s.customer_id)->role;
    wr_close(w);
    return s;
}

/* An account registered through the writer with role user. */
static void register_user(const char *dir, const char *email)
{
    wr_writer *w = open_writer(dir);
    static wr_req r;
    memset(&r, 0, sizeof r);
    r.cmd = ts_cmd(DEC_CUSTOMER_REGISTER, 1764057600000000ull);
    r.cmd.u.reg.email = ev_str_c(email);
    r.cmd.u.reg.full_name = EV_STR("Una User");
    wr_req *p = &r;
    cr_assert_eq(wr_process(w, &p, 1), 0);
    cr_assert_eq(r.out.reason, DEC_OK);
    wr_close(w);
}

typedef struct find_hash {
    ev_dec *dec;
    uint64_t customer_id;
    char hash[PW_HASH_MAX];
} find_hash;

static int take_hash(void *ud, const log_rec *rec)
{
    find_hash *f = ud;
    ev_event ev;
    cr_assert_eq(ev_decode(f->dec, rec->data, rec->len, rec->pos, &ev), 0);
    if (ev.env.type == EV_T_CUSTOMER_REGISTERED &&
        ev.u.customer_registered.customer_id == f->customer_id) {
        ev_str h = ev.u.customer_registered.password_hash;
        cr_assert(h.p && h.n < sizeof f->hash);
        memcpy(f->hash, h.p, h.n);
        f->hash[h.n] = 0;
        cr_assert_eq(ev.env.actor.n, 6);
        cr_assert_eq(memcmp(ev.env.actor.p, "system", 6), 0);
    }
    return 0;
}

/* Whether the account's registration in the log has a hash of password. */
static bool password_is(const char *dir, uint64_t customer_id, const char *password)
{
    char uri[300], err[256];
    snprintf(uri, sizeof uri, "lmdb:%s/log", dir);
    log_t *log;
    cr_assert_eq(log_open(uri, LOG_READ, &log, err, sizeof err), 0, "%s", err);
    find_hash f = {ev_dec_new(), customer_id, ""};
    uint64_t next;
    cr_assert_eq(log_scan(log, 0, 0, take_hash, &f, &next), 0);
    ev_dec_free(f.dec);
    log_close(log);
    cr_assert(strncmp(f.hash, "$scrypt$", 8) == 0, "a scrypt hash: %s", f.hash);
    return pw_verify(password, strlen(password), f.hash) == PW_OK;
}

static size_t demo_size(void)
{
    json_error_t je;
    json_t *doc = json_load_file(env("STORECTL_DEMO"), 0, &je);
    cr_assert_not_null(doc, "%s", je.text);
    size_t n = json_array_size(json_object_get(doc, "watches"));
    json_decref(doc);
    return n;
}

Test(storectl, help_for_every_command)
{
    char dir[256], out[16384];
    make_store(dir, sizeof dir);
    cr_assert_eq(ctl(dir, "--help", out, sizeof out), 0);
    cr_assert_not_null(strstr(out, "Examples:"), "%s", out);
    cr_assert_not_null(strstr(out, "Exit status:"));
    const char *cmds[] = {"seed-demo", "create-admin", "grant-role"};
    for (int i = 0; i < 3; i++) {
        char args[64];
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        cr_assert_eq(ctl(dir, args, out, sizeof out), 0);
        cr_assert_not_null(strstr(out, cmds[i]), "%s", out);
    }
    cr_assert_eq(ctl(dir, "frobnicate", out, sizeof out), 2);
    cr_assert_eq(ctl(dir, "seed-demo --role admin", out, sizeof out), 2);
    cr_assert_eq(ctl(dir, "grant-role --email a@b.example --role emperor", out, sizeof out), 2);
    cr_assert_eq(ctl(dir, "create-admin --email not-an-address", out, sizeof out), 2);
    ts_rmtree(dir);
}

/* The demo catalog is what ops/run.sh promises: about 50 watches in the six
 * categories, a few nearly sold out and one sold out. */
Test(storectl, demo_catalog_content)
{
    json_error_t je;
    json_t *doc = json_load_file(env("STORECTL_DEMO"), JSON_REJECT_DUPLICATES, &je);
    cr_assert_not_null(doc, "%s", je.text);
    json_t *list = json_object_get(doc, "watches"), *w;
    size_t i, low = 0, zero = 0;
    cr_assert(json_array_size(list) >= 40 && json_array_size(list) <= 60);
    json_array_foreach(list, i, w) {
        const char *cat = json_string_value(json_object_get(w, "category"));
        cr_assert(cat && strstr("automatic chronograph diver sport classic luxury", cat), "%zu", i);
        json_int_t stock = json_integer_value(json_object_get(w, "stock_quantity"));
        low += stock < 3;
        zero += stock == 0;
        const char *d = json_string_value(json_object_get(w, "description"));
        cr_assert(d && strstr(d, "water resistant"), "watch %zu: water resistance", i);
        json_t *img = json_object_get(w, "image_url");
        cr_assert(json_is_null(img) || strncmp(json_string_value(img), "https://", 8) == 0);
    }
    cr_assert(low >= 3 && zero == 1, "%zu below 3, %zu sold out", low, zero);
    json_decref(doc);
}

Test(storectl, seeding_twice_writes_once)
{
    char dir[256], out[16384], args[1024];
    make_store(dir, sizeof dir);
    size_t n = demo_size();
    snprintf(args, sizeof args, "seed-demo --file %s", env("STORECTL_DEMO"));
    cr_assert_eq(ctl(dir, args, out, sizeof out), 0, "%s", out);
    cr_assert_not_null(strstr(out, "added"), "%s", out);
    seen a = look(dir, NULL);
    cr_assert_eq(a.watches, n);
    cr_assert_eq(a.events, n);

    cr_assert_eq(ctl(dir, args, out, sizeof out), 0, "%s", out);
    cr_assert_not_null(strstr(out, "not loaded"), "%s", out);
    seen b = look(dir, NULL);
    cr_assert_eq(b.events, a.events, "the second run wrote nothing");
    cr_assert_eq(b.watches, n);
    ts_rmtree(dir);
}

Test(storectl, a_bad_catalog_writes_nothing)
{
    char dir[256], out[16384], args[1024], path[512];
    make_store(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/bad.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"watches\":[{\"watch_name\":\"Ok\",\"price\":\"10.00\"},"
          "{\"watch_name\":\"\",\"price\":-1,\"category\":\"pocket\"}]}", f);
    fclose(f);
    snprintf(args, sizeof args, "seed-demo --file %s", path);
    cr_assert_eq(ctl(dir, args, out, sizeof out), 4, "%s", out);
    cr_assert_not_null(strstr(out, "watches[1].price"), "%s", out);
    cr_assert_not_null(strstr(out, "watches[1].category"), "%s", out);
    cr_assert_eq(access(path, F_OK), 0);
    char logdir[300];
    snprintf(logdir, sizeof logdir, "%s/log", dir);
    cr_assert_neq(access(logdir, F_OK), 0, "the log was not even opened");
    ts_rmtree(dir);
}

Test(storectl, create_admin_registers_an_admin)
{
    char dir[256], out[16384], args[1024];
    make_store(dir, sizeof dir);
    /* A random password, printed once. */
    cr_assert_eq(ctl(dir, "create-admin --email ' Boss@Example.COM ' --name 'Bea Boss'", out,
                     sizeof out), 0, "%s", out);
    char *pw = strstr(out, "password: ");
    cr_assert_not_null(pw, "%s", out);
    pw += 10;
    pw[strcspn(pw, "\n")] = 0;
    cr_assert_geq(strlen(pw), 20);
    seen a = look(dir, "boss@example.com");
    cr_assert_eq(a.customer_id, 1);
    cr_assert_eq(a.role, EV_role_ADMIN);
    cr_assert(password_is(dir, 1, pw));
    cr_assert_not(password_is(dir, 1, "not the password"));

    /* A password from a file. */
    char pwfile[512];
    snprintf(pwfile, sizeof pwfile, "%s/pw", dir);
    FILE *f = fopen(pwfile, "w");
    fputs("correct horse battery\n", f);
    fclose(f);
    snprintf(args, sizeof args, "create-admin --email ops@example.com --password-file %s", pwfile);
    cr_assert_eq(ctl(dir, args, out, sizeof out), 0, "%s", out);
    cr_assert_null(strstr(out, "correct horse"), "a given password is not printed");
    seen b = look(dir, "ops@example.com");
    cr_assert_eq(b.customer_id, 2);
    cr_assert_eq(b.role, EV_role_ADMIN);
    cr_assert(password_is(dir, 2, "correct horse battery"));

    /* The same e-mail again: nothing new. */
    cr_assert_eq(ctl(dir, "create-admin --email OPS@example.com", out, sizeof out), 0, "%s", out);
    cr_assert_null(strstr(out, "password: "), "%s", out);
    seen c = look(dir, "ops@example.com");
    cr_assert_eq(c.events, b.events);
    cr_assert_eq(c.max_customer_id, 2);
    ts_rmtree(dir);
}

Test(storectl, create_admin_grants_an_existing_account)
{
    char dir[256], out[16384], args[1024], pwout[512];
    make_store(dir, sizeof dir);
    register_user(dir, "una@example.com");
    seen a = look(dir, "una@example.com");
    cr_assert_eq(a.role, EV_role_USER);
    snprintf(pwout, sizeof pwout, "%s/admin.txt", dir);
    snprintf(args, sizeof args, "create-admin --email una@example.com --password-out %s", pwout);
    cr_assert_eq(ctl(dir, args, out, sizeof out), 0, "%s", out);
    cr_assert_not_null(strstr(out, "unchanged"), "%s", out);
    cr_assert_neq(access(pwout, F_OK), 0, "no password was made");
    seen b = look(dir, "una@example.com");
    cr_assert_eq(b.customer_id, a.customer_id);
    cr_assert_eq(b.role, EV_role_ADMIN);
    cr_assert_eq(b.max_customer_id, 1, "no second account");
    cr_assert_eq(b.events, a.events + 1, "one customer.role_changed");

    /* --password-out for a new account: the file holds it, mode 600. */
    snprintf(args, sizeof args, "create-admin --email new@example.com --password-out %s", pwout);
    cr_assert_eq(ctl(dir, args, out, sizeof out), 0, "%s", out);
    struct stat sb;
    cr_assert_eq(stat(pwout, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600);
    char pw[128] = "";
    FILE *f = fopen(pwout, "r");
    cr_assert_not_null(fgets(pw, sizeof pw, f));
    fclose(f);
    pw[strcspn(pw, "\n")] = 0;
    cr_assert_null(strstr(out, pw), "the password is in the file only");
    cr_assert(password_is(dir, 2, pw));
    ts_rmtree(dir);
}

Test(storectl, grant_role)
{
    char dir[256], out[16384];
    make_store(dir, sizeof dir);
    register_user(dir, "ann@example.com");
    cr_assert_eq(ctl(dir, "grant-role --email Ann@Example.com --role agent", out, sizeof out), 0,
                 "%s", out);
    seen a = look(dir, "ann@example.com");
    cr_assert_eq(a.role, EV_role_AGENT);
    cr_assert_eq(ctl(dir, "grant-role --email ann@example.com --role agent", out, sizeof out), 0);
    cr_assert_not_null(strstr(out, "already"), "%s", out);
    cr_assert_eq(look(dir, NULL).events, a.events, "the same role again records nothing");
    cr_assert_eq(ctl(dir, "grant-role --email ann@example.com --role user", out, sizeof out), 0);
    cr_assert_eq(look(dir, "ann@example.com").role, EV_role_USER);
    cr_assert_eq(ctl(dir, "grant-role --email nobody@example.com --role admin", out, sizeof out),
                 1, "%s", out);
    cr_assert_not_null(strstr(out, "no account"), "%s", out);
    ts_rmtree(dir);
}

Test(storectl, says_so_when_the_log_has_a_writer)
{
    char dir[256], out[16384], args[1024];
    make_store(dir, sizeof dir);
    wr_writer *w = open_writer(dir); /* as the API would */
    snprintf(args, sizeof args, "seed-demo --file %s", env("STORECTL_DEMO"));
    cr_assert_eq(ctl(dir, args, out, sizeof out), 3, "%s", out);
    char pid[32];
    snprintf(pid, sizeof pid, "process %ld", (long)getpid());
    cr_assert_not_null(strstr(out, pid), "names the holder: %s", out);
    cr_assert_not_null(strstr(out, "stop the API"), "%s", out);
    cr_assert_eq(ctl(dir, "create-admin --email a@example.com", out, sizeof out), 3, "%s", out);
    cr_assert_null(strstr(out, "password: "), "%s", out);
    cr_assert_eq(wr_state(w)->n_watches, 0);
    wr_close(w);
    cr_assert_eq(look(dir, NULL).events, 0, "nothing written");
    ts_rmtree(dir);
}
