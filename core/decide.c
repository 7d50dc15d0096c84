/* decide.c - the domain rules (see decide.h). */
#include "decide.h"

#include <stdio.h>
#include <string.h>

const char *dec_reason_code(dec_reason r)
{
    switch (r) {
    case DEC_OK: return "ok";
    case DEC_INVALID: return "validation_failed";
    case DEC_FORBIDDEN: return "forbidden";
    case DEC_NOT_FOUND: return "not_found";
    case DEC_EXISTS: return "already_exists";
    case DEC_EMAIL_TAKEN: return "email_taken";
    case DEC_OUT_OF_STOCK: return "insufficient_stock";
    case DEC_PRICE_CHANGED: return "price_changed";
    case DEC_BAD_TRANSITION: return "invalid_status_transition";
    case DEC_IDEM_MISMATCH: return "idempotency_key_reused";
    }
    return "unknown";
}

static dec_reason refuse(dec_out *o, dec_reason r, const char *field,
                         const char *message)
{
    o->reason = r;
    o->field = field;
    o->message = message;
    o->n_ev = 0;
    return r;
}

/* Writes "<prefix><uuid>" or "<prefix><n>" into buf (48 bytes); returns the
 * length. By hand: snprintf cost a tenth of the writer's time. */
static uint32_t stream_name(char *buf, const char *prefix, const uint8_t *uuid,
                            uint64_t n)
{
    size_t k = strlen(prefix);
    memcpy(buf, prefix, k);
    if (uuid) {
        ev_uuid_format(uuid, buf + k);
        return (uint32_t)(k + 36);
    }
    char digits[20];
    int d = 0;
    do {
        digits[d++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    while (d)
        buf[k++] = digits[--d];
    buf[k] = 0;
    return (uint32_t)k;
}

/* A new event of type t on the stream "<prefix><uuid or n>"; the envelope
 * is filled from the command, and the first event of a command carries its
 * idempotency key. */
static ev_event *emit(dec_out *o, const dec_cmd *c, ev_type t, const char *prefix,
                      const uint8_t *uuid, uint64_t n)
{
    size_t i = o->n_ev++;
    ev_event *e = &o->ev[i];
    memset(e, 0, sizeof *e);
    e->env.type = t;
    e->env.version = ev_type_version(t);
    e->env.stream = (ev_str){o->streams[i], stream_name(o->streams[i], prefix, uuid, n)};
    e->env.recorded_us = c->now_us;
    e->env.correlation = c->correlation;
    e->env.causation = c->causation;
    e->env.actor = c->actor;
    if (i == 0 && c->idem_key.p) {
        e->env.idem_key = c->idem_key;
        memcpy(e->env.idem_fp, c->idem_fp, 16);
    }
    return e;
}

static ev_event *emit_watch(dec_out *o, const dec_cmd *c, ev_type t,
                            const uint8_t id[16])
{
    return emit(o, c, t, "watch-", id, 0);
}

static bool is_admin(const st_state *s, const dec_cmd *c)
{
    if (c->actor_system)
        return true;
    const st_customer *cu = st_customer_get(s, c->actor_customer);
    return cu && cu->role == EV_role_ADMIN;
}

static bool str_ok(ev_str s, uint32_t max) { return s.n <= max && (s.p || !s.n); }

/* Optional strings: empty means null. */
static ev_str opt(ev_str s) { return s.n ? s : (ev_str){NULL, 0}; }

static bool category_ok(ev_str cat)
{
    static const char *const cats[] = {"automatic", "chronograph", "diver",
                                       "sport",     "classic",     "luxury"};
    if (!cat.n)
        return true;
    for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++)
        if (strlen(cats[i]) == cat.n && memcmp(cats[i], cat.p, cat.n) == 0)
            return true;
    return false;
}

static bool currency_ok(ev_str cur)
{
    if (cur.n != 3 || !cur.p)
        return false;
    for (int i = 0; i < 3; i++)
        if (cur.p[i] < 'A' || cur.p[i] > 'Z')
            return false;
    return true;
}

/* ---------------------------------------------------------------- watches */

static dec_reason check_watch_fields(dec_out *o, const dec_watch_fields *w,
                                     uint32_t changed)
{
    if ((changed & EV_WF_NAME) && (!w->watch_name.n || !str_ok(w->watch_name, 255)))
        return refuse(o, DEC_INVALID, "watch_name", "a name of 1 to 255 bytes");
    if ((changed & EV_WF_BRAND) && !str_ok(w->brand, 100))
        return refuse(o, DEC_INVALID, "brand", "at most 100 bytes");
    if ((changed & EV_WF_MODEL_CODE) && !str_ok(w->model_code, 50))
        return refuse(o, DEC_INVALID, "model_code", "at most 50 bytes");
    if ((changed & EV_WF_DESCRIPTION) && !str_ok(w->description, 10000))
        return refuse(o, DEC_INVALID, "description", "at most 10000 bytes");
    if ((changed & EV_WF_IMAGE_URL) && !str_ok(w->image_url, 2000))
        return refuse(o, DEC_INVALID, "image_url", "at most 2000 bytes");
    if ((changed & EV_WF_CATEGORY) && !category_ok(w->category))
        return refuse(o, DEC_INVALID, "category", "not a known category");
    if ((changed & EV_WF_PRICE) && (w->price <= 0 || w->price > DEC_MAX_PRICE))
        return refuse(o, DEC_INVALID, "price", "a price above zero");
    if (w->set_stock && (w->stock < 0 || w->stock > DEC_MAX_STOCK))
        return refuse(o, DEC_INVALID, "stock_quantity", "a stock of zero or more");
    return DEC_OK;
}

static void emit_stock(dec_out *o, const dec_cmd *c, const uint8_t id[16],
                       int64_t delta, int64_t quantity, uint8_t reason,
                       uint64_t order_id, ev_str note)
{
    ev_event *e = emit_watch(o, c, EV_T_STOCK_ADJUSTED, id);
    ev_stock_adjusted *p = &e->u.stock_adjusted;
    memcpy(p->watch_id, id, 16);
    p->delta = delta;
    p->quantity = quantity;
    p->reason = reason;
    p->order_id = order_id;
    p->note = opt(note);
}

static dec_reason watch_add(const st_state *s, const dec_cmd *c, dec_out *o)
{
    const dec_watch_fields *w = &c->u.watch;
    dec_reason r = check_watch_fields(o, w, EV_WF_ALL);
    if (r)
        return r;
    if (!currency_ok(w->currency))
        return refuse(o, DEC_INVALID, "currency", "three capital letters");
    if (st_watch_get(s, w->watch_id))
        return refuse(o, DEC_EXISTS, "watch_id", "a watch with this id exists");
    ev_event *e = emit_watch(o, c, EV_T_WATCH_ADDED, w->watch_id);
    ev_watch_added *p = &e->u.watch_added;
    memcpy(p->watch_id, w->watch_id, 16);
    p->watch_name = w->watch_name;
    p->brand = opt(w->brand);
    p->model_code = opt(w->model_code);
    p->description = opt(w->description);
    p->price = w->price;
    p->currency = w->currency;
    p->stock_quantity = w->set_stock ? w->stock : 0;
    p->image_url = opt(w->image_url);
    p->category = opt(w->category);
    return DEC_OK;
}

static dec_reason watch_update(const st_state *s, const dec_cmd *c, dec_out *o)
{
    const dec_watch_fields *w = &c->u.watch;
    uint32_t ch = w->changed & EV_WF_ALL;
    if (!ch && !w->set_stock)
        return refuse(o, DEC_INVALID, NULL, "No fields to update");
    dec_reason r = check_watch_fields(o, w, ch);
    if (r)
        return r;
    const st_watch *cur = st_watch_get(s, w->watch_id);
    if (!cur)
        return refuse(o, DEC_NOT_FOUND, "watch_id", "Watch not found");
    if (ch) {
        ev_event *e = emit_watch(o, c, EV_T_WATCH_UPDATED, w->watch_id);
        ev_watch_updated *p = &e->u.watch_updated;
        memcpy(p->watch_id, w->watch_id, 16);
        p->changed = ch;
        if (ch & EV_WF_NAME) p->watch_name = w->watch_name;
        if (ch & EV_WF_BRAND) p->brand = opt(w->brand);
        if (ch & EV_WF_MODEL_CODE) p->model_code = opt(w->model_code);
        if (ch & EV_WF_DESCRIPTION) p->description = opt(w->description);
        if (ch & EV_WF_PRICE) p->price = w->price;
        if (ch & EV_WF_IMAGE_URL) p->image_url = opt(w->image_url);
        if (ch & EV_WF_CATEGORY) p->category = opt(w->category);
    }
    if (w->set_stock && w->stock != cur->stock) {
        int64_t d = w->stock - cur->stock;
        emit_stock(o, c, w->watch_id, d, w->stock,
                   d > 0 ? EV_stock_reason_RESTOCK : EV_stock_reason_CORRECTION, 0,
                   (ev_str){NULL, 0});
    }
    o->noop = o->n_ev == 0;
    return DEC_OK;
}

static dec_reason stock_change(const st_state *s, const dec_cmd *c, dec_out *o)
{
    const st_watch *w = st_watch_get(s, c->u.stock.watch_id);
    int64_t q = c->u.stock.quantity, target;
    uint8_t reason;
    if (!str_ok(c->u.stock.note, 500))
        return refuse(o, DEC_INVALID, "note", "at most 500 bytes");
    if (c->kind == DEC_STOCK_SET) {
        if (q < 0 || q > DEC_MAX_STOCK)
            return refuse(o, DEC_INVALID, "stock_quantity", "a stock of zero or more");
        if (!w)
            return refuse(o, DEC_NOT_FOUND, "watch_id", "Watch not found");
        target = q;
        reason = target > w->stock ? EV_stock_reason_RESTOCK : EV_stock_reason_CORRECTION;
    } else {
        reason = c->u.stock.reason;
        if (reason != EV_stock_reason_RESTOCK && reason != EV_stock_reason_CORRECTION)
            return refuse(o, DEC_INVALID, "reason", "restock or correction");
        if (q == 0 || q > DEC_MAX_STOCK || q < -DEC_MAX_STOCK ||
            (reason == EV_stock_reason_RESTOCK && q < 0))
            return refuse(o, DEC_INVALID, "quantity", "a non-zero change (restocks add)");
        if (!w)
            return refuse(o, DEC_NOT_FOUND, "watch_id", "Watch not found");
        target = w->stock + q;
        if (target < 0) {
            o->detail = w->stock;
            return refuse(o, DEC_OUT_OF_STOCK, "quantity", "stock would fall below zero");
        }
        if (target > DEC_MAX_STOCK)
            return refuse(o, DEC_INVALID, "quantity", "stock too large");
    }
    if (target == w->stock) {
        o->noop = true;
        return DEC_OK;
    }
    emit_stock(o, c, w->id, target - w->stock, target, reason, 0, c->u.stock.note);
    return DEC_OK;
}

/* -------------------------------------------------------------- accounts */

int dec_normalise_email(ev_str in, char *buf, size_t cap)
{
    size_t b = 0, e = in.n;
    if (!in.p)
        return -1;
    while (b < e && (in.p[b] == ' ' || in.p[b] == '\t' || in.p[b] == '\n' || in.p[b] == '\r'))
        b++;
    while (e > b && (in.p[e - 1] == ' ' || in.p[e - 1] == '\t' || in.p[e - 1] == '\n' || in.p[e - 1] == '\r'))
        e--;
    size_t n = e - b, at = 0, ats = 0;
    if (n < 3 || n > 254 || n >= cap)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)in.p[b + i];
        if (ch <= ' ' || ch == 0x7f || ch == '<' || ch == '>' || ch == ',' ||
            ch == ';' || ch == '"' || ch == '\\')
            return -1;
        if (ch == '@') {
            at = i;
            ats++;
        }
        buf[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    buf[n] = 0;
    /* one @, something before it, a dot in the domain, not at its ends */
    if (ats != 1 || at == 0 || at + 1 >= n)
        return -1;
    const char *dom = buf + at + 1;
    const char *dot = strchr(dom, '.');
    if (!dot || dot == dom || buf[n - 1] == '.' || strstr(dom, ".."))
        return -1;
    return (int)n;
}

/* Characters (UTF-8 code points) after trimming blanks at both ends. */
static size_t trimmed_chars(ev_str s)
{
    size_t b = 0, e = s.n, n = 0;
    while (b < e && (s.p[b] == ' ' || s.p[b] == '\t'))
        b++;
    while (e > b && (s.p[e - 1] == ' ' || s.p[e - 1] == '\t'))
        e--;
    for (size_t i = b; i < e; i++)
        n += ((unsigned char)s.p[i] & 0xc0) != 0x80;
    return n;
}

static dec_reason customer_register(const st_state *s, const dec_cmd *c, dec_out *o)
{
    int n = dec_normalise_email(c->u.reg.email, o->email, sizeof o->email);
    if (n < 0)
        return refuse(o, DEC_INVALID, "email", "a valid e-mail address");
    if (!c->u.reg.full_name.p || trimmed_chars(c->u.reg.full_name) < 2 ||
        !str_ok(c->u.reg.full_name, 255))
        return refuse(o, DEC_INVALID, "full_name", "a name of at least 2 characters");
    if (!str_ok(c->u.reg.phone, 50))
        return refuse(o, DEC_INVALID, "phone", "at most 50 bytes");
    if (!str_ok(c->u.reg.address, 1000))
        return refuse(o, DEC_INVALID, "address", "at most 1000 bytes");
    if (!str_ok(c->u.reg.city, 100))
        return refuse(o, DEC_INVALID, "city", "at most 100 bytes");
    if (!str_ok(c->u.reg.country, 100))
        return refuse(o, DEC_INVALID, "country", "at most 100 bytes");
    if (!str_ok(c->u.reg.password_hash, 255) ||
        (c->u.reg.password_hash.p && !c->u.reg.password_hash.n))
        return refuse(o, DEC_INVALID, "password", "a password hash");
    ev_str email = {o->email, (uint32_t)n};
    if (st_email_taken(s, email, NULL))
        return refuse(o, DEC_EMAIL_TAKEN, "email", "This e-mail is already registered");
    uint64_t id = s->max_customer_id + 1;
    if (id >= ST_MAX_ID)
        return refuse(o, DEC_INVALID, NULL, "no customer ids left");
    ev_event *e = emit(o, c, EV_T_CUSTOMER_REGISTERED, "customer-", NULL, id);
    ev_customer_registered *p = &e->u.customer_registered;
    p->customer_id = id;
    p->password_hash = c->u.reg.password_hash;
    p->role = EV_role_USER;
    p->email = email;
    p->full_name = c->u.reg.full_name;
    p->phone = opt(c->u.reg.phone);
    p->address = opt(c->u.reg.address);
    p->city = opt(c->u.reg.city);
    p->country = opt(c->u.reg.country);
    o->id = id;
    return DEC_OK;
}

static dec_reason role_set(const st_state *s, const dec_cmd *c, dec_out *o)
{
    if (!is_admin(s, c))
        return refuse(o, DEC_FORBIDDEN, NULL, "only an admin may change roles");
    if (!ev_enum_name(EV_ENUMSET_role, c->u.role.role))
        return refuse(o, DEC_INVALID, "role", "user, agent or admin");
    const st_customer *cu = st_customer_get(s, c->u.role.customer_id);
    if (!cu)
        return refuse(o, DEC_NOT_FOUND, "customer_id", "Customer not found");
    o->id = c->u.role.customer_id;
    if (cu->role == c->u.role.role) {
        o->noop = true;
        return DEC_OK;
    }
    ev_event *e = emit(o, c, EV_T_CUSTOMER_ROLE_CHANGED, "customer-", NULL,
                       c->u.role.customer_id);
    e->u.customer_role_changed.customer_id = c->u.role.customer_id;
    e->u.customer_role_changed.role = c->u.role.role;
    return DEC_OK;
}

/* A password is replaced only where one exists: an account made without one
 * (a guest checkout, with an e-mail nobody proved) never gets one here. */
static dec_reason password_set(const st_state *s, const dec_cmd *c, dec_out *o)
{
    uint64_t id = c->u.password.customer_id;
    ev_str h = c->u.password.password_hash;
    if (!h.p || !h.n || !str_ok(h, 255))
        return refuse(o, DEC_INVALID, "password_hash", "a password hash of 1 to 255 bytes");
    if (!c->u.password.reason.n || !str_ok(c->u.password.reason, 20))
        return refuse(o, DEC_INVALID, "reason", "a reason of 1 to 20 bytes");
    if (!c->actor_system && (!c->actor_customer || c->actor_customer != id))
        return refuse(o, DEC_FORBIDDEN, NULL, "only the customer may change the password");
    const st_customer *cu = st_customer_get(s, id);
    if (!cu)
        return refuse(o, DEC_NOT_FOUND, "customer_id", "Customer not found");
    if (!cu->has_password)
        return refuse(o, DEC_FORBIDDEN, "password_hash", "the account has no password");
    ev_event *e = emit(o, c, EV_T_CUSTOMER_PASSWORD_CHANGED, "customer-", NULL, id);
    e->u.customer_password_changed.customer_id = id;
    e->u.customer_password_changed.password_hash = h;
    e->u.customer_password_changed.reason = c->u.password.reason;
    o->id = id;
    return DEC_OK;
}

/* ---------------------------------------------------------------- orders */

static dec_reason order_place(const st_state *s, const dec_cmd *c, dec_out *o)
{
    uint32_t n = c->u.order.n_lines;
    if (n == 0 || n > EV_MAX_LINES || !c->u.order.lines)
        return refuse(o, DEC_INVALID, "items", "1 to 100 order lines");
    if (!str_ok(c->u.order.shipping_address, 2000))
        return refuse(o, DEC_INVALID, "shipping_address", "at most 2000 bytes");
    if (!str_ok(c->u.order.guest_token_hash, 64))
        return refuse(o, DEC_INVALID, "order_token", "at most 64 bytes");
    if (c->actor_customer && !st_customer_get(s, c->actor_customer))
        return refuse(o, DEC_NOT_FOUND, "customer_id", "Customer not found");
    const st_watch *ws[EV_MAX_LINES];
    int64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        const dec_line_in *l = &c->u.order.lines[i];
        o->index = i;
        if (l->quantity < 1 || l->quantity > DEC_MAX_QTY)
            return refuse(o, DEC_INVALID, "quantity", "a quantity of 1 to 10000");
        if (l->has_price && l->unit_price <= 0)
            return refuse(o, DEC_INVALID, "unit_price", "a price above zero");
        if (!(ws[i] = st_watch_get(s, l->watch_id)))
            return refuse(o, DEC_NOT_FOUND, "watch_id", "Watch not found");
        if (l->has_price && l->unit_price != ws[i]->price) {
            o->detail = ws[i]->price;
            return refuse(o, DEC_PRICE_CHANGED, "unit_price",
                          "the price has changed: remove the item and add it again");
        }
        if (memcmp(ws[i]->currency, ws[0]->currency, 3) != 0)
            return refuse(o, DEC_INVALID, "items", "all items in one currency");
        /* Stock: this line plus earlier lines for the same watch. */
        int64_t want = l->quantity;
        for (uint32_t k = 0; k < i; k++)
            if (ws[k] == ws[i])
                want += c->u.order.lines[k].quantity;
        if (want > ws[i]->stock) {
            int64_t avail = ws[i]->stock - (want - l->quantity);
            o->detail = avail;
            return refuse(o, DEC_OUT_OF_STOCK, "quantity", "Insufficient stock");
        }
        total += ws[i]->price * l->quantity;
        if (total > DEC_MAX_TOTAL)
            return refuse(o, DEC_INVALID, "items", "an order total of at most 99,999,999.99");
    }
    if (c->u.order.currency.p &&
        (c->u.order.currency.n != 3 || memcmp(c->u.order.currency.p, ws[0]->currency, 3)))
        return refuse(o, DEC_INVALID, "currency", "the catalogue's currency");
    uint64_t id = s->max_order_id + 1;
    if (id >= ST_MAX_ID)
        return refuse(o, DEC_INVALID, NULL, "no order ids left");
    o->index = 0;
    ev_event *e = emit(o, c, EV_T_ORDER_PLACED, "order-", NULL, id);
    ev_order_placed *p = &e->u.order_placed;
    p->order_id = id;
    p->customer_id = c->actor_customer;
    p->currency = (ev_str){ws[0]->currency, 3};
    p->total = total;
    for (uint32_t i = 0; i < n; i++) {
        ev_line *l = &o->lines[i];
        memcpy(l->watch_id, ws[i]->id, 16);
        l->quantity = c->u.order.lines[i].quantity;
        l->unit_price = ws[i]->price;
        l->subtotal = ws[i]->price * l->quantity;
    }
    p->lines = (ev_lines){o->lines, n};
    p->guest_token_hash = opt(c->u.order.guest_token_hash);
    p->shipping_address = c->u.order.shipping_address.p ? c->u.order.shipping_address
                                                        : EV_STR("");
    for (uint32_t i = 0; i < n; i++) {
        int64_t left = ws[i]->stock;
        for (uint32_t k = 0; k <= i; k++)
            if (ws[k] == ws[i])
                left -= c->u.order.lines[k].quantity;
        emit_stock(o, c, ws[i]->id, -c->u.order.lines[i].quantity, left,
                   EV_stock_reason_SALE, id, (ev_str){NULL, 0});
    }
    o->id = id;
    o->total = total;
    return DEC_OK;
}

