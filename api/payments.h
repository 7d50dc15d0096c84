/* payments.h - the payment routes (API.md "Payments"): Stripe's
 * PaymentIntents, its webhook and the confirmation after the browser's
 * payment; PayPal's orders and captures. See payments.c. */
#ifndef WS_PAYMENTS_H
#define WS_PAYMENTS_H

#include "api.h"

/* POST /api/v1/stripe/create-payment-intent */
void pay_stripe_create_intent(api_req *r);
/* POST /api/v1/stripe/webhook */
void pay_stripe_webhook(api_req *r);
/* POST /api/v1/stripe/confirm-order */
void pay_stripe_confirm(api_req *r);
/* POST /api/v1/paypal/create-order */
void pay_paypal_create(api_req *r);
/* POST /api/v1/paypal/capture-order */
void pay_paypal_capture(api_req *r);

#endif
