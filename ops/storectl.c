/* storectl.c - the operator's command: writes commands to the log through
 * its writer, as the system (ops/ctl.h): loading the demo catalog, making an
 * admin account, granting roles.
 *
 * Owns the command line: subcommands and their options, help texts, what is
 * printed, exit codes (ctl_status). Reads the password of a new account from
 * a file or makes a random one, and hashes it with scrypt (api/passwd.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/b64.h"
#include "api/passwd.h"
#include "catfile.h"
#include "ctl.h"

static const char usage_top[] =
    "usage: storectl [--log URI] [--email-key-file FILE] [--snapshot FILE] COMMAND [OPTIONS]\n"
    "\n"
    "Writes commands to the store's log through its writer, as the system. The log\n"
    "takes one writer at a time: stop the API first (ops/run.sh runs storectl before\n"
    "it starts the API).\n"
    "\n"
    "Commands (each has --help):\n"
    "  seed-demo      loads the demo catalog into a store that has no watches yet\n"
    "  create-admin   registers an admin account (or makes an existing one admin)\n"
    "  grant-role     sets the role (user, agent, admin) of an account\n"
    "\n"
    "Options of every command:\n"
    "  --log URI             the log (default: $WATCHSTORE_LOG, else lmdb:var/log)\n"
    "  --email-key-file F    the e-mail index key, 64 hex digits (default:\n"
    "                        $WATCHSTORE_EMAIL_KEY_FILE, else var/secrets/email.key)\n"
    "  --snapshot FILE       the writer's state snapshot, as the API uses it (default:\n"
    "                        $WATCHSTORE_SNAPSHOT, else var/writer.snapshot; \"\": none)\n"
    "  -h, --help            this text, or a command's\n"
    "\n"
    "Examples:\n"
    "  storectl seed-demo\n"
    "  storectl seed-demo --file ops/demo/watches.json --log lmdb:/srv/store/log\n"
    "  storectl create-admin --email ops@example.com --name 'Olga Ops'\n"
    "  storectl create-admin --email ops@example.com --password-file /run/secrets/pw\n"
    "  storectl grant-role --email agent@example.com --role agent\n"
    "\n"
    "Exit status:\n"
    "  0  done, or nothing to do\n"
    "  1  refused: no account with that e-mail, or the store refused the command\n"
    "  2  usage: unknown command or option, missing or invalid argument\n"
    "  3  the log has another writer (the API runs): stop it and run storectl again\n"
    "  4  a file, the key or the log could not be read or written\n";

static const char usage_seed[] =
    "usage: storectl seed-demo [--file FILE]\n"
    "\n"
    "Loads a catalog file as watch.added events, in one append, into a store that\n"
    "has no watches yet. A store with watches is left alone (exit 0): ops/run.sh\n"
    "calls this on every start.\n"
    "\n"
    "  --file FILE   the catalog (default: ops/demo/watches.json): a JSON object\n"
    "                {\"currency\":\"USD\",\"watches\":[...]}, each watch with the fields\n"
    "                of POST /api/v1/admin/watches; the first is the newest\n"
    "\n"
    "Example: storectl seed-demo --file ops/demo/watches.json\n"
    "Exit status: 0 loaded or left alone, 2 usage, 3 log in use, 4 bad file or log.\n";

static const char usage_admin[] =
    "usage: storectl create-admin --email E [--name N]\n"
    "                             [--password-file F | --password-out F]\n"
    "\n"
    "Registers an account with role admin (its password stored as a scrypt hash).\n"
    "If an account has the e-mail already, grants it role admin instead and leaves\n"
    "its password alone.\n"
    "\n"
    "  --email E           the account's e-mail (trimmed, lower-cased)\n"
    "  --name N            its full name (default: Store administrator)\n"
    "  --password-file F   reads the password from F (\"-\": standard input); one\n"
    "                      trailing newline is dropped; at least 6 characters\n"
    "  --password-out F    without --password-file: a random password is made and\n"
    "                      written to F (mode 600) instead of being printed\n"
    "Without either, a random password is made and printed once.\n"
    "\n"
    "Example: storectl create-admin --email admin@watchstore.local\n"
    "Exit status: 0 created or granted, 1 refused, 2 usage, 3 log in use, 4 I/O.\n";

static const char usage_grant[] =
    "usage: storectl grant-role --email E --role user|agent|admin\n"
    "\n"
    "Sets the role of the account with that e-mail (customer.role_changed; nothing\n"
    "is recorded when it has the role already). The API applies roles from the\n"
    "account's state on every request, so the change takes effect at once.\n"
    "\n"
    "Example: storectl grant-role --email agent@example.com --role agent\n"
    "Exit status: 0 done, 1 no such account or refused, 2 usage, 3 log in use, 4 I/O.\n";

enum { CMD_NONE = 0, CMD_SEED = 1, CMD_ADMIN = 2, CMD_GRANT = 4, CMD_ALL = 7 };

typedef struct opts {
    int cmd;
    bool help;
    ctl_config ctl;
    const char *file, *email, *name, *password_file, *password_out, *role;
    char email_norm[256]; /* email trimmed and lower-cased */
} opts;

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

