/* paypal_api.h - the calls the store makes to PayPal's REST API (Orders
 * v2), and reading the order objects it answers with.
 *
 * Owns the wire shapes: an OAuth2 client-credentials token from
 * {base}/v1/oauth2/token (HTTP basic with the client id and secret) for
 * each call (tokens are not kept: nothing is shared between threads);
 * POST {base}/v2/checkout/orders (intent CAPTURE, one purchase unit with
 * amount {currency_code, value "395.00"} and custom_id = the store's order
 * id); POST {base}/v2/checkout/orders/{id}/capture, and when PayPal refuses
 * it with 422 (already captured, not approved) the order as it stands
 * (GET {base}/v2/checkout/orders/{id}), so a retried capture still learns
 * the outcome; PayPal-Request-Id headers derived from the store's order
 * and amount (create) or PayPal's order id (capture) make retries safe;
 * PayPal's error objects ({"name","details":[{"issue"}]}, OAuth's
 * {"error"}).
 *
 * Blocking (http_out.h): call from libuv's thread pool, never a loop.
 */
#ifndef WS_PAYPAL_API_H
#define WS_PAYPAL_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "http_out.h"

typedef struct paypal_api {
    const char *base; /* "https://api-m.sandbox.paypal.com"; a trailing '/' is fine */
    const char *client_id, *client_secret;
    long timeout_ms;  /* per exchange; 0: http_out's default */
} paypal_api;

typedef struct paypal_api_order {
    char id[256];             /* PayPal's order id */
    char status[40];          /* the order's: CREATED, APPROVED, COMPLETED, ... */
    char capture_id[256];     /* the first capture's id, "" if none */
    char capture_status[40];  /* COMPLETED, PENDING, DECLINED, ... "" if none */
    int64_t amount;           /* minor units: the capture's, else the unit's; -1 unknown */
    char currency[4];         /* upper case, as PayPal writes it; "" unknown */
    char custom_id[128];      /* the store's order id, as sent; "" if none */
} paypal_api_order;

/* Whether id (n bytes) can be a PayPal id: 1 to 255 of [A-Za-z0-9_-]. */
bool paypal_api_id_ok(const char *id, size_t n);

/* "395.00" (or "395", "395.5") into minor units; false for anything else. */
bool paypal_api_parse_value(const char *s, int64_t *out);

/* Creates an order for `amount` minor units of `currency` (3 letters, sent
 * upper-cased) for store order `order_id`. */
hout_outcome paypal_api_create_order(const paypal_api *p, uint64_t order_id, int64_t amount,
                                     const char *currency, paypal_api_order *out,
                                     hout_error *err);

/* Captures PayPal order `id` (HOUT_NOT_FOUND: PayPal does not know it).
 * HOUT_OK means PayPal said where the order stands: see
 * paypal_api_completed. */
hout_outcome paypal_api_capture(const paypal_api *p, const char *id, paypal_api_order *out,
                                hout_error *err);

/* The order is COMPLETED and so is its capture (when it names one). */
bool paypal_api_completed(const paypal_api_order *o);

/* Reads an order object; false if it is not one (no usable id). */
bool paypal_api_read_order(json_t *obj, paypal_api_order *out);

#endif