static bool may_move(uint8_t from, uint8_t to)
{
    switch (from) {
    case EV_order_status_PENDING:
        return to == EV_order_status_PROCESSING || to == EV_order_status_CANCELLED;
    case EV_order_status_PROCESSING:
        return to == EV_order_status_SHIPPED || to == EV_order_status_CANCELLED;
    case EV_order_status_SHIPPED: return to == EV_order_status_DELIVERED;
    default: return false;
    }
}

static void emit_cancel(const st_state *s, const dec_cmd *c, dec_out *o,
                        const st_order *ord, uint64_t id, ev_str reason)
{
    ev_event *e = emit(o, c, EV_T_ORDER_CANCELLED, "order-", NULL, id);
    e->u.order_cancelled.order_id = id;
    e->u.order_cancelled.from = ord->status;
    e->u.order_cancelled.reason = opt(reason);
    /* Stock goes back line by line; lines for one watch add up. */
    for (uint16_t i = 0; i < ord->n_lines; i++) {
        const st_line *l = &s->lines[ord->line_off + i];
        const st_watch *w = &s->watches[l->watch];
        int64_t q = w->stock;
        for (uint16_t k = 0; k <= i; k++)
            if (s->lines[ord->line_off + k].watch == l->watch)
                q += s->lines[ord->line_off + k].qty;
        emit_stock(o, c, w->id, l->qty, q, EV_stock_reason_CANCELLATION, id,
                   (ev_str){NULL, 0});
    }
}