/* Which commands take each option (by its short code). */
static int option_cmds(int ch)
{
    switch (ch) {
    case 'f': return CMD_SEED;
    case 'n': case 'p': case 'o': return CMD_ADMIN;
    case 'e': return CMD_ADMIN | CMD_GRANT;
    case 'r': return CMD_GRANT;
    default: return CMD_ALL;
    }
}

static int command_of(const char *name)
{
    if (strcmp(name, "seed-demo") == 0)
        return CMD_SEED;
    if (strcmp(name, "create-admin") == 0)
        return CMD_ADMIN;
    if (strcmp(name, "grant-role") == 0)
        return CMD_GRANT;
    return CMD_NONE;
}

static void store_opt(opts *o, int ch, const char *arg)
{
    switch (ch) {
    case 'l': o->ctl.log_uri = arg; break;
    case 'k': o->ctl.email_key_file = arg; break;
    case 's': o->ctl.snapshot_path = *arg ? arg : NULL; break;
    case 'f': o->file = arg; break;
    case 'e': o->email = arg; break;
    case 'n': o->name = arg; break;
    case 'p': o->password_file = arg; break;
    case 'o': o->password_out = arg; break;
    case 'r': o->role = arg; break;
    default: break;
    }
}

static const struct option long_opts[] = {
    {"log", required_argument, 0, 'l'},           {"email-key-file", required_argument, 0, 'k'},
    {"snapshot", required_argument, 0, 's'},      {"file", required_argument, 0, 'f'},
    {"email", required_argument, 0, 'e'},         {"name", required_argument, 0, 'n'},
    {"password-file", required_argument, 0, 'p'}, {"password-out", required_argument, 0, 'o'},
    {"role", required_argument, 0, 'r'},          {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};

static void set_defaults(opts *o)
{
    memset(o, 0, sizeof *o);
    o->ctl.log_uri = env_or("WATCHSTORE_LOG", "lmdb:var/log");
    o->ctl.email_key_file = env_or("WATCHSTORE_EMAIL_KEY_FILE", "var/secrets/email.key");
    const char *snap = getenv("WATCHSTORE_SNAPSHOT");
    o->ctl.snapshot_path = snap ? (*snap ? snap : NULL) : "var/writer.snapshot";
    o->file = "ops/demo/watches.json";
    o->name = "Store administrator";
}

/* The command named by the one argument that is no option, the options
 * checked against it, the e-mail normalised. 0, or 2 (a sentence printed). */
static int check_args(int argc, char **argv, const bool used[128], opts *o)
{
    if (optind < argc && !(o->cmd = command_of(argv[optind]))) {
        fprintf(stderr, "storectl: unknown command %s (storectl --help lists them)\n", argv[optind]);
        return 2;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "storectl: unexpected argument %s\n", argv[optind + 1]);
        return 2;
    }
    for (const struct option *p = long_opts; o->cmd && p->name; p++) {
        if (used[p->val] && !(option_cmds(p->val) & o->cmd)) {
            fprintf(stderr, "storectl: %s does not take --%s\n", argv[optind], p->name);
            return 2;
        }
    }
    if (o->email && dec_normalise_email(ev_str_c(o->email), o->email_norm, sizeof o->email_norm) < 0) {
        fprintf(stderr, "storectl: %s is not a valid e-mail address\n", o->email);
        return 2;
    }
    if (o->email)
        o->email = o->email_norm;
    return 0;
}

