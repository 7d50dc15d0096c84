/* routes.c - the route table: every route of API.md and its handler.
 * First match wins, so fixed paths come before ":id" ones. */
#include "accounts.h"
#include "admin.h"
#include "api.h"
#include "apidocs.h"
#include "checkout.h"
#include "health.h"
#include "orders.h"
#include "payments.h"
#include "watches.h"

#define R(m, p, h) {m, p, (void *)(h), 0}
#define R_NOCRED(m, p, h) {m, p, (void *)(h), API_NO_CREDENTIALS}
#define R_FLAGS(m, p, h, f) {m, p, (void *)(h), f}

const rt_route api_routes[] = {
    R_FLAGS("GET", "/health", health_live, API_RL_EXEMPT),
    R_FLAGS("GET", "/ready", health_ready, API_RL_EXEMPT),
    R_FLAGS("GET", "/metrics", health_metrics, API_RL_EXEMPT),
    R("GET", "/api-docs", apidocs_serve),
    R("GET", "/api/v1/watches", watches_list),
    R("GET", "/api/v1/watches/brands-summary", watches_brands_summary),
    R("GET", "/api/v1/watches/brands", watches_brands),
    R("GET", "/api/v1/watches/:id", watches_get),
    R_FLAGS("POST", "/api/v1/auth/register", accounts_register, API_NO_CREDENTIALS | API_RL_AUTH),
    R_FLAGS("POST", "/api/v1/auth/login", accounts_login, API_NO_CREDENTIALS | API_RL_AUTH),
    R_FLAGS("POST", "/api/v1/auth/refresh", accounts_refresh, API_NO_CREDENTIALS | API_RL_EXEMPT),
    R_NOCRED("POST", "/api/v1/auth/logout", accounts_logout),
    R("GET", "/api/v1/auth/me", accounts_me),
    R("POST", "/api/v1/orders", orders_place),
    R("POST", "/api/v1/checkout", checkout_place),
    R("GET", "/api/v1/checkout/orders/:id", checkout_get),
    R("GET", "/api/v1/orders/my", orders_mine),
    R("GET", "/api/v1/orders/:id", orders_get),
    R("GET", "/api/v1/admin/orders", admin_orders),
    R("PUT", "/api/v1/admin/orders/:id/status", admin_order_status),
    R("GET", "/api/v1/admin/watches", admin_watches),
    R("POST", "/api/v1/admin/watches", admin_watch_create),
    R("PUT", "/api/v1/admin/watches/:id/stock", admin_watch_stock),
    R("PUT", "/api/v1/admin/watches/:id", admin_watch_update),
    R("GET", "/api/v1/admin/stats", admin_stats),
    R("POST", "/api/v1/stripe/create-payment-intent", pay_stripe_create_intent),
    /* Stripe's deliveries come from a few addresses and are signed: not limited. */
    R_FLAGS("POST", "/api/v1/stripe/webhook", pay_stripe_webhook, API_RL_EXEMPT),
    R("POST", "/api/v1/stripe/confirm-order", pay_stripe_confirm),
    R("POST", "/api/v1/paypal/create-order", pay_paypal_create),
    R("POST", "/api/v1/paypal/capture-order", pay_paypal_capture),
    R("POST", "/api/v1/chat", health_not_implemented),
    R_FLAGS("GET", "/api/v1/chat/:runId", health_not_implemented, API_RL_EXEMPT),
    R("GET", "/api/v1/search", health_not_implemented),
};

const size_t api_n_routes = sizeof api_routes / sizeof api_routes[0];