static dec_reason order_status(const st_state *s, const dec_cmd *c, dec_out *o)
{
    uint64_t id = c->u.status.order_id;
    uint8_t to = c->u.status.status;
    bool cancel = c->kind == DEC_ORDER_CANCEL;
    if (cancel)
        to = EV_order_status_CANCELLED;
    else if (!ev_enum_name(EV_ENUMSET_order_status, to))
        return refuse(o, DEC_INVALID, "status", "a known order status");
    if (!str_ok(c->u.status.reason, 500))
        return refuse(o, DEC_INVALID, "reason", "at most 500 bytes");
    const st_order *ord = st_order_get(s, id);
    /* Admins move any order; a customer may only cancel their own, and
     * learns nothing about orders that are not theirs. */
    bool owner = ord && ord->customer_id && ord->customer_id == c->actor_customer;
    if (!is_admin(s, c) && !cancel)
        return refuse(o, DEC_FORBIDDEN, NULL, "admin only");
    if (!is_admin(s, c) && !owner)
        return refuse(o, DEC_NOT_FOUND, "order_id", "Order not found");
    if (!ord)
        return refuse(o, DEC_NOT_FOUND, "order_id", "Order not found");
    o->id = id;
    o->total = ord->total;
    o->status = ord->status;
    if (ord->status == to) {
        o->noop = true;
        return DEC_OK;
    }
    if (!may_move(ord->status, to))
        return refuse(o, DEC_BAD_TRANSITION, "status", "this status change is not allowed");
    if (to == EV_order_status_CANCELLED) {
        emit_cancel(s, c, o, ord, id, c->u.status.reason);
    } else {
        ev_event *e = emit(o, c, EV_T_ORDER_STATUS_CHANGED, "order-", NULL, id);
        e->u.order_status_changed.order_id = id;
        e->u.order_status_changed.from = ord->status;
        e->u.order_status_changed.to = to;
    }
    o->status = to;
    return DEC_OK;
}