/* Options may stand anywhere on the line. 0, or 2 (a sentence printed). */
static int parse(int argc, char **argv, opts *o)
{
    int ch;
    bool used[128] = {false};
    set_defaults(o);
    while ((ch = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (ch == '?')
            return 2;
        if (ch == 'h')
            o->help = true;
        else
            store_opt(o, ch, optarg);
        used[ch & 127] = true;
    }
    return check_args(argc, argv, used, o);
}

/* ------------------------------------------------------------ the log */

static int open_store(const opts *o, ctl_store *s)
{
    char err[1024];
    ctl_status st = ctl_open(s, &o->ctl, err, sizeof err);
    if (st == CTL_LOCKED)
        fprintf(stderr,
                "storectl: the log %s is in use: %s.\n"
                "storectl writes through the log's one writer, which the API holds while it\n"
                "runs: stop the API (Ctrl-C in ops/run.sh, or stop build/api/api) and run\n"
                "storectl again.\n",
                o->ctl.log_uri, err);
    else if (st)
        fprintf(stderr, "storectl: %s\n", err);
    return st;
}

/* ------------------------------------------------------------ seed-demo */

static int cmd_seed(const opts *o)
{
    char err[2048];
    catfile cat;
    if (catfile_load(o->file, &cat, err, sizeof err) != 0) {
        fprintf(stderr, "storectl: %s\n", err);
        return CTL_ERROR;
    }
    ctl_store s;
    int st = open_store(o, &s);
    if (st) {
        catfile_free(&cat);
        return st;
    }
    size_t have = ctl_watch_count(&s), added = 0;
    if (have) {
        printf("storectl: the store has %zu watches already; the demo catalog was not loaded\n",
               have);
    } else {
        st = ctl_seed(&s, &cat, &added, err, sizeof err);
        if (st)
            fprintf(stderr, "storectl: %s\n", err);
        if (added)
            printf("storectl: added %zu demo watches from %s to %s\n", added, o->file,
                   o->ctl.log_uri);
    }
    ctl_close(&s);
    catfile_free(&cat);
    return st;
}

/* ------------------------------------------------------------ passwords */

/* Reads the password from path ("-": stdin) into pw (PW_MAX_PASSWORD + 1
 * bytes); drops one trailing newline. */
static int read_password(const char *path, char *pw, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        fprintf(stderr, "storectl: cannot read the password file %s: %s\n", path, strerror(errno));
        return CTL_ERROR;
    }
    size_t n = fread(pw, 1, PW_MAX_PASSWORD + 1, f);
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad) {
        fprintf(stderr, "storectl: cannot read the password file %s\n", path);
        return CTL_ERROR;
    }
    if (n && pw[n - 1] == '\n')
        n--;
    if (n && pw[n - 1] == '\r')
        n--;
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += ((unsigned char)pw[i] & 0xc0) != 0x80;
    if (chars < 6 || n > PW_MAX_PASSWORD || memchr(pw, 0, n)) {
        fprintf(stderr, "storectl: the password in %s must have at least 6 characters and at "
                        "most %d bytes, without NUL\n", path, PW_MAX_PASSWORD);
        return CTL_USAGE;
    }
    *len = n;
    return CTL_OK;
}

/* 24 random characters of base64url (144 bits). */
static int random_password(char *pw, size_t *len)
{
    uint8_t raw[18];
    if (RAND_bytes(raw, sizeof raw) != 1 || b64_encode(B64_URL, raw, sizeof raw, pw, 64) != 0) {
        fprintf(stderr, "storectl: no random bytes for a password\n");
        return CTL_ERROR;
    }
    *len = strlen(pw);
    return CTL_OK;
}

/* Writes the password to path, private (mode 600). */
static int write_password(const char *path, const char *pw, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && fchmod(fd, 0600) == 0 && write(fd, pw, len) == (ssize_t)len &&
              write(fd, "\n", 1) == 1;
    int e = errno;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "storectl: cannot write the password to %s: %s\n", path, strerror(e));
        if (fd >= 0)
            unlink(path);
        return CTL_ERROR;
    }
    return CTL_OK;
}

/* ------------------------------------------------------------ accounts */

static int grant(ctl_store *s, const char *email, uint64_t id, uint8_t role, const char *note)
{
    char err[1024];
    bool changed = false;
    int st = ctl_set_role(s, id, role, &changed, err, sizeof err);
    const char *name = ev_enum_name(EV_ENUMSET_role, role);
    if (st)
        fprintf(stderr, "storectl: the role of %s was not set: %s\n", email, err);
    else if (changed)
        printf("storectl: account %llu (%s) now has role %s%s\n", (unsigned long long)id, email,
               name, note);
    else
        printf("storectl: account %llu (%s) has role %s already; nothing recorded%s\n",
               (unsigned long long)id, email, name, note);
    return st;
}

