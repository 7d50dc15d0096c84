/* support.c - helpers shared by the core tests. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include "support.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const uint8_t ts_email_key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

void ts_tmpdir(char *buf, size_t cap)
{
    const char *t = getenv("TMPDIR");
    snprintf(buf, cap, "%s/wstest.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(buf))
        abort();
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void ts_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

dec_cmd ts_cmd(dec_kind kind, uint64_t now_us)
{
    dec_cmd c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.now_us = now_us;
    c.correlation = EV_STR("test-correlation");
    c.causation = EV_STR("test-command");
    c.actor = EV_STR("system");
    c.actor_system = true;
    return c;
}

void ts_watch_id(unsigned i, uint8_t id[16])
{
    memset(id, 0, 16);
    id[0] = 0x5e;
    id[14] = (uint8_t)(i >> 8);
    id[15] = (uint8_t)i;
}

/* One command of the mix into r (lines: room for its order lines). */
static void grow_one(wr_req *r, dec_line_in *lines, const st_state *st, unsigned *seed,
                     unsigned step, unsigned n_watches)
{
    memset(r, 0, sizeof *r);
    r->cmd = ts_cmd(DEC_ORDER_PLACE, 1764057600000000ull + step * 1000ull);
    r->cmd.causation = (ev_str){NULL, 0};
    unsigned x = rand_r(seed) % 20;
    if (x < 14) {
        unsigned k = 1 + rand_r(seed) % 3;
        for (unsigned i = 0; i < k; i++) {
            ts_watch_id(rand_r(seed) % n_watches, lines[i].watch_id);
            lines[i].quantity = 1 + rand_r(seed) % 2;
        }
        r->cmd.u.order.lines = lines;
        r->cmd.u.order.n_lines = k;
        r->cmd.u.order.shipping_address = EV_STR("Bahnhofstrasse 1, Zurich");
    } else if (x < 18 && st->max_order_id) {
        r->cmd.kind = x < 17 ? DEC_ORDER_SET_STATUS : DEC_ORDER_CANCEL;
        r->cmd.u.status.order_id = 1 + rand_r(seed) % st->max_order_id;
        r->cmd.u.status.status = (uint8_t)(1 + rand_r(seed) % 3);
    } else {
        r->cmd.kind = DEC_STOCK_ADJUST;
        ts_watch_id(rand_r(seed) % n_watches, r->cmd.u.stock.watch_id);
        r->cmd.u.stock.quantity = 5;
        r->cmd.u.stock.reason = EV_stock_reason_RESTOCK;
    }
}

int ts_grow_log(wr_writer *w, unsigned events, unsigned *seed, unsigned step0,
                unsigned n_watches)
{
    static wr_req reqs[512];
    static dec_line_in lines[512][3];
    wr_req *ptr[512];
    const st_state *st = wr_state(w);
    unsigned made = 0, step = step0;
    while (made < events) {
        unsigned n = 0;
        for (; n < 512; n++, step++) {
            wr_req *r = &reqs[n];
            ptr[n] = r;
            if (st->n_watches + n < n_watches) {
                memset(r, 0, sizeof *r);
                r->cmd = ts_cmd(DEC_WATCH_ADD, 1764057600000000ull + step * 1000ull);
                r->cmd.causation = (ev_str){NULL, 0};
                ts_watch_id(st->n_watches + n, r->cmd.u.watch.watch_id);
                r->cmd.u.watch.watch_name = EV_STR("Field watch");
                r->cmd.u.watch.brand = EV_STR("Citizen");
                r->cmd.u.watch.price = 15000 + (int64_t)n * 100;
                r->cmd.u.watch.currency = EV_STR("USD");
                r->cmd.u.watch.set_stock = true;
                r->cmd.u.watch.stock = 1000000;
                continue;
            }
            grow_one(r, lines[n], st, seed, step, n_watches);
        }
        if (wr_process(w, ptr, n) != 0)
            return -1;
        for (unsigned i = 0; i < n; i++)
            made += (unsigned)reqs[i].out.n_ev;
    }
    return 0;
}