/* -------------------------------------------------------------- payments */

static dec_reason check_pay(const dec_cmd *c, dec_out *o, bool event_id)
{
    if (!c->u.pay.provider.n || !str_ok(c->u.pay.provider, 20))
        return refuse(o, DEC_INVALID, "provider", "a provider name");
    if (!c->u.pay.intent_id.n || !str_ok(c->u.pay.intent_id, 255))
        return refuse(o, DEC_INVALID, "payment_intent_id", "an intent id");
    if (event_id && (!c->u.pay.provider_event_id.n || !str_ok(c->u.pay.provider_event_id, 255)))
        return refuse(o, DEC_INVALID, "provider_event_id", "the provider's event id");
    if (!str_ok(c->u.pay.reason, 500))
        return refuse(o, DEC_INVALID, "reason", "at most 500 bytes");
    return DEC_OK;
}

static ev_event *emit_order(dec_out *o, const dec_cmd *c, ev_type t, uint64_t id)
{
    return emit(o, c, t, "order-", NULL, id);
}

static dec_reason payment(const st_state *s, const dec_cmd *c, dec_out *o)
{
    bool has_event = c->kind != DEC_PAYMENT_INTENT;
    dec_reason r = check_pay(c, o, has_event);
    if (r)
        return r;
    uint64_t id = c->u.pay.order_id;
    const st_order *ord = st_order_get(s, id);
    if (!ord)
        return refuse(o, DEC_NOT_FOUND, "order_id", "Order not found");
    o->id = id;
    o->total = ord->total;
    o->status = ord->status;
    if (has_event && st_payment_seen(s, c->u.pay.provider_event_id)) {
        o->noop = true; /* the provider retried: already recorded */
        return DEC_OK;
    }
    ev_str cur = c->u.pay.currency.p ? c->u.pay.currency : (ev_str){ord->currency, 3};
    if (c->kind == DEC_PAYMENT_INTENT) {
        if (ord->status == EV_order_status_CANCELLED)
            return refuse(o, DEC_BAD_TRANSITION, "order_id", "the order is cancelled");
        ev_event *e = emit_order(o, c, EV_T_PAYMENT_INTENT_CREATED, id);
        ev_payment_intent_created *p = &e->u.payment_intent_created;
        p->order_id = id;
        p->provider = c->u.pay.provider;
        p->intent_id = c->u.pay.intent_id;
        p->amount = ord->total; /* the stored total, whatever the client said */
        p->currency = (ev_str){ord->currency, 3};
        return DEC_OK;
    }
    if (c->kind == DEC_PAYMENT_FAILED) {
        ev_event *e = emit_order(o, c, EV_T_PAYMENT_FAILED, id);
        ev_payment_failed *p = &e->u.payment_failed;
        p->order_id = id;
        p->provider = c->u.pay.provider;
        p->intent_id = c->u.pay.intent_id;
        p->provider_event_id = c->u.pay.provider_event_id;
        p->reason = opt(c->u.pay.reason);
        return DEC_OK;
    }
    bool same_cur = cur.n == 3 && strncasecmp(cur.p, ord->currency, 3) == 0;
    if (c->u.pay.amount != ord->total || !same_cur) {
        ev_event *e = emit_order(o, c, EV_T_PAYMENT_MISMATCHED, id);
        ev_payment_mismatched *p = &e->u.payment_mismatched;
        p->order_id = id;
        p->provider = c->u.pay.provider;
        p->intent_id = c->u.pay.intent_id;
        p->provider_event_id = c->u.pay.provider_event_id;
        p->amount = c->u.pay.amount;
        p->currency = cur.n == 3 ? cur : (ev_str){ord->currency, 3};
        p->expected = ord->total;
        return DEC_OK;
    }
    ev_event *e = emit_order(o, c, EV_T_PAYMENT_SUCCEEDED, id);
    ev_payment_succeeded *p = &e->u.payment_succeeded;
    p->order_id = id;
    p->provider = c->u.pay.provider;
    p->intent_id = c->u.pay.intent_id;
    p->provider_event_id = c->u.pay.provider_event_id;
    p->amount = c->u.pay.amount;
    p->currency = (ev_str){ord->currency, 3};
    if (ord->status == EV_order_status_PENDING) {
        e = emit_order(o, c, EV_T_ORDER_STATUS_CHANGED, id);
        e->u.order_status_changed.order_id = id;
        e->u.order_status_changed.from = EV_order_status_PENDING;
        e->u.order_status_changed.to = EV_order_status_PROCESSING;
        o->status = EV_order_status_PROCESSING;
    }
    return DEC_OK;
}