/* Registers the account with a password read or made (and written out
 * when asked); prints a made password once the account exists. */
static int create(const opts *o, ctl_store *s)
{
    char pw[PW_MAX_PASSWORD + 2], hash[PW_HASH_MAX], err[1024];
    size_t len = 0;
    uint64_t id = 0;
    bool written = false;
    int st = o->password_file ? read_password(o->password_file, pw, &len)
                              : random_password(pw, &len);
    if (st == CTL_OK && o->password_out)
        written = (st = write_password(o->password_out, pw, len)) == CTL_OK;
    if (st == CTL_OK && pw_hash(pw, len, hash, sizeof hash) != 0) {
        fprintf(stderr, "storectl: the password could not be hashed\n");
        st = CTL_ERROR;
    }
    if (st == CTL_OK &&
        (st = ctl_register(s, o->email, o->name, hash, EV_role_ADMIN, &id, err, sizeof err)))
        fprintf(stderr, "storectl: the account was not created: %s\n", err);
    if (st && written)
        unlink(o->password_out);
    if (st == CTL_OK) {
        printf("storectl: created account %llu (%s) with role admin\n", (unsigned long long)id,
               o->email);
        if (o->password_out)
            printf("password: in %s (mode 600)\n", o->password_out);
        else if (!o->password_file)
            printf("password: %.*s\n(shown only this once: the store keeps its scrypt hash)\n",
                   (int)len, pw);
    }
    OPENSSL_cleanse(pw, sizeof pw);
    return st;
}

static int cmd_admin(const opts *o)
{
    if (!o->email || (o->password_file && o->password_out)) {
        fputs(o->email ? "storectl: --password-file and --password-out exclude each other\n"
                       : "storectl: create-admin needs --email (see create-admin --help)\n",
              stderr);
        return CTL_USAGE;
    }
    ctl_store s;
    int st = open_store(o, &s);
    if (st)
        return st;
    uint64_t id = 0;
    uint8_t role;
    ctl_status found;
    if (ctl_find(&s, o->email, &id, &role, &found)) {
        st = grant(&s, o->email, id, EV_role_ADMIN,
                   " (an existing account: its password is unchanged)");
    } else if (found == CTL_USAGE) {
        fprintf(stderr, "storectl: %s is not a valid e-mail address\n", o->email);
        st = CTL_USAGE;
    } else {
        st = create(o, &s);
    }
    ctl_close(&s);
    return st;
}

static int cmd_grant(const opts *o)
{
    int role = o->role ? ev_enum_value(EV_ENUMSET_role, o->role, strlen(o->role)) : -1;
    if (!o->email || role < 0) {
        fprintf(stderr, "storectl: grant-role needs --email and --role user|agent|admin\n");
        return CTL_USAGE;
    }
    ctl_store s;
    int st = open_store(o, &s);
    if (st)
        return st;
    uint64_t id = 0;
    uint8_t old;
    ctl_status found;
    if (ctl_find(&s, o->email, &id, &old, &found)) {
        st = grant(&s, o->email, id, (uint8_t)role, "");
    } else if (found == CTL_USAGE) {
        fprintf(stderr, "storectl: %s is not a valid e-mail address\n", o->email);
        st = CTL_USAGE;
    } else {
        fprintf(stderr, "storectl: no account has the e-mail %s\n", o->email);
        st = CTL_REFUSED;
    }
    ctl_close(&s);
    return st;
}

int main(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc) {
        fputs("(storectl --help explains the commands and options)\n", stderr);
        return rc;
    }
    if (o.help || !o.cmd) {
        const char *text = o.cmd == CMD_SEED    ? usage_seed
                           : o.cmd == CMD_ADMIN ? usage_admin
                           : o.cmd == CMD_GRANT ? usage_grant
                                                : usage_top;
        fputs(text, o.help ? stdout : stderr);
        return o.help ? 0 : 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    return o.cmd == CMD_SEED ? cmd_seed(&o) : o.cmd == CMD_ADMIN ? cmd_admin(&o) : cmd_grant(&o);
}