/* ---------------------------------------------------------------- tokens */

static bool hex64(ev_str s)
{
    if (s.n != 64 || !s.p)
        return false;
    for (int i = 0; i < 64; i++) {
        char ch = s.p[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return false;
    }
    return true;
}

static dec_reason token(const st_state *s, const dec_cmd *c, dec_out *o)
{
    ev_str th = c->u.token.token_hash;
    if (!hex64(th))
        return refuse(o, DEC_INVALID, "token_hash", "64 lower-case hex digits");
    uint64_t owner;
    bool revoked;
    bool known = st_token_get(s, th, &owner, &revoked);
    if (c->kind == DEC_TOKEN_ISSUE) {
        uint64_t cid = c->u.token.customer_id;
        if (!st_customer_get(s, cid))
            return refuse(o, DEC_NOT_FOUND, "customer_id", "Customer not found");
        if (known)
            return refuse(o, DEC_EXISTS, "token_hash", "token already issued");
        if (c->u.token.replaces.p && !hex64(c->u.token.replaces))
            return refuse(o, DEC_INVALID, "replaces", "64 lower-case hex digits");
        ev_event *e = emit(o, c, EV_T_TOKEN_ISSUED, "customer-", NULL, cid);
        e->u.token_issued.customer_id = cid;
        e->u.token_issued.token_hash = th;
        e->u.token_issued.expires_at = c->u.token.expires_at;
        e->u.token_issued.replaces = opt(c->u.token.replaces);
        o->id = cid;
        return DEC_OK;
    }
    if (!known)
        return refuse(o, DEC_NOT_FOUND, "token_hash", "unknown token");
    if (!c->u.token.reason.n || !str_ok(c->u.token.reason, 20))
        return refuse(o, DEC_INVALID, "reason", "a reason of 1 to 20 bytes");
    o->id = owner;
    if (revoked) {
        o->noop = true;
        return DEC_OK;
    }
    ev_event *e = emit(o, c, EV_T_TOKEN_REVOKED, "customer-", NULL, owner);
    e->u.token_revoked.customer_id = owner;
    e->u.token_revoked.token_hash = th;
    e->u.token_revoked.reason = c->u.token.reason;
    return DEC_OK;
}

/* ------------------------------------------------------------- dispatch */

void dec_out_clear(dec_out *o)
{
    o->reason = DEC_OK;
    o->field = o->message = NULL;
    o->index = 0;
    o->detail = 0;
    o->status = 0;
    o->repeat = o->noop = false;
    o->id = 0;
    o->total = 0;
    o->first_pos = o->last_pos = 0;
    o->n_ev = 0;
}

dec_reason dec_decide(const st_state *s, const dec_cmd *c, dec_out *o)
{
    dec_out_clear(o);
    if (!str_ok(c->correlation, EV_MAX_ID_STR) || !str_ok(c->causation, EV_MAX_ID_STR) ||
        !str_ok(c->actor, EV_MAX_ID_STR) || !str_ok(c->idem_key, EV_MAX_ID_STR))
        return refuse(o, DEC_INVALID, "envelope", "ids of at most 128 bytes");
    if (c->idem_key.p) {
        const st_idem *r = st_idem_get(s, c->idem_key);
        if (r) {
            if (memcmp(r->fp, c->idem_fp, 16) != 0)
                return refuse(o, DEC_IDEM_MISMATCH, "Idempotency-Key",
                              "this key was used for another request");
            o->repeat = true;
            o->id = r->result_id;
            o->total = r->total;
            o->first_pos = r->first_pos;
            o->last_pos = r->last_pos;
            return DEC_OK;
        }
    }
    dec_reason r;
    switch (c->kind) {
    case DEC_WATCH_ADD:
    case DEC_WATCH_UPDATE:
    case DEC_STOCK_SET:
    case DEC_STOCK_ADJUST:
        if (!is_admin(s, c))
            return refuse(o, DEC_FORBIDDEN, NULL, "admin only");
        r = c->kind == DEC_WATCH_ADD      ? watch_add(s, c, o)
            : c->kind == DEC_WATCH_UPDATE ? watch_update(s, c, o)
                                          : stock_change(s, c, o);
        break;
    case DEC_CUSTOMER_REGISTER: r = customer_register(s, c, o); break;
    case DEC_ROLE_SET: r = role_set(s, c, o); break;
    case DEC_ORDER_PLACE: r = order_place(s, c, o); break;
    case DEC_ORDER_SET_STATUS:
    case DEC_ORDER_CANCEL: r = order_status(s, c, o); break;
    case DEC_PAYMENT_INTENT:
    case DEC_PAYMENT_SUCCEEDED:
    case DEC_PAYMENT_FAILED: r = payment(s, c, o); break;
    case DEC_TOKEN_ISSUE:
    case DEC_TOKEN_REVOKE: r = token(s, c, o); break;
    case DEC_PASSWORD_SET: r = password_set(s, c, o); break;
    default: r = refuse(o, DEC_INVALID, "kind", "unknown command");
    }
    return r;
}
