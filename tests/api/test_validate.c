/* test_validate.c - api/validate.c: request bodies validated field by field
 * with API.md's rules.
 *
 * Per kind of field: valid values, missing (required and optional), "" for
 * optional, wrong types, numeric strings and JSON numbers, limits at their
 * boundaries, control characters, long strings. Then the body as a whole
 * (not JSON, not an object, invalid UTF-8, deep nesting), nested paths,
 * several failing fields at once, and at the end one realistic body per
 * route of API.md that has one, validated the way its handler will.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

/* ------------------------------------------------------------ harness */

static val_ctx V;
static json_t *ROOT;

static void setup(void)
{
    val_init(&V);
    ROOT = NULL;
}

static void teardown(void)
{
    json_decref(ROOT);
    val_free(&V);
}

TestSuite(val, .init = setup, .fini = teardown);

/* Parses `json` into ROOT (a fresh context each time); it must be valid. */
static json_t *body(const char *json)
{
    json_decref(ROOT);
    val_free(&V);
    ROOT = NULL;
    cr_assert(val_parse(json, strlen(json), &ROOT, &V), "refused: %s", json);
    cr_assert(!val_failed(&V));
    return ROOT;
}

/* {"f": <value>} */
static json_t *field(const char *value)
{
    char buf[512];
    snprintf(buf, sizeof buf, "{\"f\":%s}", value);
    return body(buf);
}

static size_t n_details(void)
{
    return json_array_size(V.details);
}

/* Detail i has this path (compact JSON) and code, and a message. */
static void expect(size_t i, const char *path, const char *code)
{
    cr_assert(val_failed(&V));
    json_t *d = json_array_get(V.details, i);
    cr_assert(d, "no detail %zu (%zu details)", i, n_details());
    char *p = json_dumps(json_object_get(d, "path"), JSON_COMPACT);
    const char *c = json_string_value(json_object_get(d, "code"));
    const char *m = json_string_value(json_object_get(d, "message"));
    cr_assert(p && strcmp(p, path) == 0, "detail %zu path %s, want %s", i, p, path);
    cr_assert(c && strcmp(c, code) == 0, "detail %zu code %s, want %s (%s)", i, c, code, m);
    cr_assert(m && *m, "detail %zu has no message", i);
    free(p);
}

static void expect_only(const char *path, const char *code)
{
    cr_assert_eq(n_details(), 1, "%zu details, want 1", n_details());
    expect(0, path, code);
}

static void expect_none(void)
{
    cr_assert(!val_failed(&V), "unexpected failure");
    cr_assert_eq(n_details(), 0);
}

/* A body refused as a whole. */
static void refused_raw(const char *raw, size_t len, const char *code)
{
    json_t *root = (json_t *)1;
    val_ctx v;
    val_init(&v);
    cr_assert(!val_parse(raw, len, &root, &v));
    cr_assert_null(root);
    cr_assert(val_failed(&v));
    cr_assert_eq(json_array_size(v.details), 1);
    json_t *d = json_array_get(v.details, 0);
    char *p = json_dumps(json_object_get(d, "path"), JSON_COMPACT);
    const char *c = json_string_value(json_object_get(d, "code"));
    cr_assert_str_eq(p, "[]");
    cr_assert(c && strcmp(c, code) == 0, "code %s, want %s for %.40s", c, code, raw);
    free(p);
    val_free(&v);
}

static void refused(const char *raw, const char *code)
{
    refused_raw(raw, strlen(raw), code);
}

static bool str_eq(ev_str s, const char *want)
{
    return s.p && s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

/* ------------------------------------------------------------ the body */

Test(val, parse_object)
{
    json_t *r = body("  {\"a\": 1, \"unknown\": [1, {\"x\": null}]} \n");
    cr_assert(json_is_object(r));
    expect_none();
}

Test(val, parse_not_an_object)
{
    refused("[]", "not_an_object");
    refused("[{\"email\":\"a@b.co\"}]", "not_an_object");
    refused("42", "not_an_object");
    refused("\"text\"", "not_an_object");
    refused("null", "not_an_object");
    refused("true", "not_an_object");
}

Test(val, parse_not_json)
{
    refused("", "invalid_json");
    refused("   ", "invalid_json");
    refused("garbage", "invalid_json");
    refused("{\"a\":1", "invalid_json");
    refused("{\"a\":1}}", "invalid_json");
    refused("{\"a\":1} x", "invalid_json");
    refused("{'a':1}", "invalid_json");
    refused("{\"a\":NaN}", "invalid_json");
    refused("{\"a\":Infinity}", "invalid_json");
    refused("{\"a\":01}", "invalid_json");
    refused("{\"a\":\"\\ud800\"}", "invalid_json");
    refused("{\"a\":\"tab\there\"}", "invalid_json"); /* raw control byte */
    refused_raw("{\"a\":\"x\0y\"}", 11, "invalid_json");
    refused_raw("{\"a\":1}\0", 8, "invalid_json");
    refused_raw(NULL, 0, "invalid_json");
    refused("\xef\xbb\xbf{}", "invalid_json"); /* a byte-order mark */
}

Test(val, parse_invalid_utf8)
{
    refused("{\"full_name\":\"Jos\xe9\"}", "invalid_utf8");        /* Latin-1 */
    refused("{\"full_name\":\"\xc3\x28\"}", "invalid_utf8");        /* bad continuation */
    refused("{\"full_name\":\"\xc0\xaf\"}", "invalid_utf8");        /* overlong */
    refused("{\"full_name\":\"\xed\xa0\x80\"}", "invalid_utf8");    /* a surrogate */
    refused("{\"full_name\":\"\xf4\x90\x80\x80\"}", "invalid_utf8"); /* > U+10FFFF */
    refused("{\"na\xffme\":\"x\"}", "invalid_utf8");                 /* in a key */
    refused("{\"a\":\"ok\"}\xff", "invalid_utf8");
}

Test(val, parse_huge_numbers)
{
    refused("{\"amount\":1e400}", "out_of_range");
    refused("{\"quantity\":18446744073709551616}", "out_of_range");
    refused("{\"quantity\":-1e999}", "out_of_range");
}

static char *nested(size_t levels, char open, char close, const char *inner)
{
    size_t n = strlen(inner);
    char *s = malloc(levels * 2 + n + 1);
    memset(s, open, levels);
    memcpy(s + levels, inner, n);
    memset(s + levels + n, close, levels);
    s[levels * 2 + n] = '\0';
    return s;
}

Test(val, parse_deep_nesting)
{
    char *s = nested(1000, '[', ']', "");
    refused(s, "too_deep");
    free(s);
    /* 1000 levels of objects: {"a":{"a":...}} */
    size_t levels = 1000;
    char *o = malloc(levels * 6 + 8);
    size_t k = 0;
    for (size_t i = 0; i < levels; i++)
        k += (size_t)sprintf(o + k, "{\"a\":");
    k += (size_t)sprintf(o + k, "1");
    for (size_t i = 0; i < levels; i++)
        o[k++] = '}';
    o[k] = '\0';
    refused(o, "too_deep");
    free(o);
    /* unbalanced garbage of brackets is refused too, without a crash */
    s = nested(100000, '[', '}', "");
    refused(s, "too_deep");
    free(s);
}

Test(val, parse_depth_boundary)
{
    /* VAL_MAX_DEPTH levels: the object and 31 arrays inside */
    char *s = nested(VAL_MAX_DEPTH - 1, '[', ']', "1");
    char buf[256];
    snprintf(buf, sizeof buf, "{\"a\":%s}", s);
    body(buf);
    free(s);
    s = nested(VAL_MAX_DEPTH, '[', ']', "1");
    snprintf(buf, sizeof buf, "{\"a\":%s}", s);
    refused(buf, "too_deep");
    free(s);
    /* brackets inside strings (escaped quotes included) do not count */
    s = nested(200, '[', '{', "");
    snprintf(buf, sizeof buf, "{\"a\":\"\\\"%.200s\\\\\"}", s);
    body(buf);
    free(s);
}

Test(val, parse_too_large)
{
    size_t n = VAL_MAX_BODY + 1;
    char *s = malloc(n + 1);
    memset(s, ' ', n);
    s[0] = '{';
    s[n - 1] = '}';
    s[n] = '\0';
    refused(s, "too_large");
    free(s);
}

Test(val, parse_duplicates_last_wins)
{
    json_t *r = body("{\"q\":1,\"q\":2}");
    int64_t q = 0;
    cr_assert(val_int(&V, r, "q", VAL_REQUIRED, 1, 10, &q));
    cr_assert_eq(q, 2);
}

Test(val, error_json_shape)
{
    json_t *r = body("{}");
    ev_str email;
    cr_assert(!val_email(&V, r, "email", VAL_REQUIRED, &email));
    char *s = val_error_json(&V);
    cr_assert_str_eq(s, "{\"error\":\"Validation failed\",\"code\":\"validation_failed\","
                        "\"details\":[{\"path\":[\"email\"],\"message\":\"is required\","
                        "\"code\":\"required\"}]}");
    free(s);
}

Test(val, error_json_for_a_bad_body)
{
    val_ctx v;
    val_init(&v);
    json_t *root;
    cr_assert(!val_parse("nope", 4, &root, &v));
    char *s = val_error_json(&v);
    json_t *j = json_loads(s, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(j, "code")), "validation_failed");
    json_t *d = json_array_get(json_object_get(j, "details"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(d, "code")), "invalid_json");
    cr_assert_eq(json_array_size(json_object_get(d, "path")), 0);
    json_decref(j);
    free(s);
    val_free(&v);
}

/* ------------------------------------------------------------- strings */

Test(val, str_valid)
{
    json_t *r = field("\"Grand Seiko\"");
    ev_str s = {0};
    cr_assert(val_str(&V, r, "f", VAL_REQUIRED, 2, 255, &s));
    cr_assert(str_eq(s, "Grand Seiko"));
    expect_none();
}

Test(val, str_missing)
{
    json_t *r = body("{\"other\":\"x\"}");
    ev_str s = {0};
    cr_assert(!val_str(&V, r, "f", VAL_OPTIONAL, 0, 10, &s));
    expect_none();
    cr_assert(!val_str(&V, r, "f", VAL_REQUIRED, 0, 10, &s));
    expect_only("[\"f\"]", "required");
    cr_assert_null(s.p);
}

Test(val, str_empty_and_null)
{
    ev_str s = {0};
    json_t *r = field("\"\"");
    cr_assert(!val_str(&V, r, "f", VAL_OPTIONAL, 2, 10, &s)); /* not given */
    expect_none();
    cr_assert(val_str(&V, r, "f", VAL_OPTIONAL | VAL_EMPTY, 2, 10, &s)); /* "clear it" */
    cr_assert(s.p && s.n == 0);
    expect_none();
    cr_assert(!val_str(&V, r, "f", VAL_REQUIRED, 2, 10, &s));
    expect_only("[\"f\"]", "required");

    r = field("null");
    cr_assert(!val_str(&V, r, "f", VAL_OPTIONAL, 2, 10, &s));
    expect_none();
    s = (ev_str){0};
    cr_assert(val_str(&V, r, "f", VAL_OPTIONAL | VAL_EMPTY, 2, 10, &s));
    cr_assert_eq(s.n, 0);
    cr_assert(!val_str(&V, r, "f", VAL_REQUIRED, 2, 10, &s));
    expect_only("[\"f\"]", "required");

    r = body("{}"); /* VAL_EMPTY does not make an absent member present */
    cr_assert(!val_str(&V, r, "f", VAL_OPTIONAL | VAL_EMPTY, 0, 10, &s));
    expect_none();
}

Test(val, str_wrong_type)
{
    const char *values[] = {"5551234", "1.5", "true", "false", "[\"a\"]", "{\"a\":1}"};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        json_t *r = field(values[i]);
        ev_str s;
        cr_assert(!val_str(&V, r, "f", VAL_OPTIONAL, 0, 10, &s), "%s", values[i]);
        expect_only("[\"f\"]", "invalid_type");
    }
}

Test(val, str_lengths)
{
    ev_str s;
    /* min in characters: "é" is two bytes but one character */
    json_t *r = field("\"\xc3\xa9\xc3\xa9\"");
    cr_assert(val_str(&V, r, "f", VAL_REQUIRED, 2, 4, &s));
    cr_assert(!val_str(&V, r, "f", VAL_REQUIRED, 3, 4, &s));
    expect_only("[\"f\"]", "too_short");
    r = field("\"\xc3\xa9\"");
    cr_assert(!val_str(&V, r, "f", VAL_REQUIRED, 2, 255, &s));
    expect_only("[\"f\"]", "too_short");
    /* max in bytes */
    r = field("\"\xc3\xa9\xc3\xa9\"");
    cr_assert(!val_str(&V, r, "f", VAL_REQUIRED, 0, 3, &s));
    expect_only("[\"f\"]", "too_long");
    /* escapes count as what they decode to */
    r = field("\"\\u00e9\\u00e9\"");
    cr_assert(val_str(&V, r, "f", VAL_REQUIRED, 2, 4, &s));
    cr_assert(str_eq(s, "\xc3\xa9\xc3\xa9"));
    /* an emoji (4 bytes, one character; a surrogate pair when escaped) */
    r = field("\"\\ud83d\\udd70x\"");
    cr_assert(val_str(&V, r, "f", VAL_REQUIRED, 2, 5, &s));
    cr_assert(!val_str(&V, r, "f", VAL_REQUIRED, 3, 5, &s));
    expect_only("[\"f\"]", "too_short");
}

Test(val, str_boundaries)
{
    char buf[600], text[300];
    memset(text, 'a', 255);
    text[255] = '\0';
    snprintf(buf, sizeof buf, "{\"f\":\"%s\"}", text);
    json_t *r = body(buf);
    ev_str s;
    cr_assert(val_str(&V, r, "f", VAL_REQUIRED, 255, 255, &s));
    cr_assert_eq(s.n, 255);
    text[255] = 'a';
    text[256] = '\0';
    snprintf(buf, sizeof buf, "{\"f\":\"%s\"}", text);
    r = body(buf);
    cr_assert(!val_str(&V, r, "f", VAL_REQUIRED, 2, 255, &s));
    expect_only("[\"f\"]", "too_long");
}

Test(val, str_very_long)
{
    size_t n = 100 * 1024;
    char *buf = malloc(n + 16);
    size_t k = (size_t)sprintf(buf, "{\"f\":\"");
    memset(buf + k, 'x', n);
    strcpy(buf + k + n, "\"}");
    json_t *r = body(buf);
    ev_str s;
    cr_assert(!val_str(&V, r, "f", VAL_REQUIRED, 2, 255, &s));
    expect_only("[\"f\"]", "too_long");
    cr_assert(val_str(&V, r, "f", VAL_REQUIRED | VAL_MULTILINE, 0, n, &s));
    cr_assert_eq(s.n, n);
    free(buf);
}

Test(val, str_control_characters)
{
    const char *single_bad[] = {"\"a\\u0000b\"", "\"a\\u0001\"", "\"a\\tb\"", "\"a\\nb\"",
                                "\"a\\rb\"",     "\"a\\u001f\"", "\"a\\u007f\"", "\"a\\u0085\"",
                                "\"\\u009fa\""};
    for (size_t i = 0; i < sizeof single_bad / sizeof *single_bad; i++) {
        json_t *r = field(single_bad[i]);
        ev_str s;
        cr_assert(!val_str(&V, r, "f", VAL_REQUIRED, 0, 100, &s), "%s", single_bad[i]);
        expect_only("[\"f\"]", "invalid_format");
    }
    const char *multi_ok[] = {"\"line 1\\nline 2\"", "\"a\\tb\"", "\"a\\r\\nb\"",
                              "\"\\u00a0non-breaking, \\u00e9, \\u2028\""};
    for (size_t i = 0; i < sizeof multi_ok / sizeof *multi_ok; i++) {
        json_t *r = field(multi_ok[i]);
        ev_str s;
        cr_assert(val_str(&V, r, "f", VAL_REQUIRED | VAL_MULTILINE, 0, 100, &s), "%s",
                  multi_ok[i]);
        expect_none();
    }
    const char *multi_bad[] = {"\"a\\u0000\"", "\"\\u0007\"", "\"a\\u001b[31m\"", "\"\\u007f\""};
    for (size_t i = 0; i < sizeof multi_bad / sizeof *multi_bad; i++) {
        json_t *r = field(multi_bad[i]);
        ev_str s;
        cr_assert(!val_str(&V, r, "f", VAL_REQUIRED | VAL_MULTILINE, 0, 100, &s), "%s",
                  multi_bad[i]);
        expect_only("[\"f\"]", "invalid_format");
    }
}

Test(val, str_trim)
{
    json_t *r = field("\"  Ada Lovelace \\n\"");
    ev_str s;
    cr_assert(val_str(&V, r, "f", VAL_REQUIRED | VAL_TRIM, 2, 255, &s));
    cr_assert(str_eq(s, "Ada Lovelace"));
    r = field("\"   \"");
    cr_assert(!val_str(&V, r, "f", VAL_REQUIRED | VAL_TRIM, 2, 255, &s));
    expect_only("[\"f\"]", "required");
    cr_assert(!val_str(&V, body("{\"f\":\"   \"}"), "f", VAL_OPTIONAL | VAL_TRIM, 2, 255, &s));
    expect_none();
    r = field("\" a \"");
    cr_assert(!val_str(&V, r, "f", VAL_REQUIRED | VAL_TRIM, 2, 255, &s));
    expect_only("[\"f\"]", "too_short");
}

/* -------------------------------------------------------------- e-mail */

Test(val, email_valid)
{
    const char *good[][2] = {
        {"\"ada@example.com\"", "ada@example.com"},
        {"\"  Ada.Lovelace+shop@Example.CO.uk \"", "Ada.Lovelace+shop@Example.CO.uk"},
        {"\"x@y.z\"", "x@y.z"},
        {"\"j\\u00fcrgen@m\\u00fcller.de\"", "j\xc3\xbcrgen@m\xc3\xbcller.de"},
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        json_t *r = field(good[i][0]);
        ev_str s;
        cr_assert(val_email(&V, r, "f", VAL_REQUIRED, &s), "%s", good[i][0]);
        cr_assert(str_eq(s, good[i][1]), "%s", good[i][0]);
        expect_none();
    }
}

Test(val, email_invalid)
{
    const char *bad[] = {"\"ada\"",         "\"@example.com\"",  "\"ada@\"",
                         "\"ada@example\"", "\"ada@@example.com\"", "\"a@b@example.com\"",
                         "\"ada @example.com\"", "\"ada@exa mple.com\"", "\"ada@.example.com\"",
                         "\"ada@example.com.\"", "\"ada@example..com\"", "\"ada@ex\\tample.com\"",
                         "\"ada@ex\\u0000ample.com\"", "\"ada\\u0085@example.com\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *r = field(bad[i]);
        ev_str s;
        cr_assert(!val_email(&V, r, "f", VAL_REQUIRED, &s), "%s", bad[i]);
        expect_only("[\"f\"]", "invalid_format");
    }
    ev_str s;
    cr_assert(!val_email(&V, field("42"), "f", VAL_REQUIRED, &s));
    expect_only("[\"f\"]", "invalid_type");
    cr_assert(!val_email(&V, field("\"\""), "f", VAL_REQUIRED, &s));
    expect_only("[\"f\"]", "required");
    cr_assert(!val_email(&V, field("\"\""), "f", VAL_OPTIONAL, &s));
    expect_none();
}

Test(val, email_length)
{
    char addr[300], buf[400];
    /* 255 bytes: 243 + "@example.com" (12) */
    memset(addr, 'a', 243);
    strcpy(addr + 243, "@example.com");
    cr_assert_eq(strlen(addr), 255);
    snprintf(buf, sizeof buf, "{\"f\":\"%s\"}", addr);
    ev_str s;
    cr_assert(val_email(&V, body(buf), "f", VAL_REQUIRED, &s));
    memset(addr, 'a', 244);
    strcpy(addr + 244, "@example.com");
    snprintf(buf, sizeof buf, "{\"f\":\"%s\"}", addr);
    cr_assert(!val_email(&V, body(buf), "f", VAL_REQUIRED, &s));
    expect_only("[\"f\"]", "too_long");
}

/* ---------------------------------------------------------------- uuid */

Test(val, uuid_valid)
{
    static const uint8_t want[16] = {0x01, 0x8f, 0x3a, 0x2b, 0xc4, 0xd5, 0x7e, 0x6f,
                                     0xa0, 0xb1, 0xc2, 0xd3, 0xe4, 0xf5, 0x06, 0x17};
    const char *forms[] = {"\"018f3a2b-c4d5-7e6f-a0b1-c2d3e4f50617\"",
                           "\"018F3A2B-C4D5-7E6F-A0B1-C2D3E4F50617\"",
                           "\"018f3A2b-C4d5-7E6f-a0B1-c2D3e4F50617\""};
    for (size_t i = 0; i < 3; i++) {
        uint8_t id[16] = {0};
        cr_assert(val_uuid(&V, field(forms[i]), "f", VAL_REQUIRED, id), "%s", forms[i]);
        cr_assert_arr_eq(id, want, 16);
        expect_none();
    }
}

Test(val, uuid_invalid)
{
    const char *bad[] = {"\"018f3a2b-c4d5-7e6f-a0b1-c2d3e4f5061\"",
                         "\"018f3a2bc4d57e6fa0b1c2d3e4f50617\"",
                         "\"018f3a2b-c4d5-7e6f-a0b1-c2d3e4f5061g\"",
                         "\"{018f3a2b-c4d5-7e6f-a0b1-c2d3e4f50617}\"",
                         "\" 018f3a2b-c4d5-7e6f-a0b1-c2d3e4f50617\"",
                         "\"018f3a2b-c4d5-7e6f-a0b1-c2d3e4f50617 \"",
                         "\"018f3a2b_c4d5_7e6f_a0b1_c2d3e4f50617\"", "\"not-a-uuid\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint8_t id[16];
        cr_assert(!val_uuid(&V, field(bad[i]), "f", VAL_REQUIRED, id), "%s", bad[i]);
        expect_only("[\"f\"]", "invalid_format");
    }
    uint8_t id[16];
    cr_assert(!val_uuid(&V, field("12345"), "f", VAL_REQUIRED, id));
    expect_only("[\"f\"]", "invalid_type");
    cr_assert(!val_uuid(&V, body("{}"), "f", VAL_REQUIRED, id));
    expect_only("[\"f\"]", "required");
    cr_assert(!val_uuid(&V, field("\"\""), "f", VAL_OPTIONAL, id));
    expect_none();
}

/* ----------------------------------------------------------------- url */

Test(val, url_valid)
{
    const char *good[] = {"\"https://images.example.com/w/1.jpg?size=2#x\"",
                          "\"http://127.0.0.1:8080/a.png\"", "\"HTTPS://EXAMPLE.COM\"",
                          "\"https://example.com/caf\\u00e9.jpg\""};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        ev_str s;
        cr_assert(val_url(&V, field(good[i]), "f", VAL_OPTIONAL, 2048, &s), "%s", good[i]);
        expect_none();
    }
    ev_str s = {0};
    cr_assert(!val_url(&V, field("\"\""), "f", VAL_OPTIONAL, 2048, &s)); /* none */
    cr_assert(val_url(&V, field("\"\""), "f", VAL_OPTIONAL | VAL_EMPTY, 2048, &s));
    cr_assert_eq(s.n, 0);
    expect_none();
}

Test(val, url_invalid)
{
    const char *bad[] = {"\"ftp://example.com/a.jpg\"",
                         "\"javascript:alert(1)\"",
                         "\"data:image/png;base64,AAAA\"",
                         "\"http://\"",
                         "\"https:///a.jpg\"",
                         "\"/images/a.jpg\"",
                         "\"example.com/a.jpg\"",
                         "\"https://example.com/a b.jpg\"",
                         "\"https://example.com/\\\"onerror=\\\"x\"",
                         "\"https://example.com/<script>\"",
                         "\"https://example.com/\\u0000\"",
                         "\"https://example.com/\\u0085\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ev_str s;
        cr_assert(!val_url(&V, field(bad[i]), "f", VAL_OPTIONAL, 2048, &s), "%s", bad[i]);
        expect_only("[\"f\"]", "invalid_format");
    }
    ev_str s;
    cr_assert(!val_url(&V, field("\"https://example.com/abcdef\""), "f", VAL_OPTIONAL, 20, &s));
    expect_only("[\"f\"]", "too_long");
    cr_assert(!val_url(&V, field("1"), "f", VAL_OPTIONAL, 20, &s));
    expect_only("[\"f\"]", "invalid_type");
}

/* ------------------------------------------------------------ integers */

static int64_t int_ok(const char *value, int64_t min, int64_t max)
{
    int64_t x = -12345;
    cr_assert(val_int(&V, field(value), "f", VAL_REQUIRED, min, max, &x), "%s refused", value);
    expect_none();
    return x;
}

static void int_bad(const char *value, int64_t min, int64_t max, const char *code)
{
    int64_t x = -12345;
    cr_assert(!val_int(&V, field(value), "f", VAL_REQUIRED, min, max, &x), "%s accepted", value);
    cr_assert_eq(x, -12345);
    expect_only("[\"f\"]", code);
}

Test(val, int_valid)
{
    cr_assert_eq(int_ok("1", 1, 100), 1);
    cr_assert_eq(int_ok("\"1\"", 1, 100), 1);
    cr_assert_eq(int_ok("2.0", 1, 100), 2);
    cr_assert_eq(int_ok("\"2.00\"", 1, 100), 2);
    cr_assert_eq(int_ok("1e2", 1, 100), 100);
    cr_assert_eq(int_ok("\"007\"", 1, 100), 7);
    cr_assert_eq(int_ok("0", 0, 100), 0);
    cr_assert_eq(int_ok("\"-0\"", 0, 100), 0);
    cr_assert_eq(int_ok("-5", -10, 10), -5);
    cr_assert_eq(int_ok("\"-5\"", -10, 10), -5);
    cr_assert_eq(int_ok("9223372036854775807", 0, INT64_MAX), INT64_MAX);
    cr_assert_eq(int_ok("\"9223372036854775807\"", 0, INT64_MAX), INT64_MAX);
    cr_assert_eq(int_ok("\"-9223372036854775808\"", INT64_MIN, 0), INT64_MIN);
    cr_assert_eq(int_ok("2147483647", 1, 2147483647), 2147483647);
}

Test(val, int_boundaries)
{
    int_ok("1", 1, 10);
    int_ok("10", 1, 10);
    int_bad("0", 1, 10, "out_of_range");
    int_bad("11", 1, 10, "out_of_range");
    int_bad("\"11\"", 1, 10, "out_of_range");
    int_bad("-1", 0, INT64_MAX, "out_of_range");
    int_bad("\"-1\"", 1, 10, "out_of_range");
    int_bad("2147483648", 1, 2147483647, "out_of_range");
    int_bad("\"9223372036854775808\"", 0, INT64_MAX, "out_of_range");
    int_bad("\"99999999999999999999999999\"", 0, INT64_MAX, "out_of_range");
    int_bad("1e300", 0, INT64_MAX, "out_of_range");
    int_bad("-1e300", INT64_MIN, 0, "out_of_range");
    int_bad("9223372036854775808.0", 0, INT64_MAX, "out_of_range");
}

Test(val, int_formats)
{
    int_bad("\" 1\"", 1, 10, "invalid_format");
    int_bad("\"1 \"", 1, 10, "invalid_format");
    int_bad("\"1e3\"", 1, 10000, "invalid_format");
    int_bad("\"0x10\"", 1, 100, "invalid_format");
    int_bad("\"+1\"", 1, 10, "invalid_format");
    int_bad("\"1.999\"", 1, 10, "invalid_format");
    int_bad("\"1.\"", 1, 10, "invalid_format");
    int_bad("\".5\"", 0, 10, "invalid_format");
    int_bad("\"-\"", 0, 10, "invalid_format");
    int_bad("\"NaN\"", 0, 10, "invalid_format");
    int_bad("\"Infinity\"", 0, 10, "invalid_format");
    int_bad("\"one\"", 0, 10, "invalid_format");
    int_bad("\"1,5\"", 0, 10, "invalid_format");
    int_bad("\"\\u0661\"", 0, 10, "invalid_format"); /* an Arabic-Indic digit */
    int_bad("1.5", 1, 10, "invalid_format");
    int_bad("1.000001", 1, 10, "invalid_format");
}

Test(val, int_types_and_absence)
{
    int_bad("true", 0, 10, "invalid_type");
    int_bad("[1]", 0, 10, "invalid_type");
    int_bad("{\"n\":1}", 0, 10, "invalid_type");
    int_bad("\"\"", 0, 10, "required");
    int64_t x = 7;
    cr_assert(!val_int(&V, field("\"\""), "f", VAL_OPTIONAL, 0, 10, &x));
    cr_assert(!val_int(&V, field("null"), "f", VAL_OPTIONAL, 0, 10, &x));
    cr_assert(!val_int(&V, body("{}"), "f", VAL_OPTIONAL, 0, 10, &x));
    expect_none();
    cr_assert_eq(x, 7);
    cr_assert(!val_int(&V, body("{}"), "f", VAL_REQUIRED, 0, 10, &x));
    expect_only("[\"f\"]", "required");
}

/* --------------------------------------------------------------- money */

static int64_t money_ok_flags(const char *value, int flags)
{
    int64_t m = -1;
    cr_assert(val_money(&V, field(value), "f", VAL_REQUIRED | flags, &m), "%s refused", value);
    expect_none();
    return m;
}

static int64_t money_ok(const char *value)
{
    return money_ok_flags(value, 0);
}

static void money_bad(const char *value, const char *code)
{
    int64_t m = -1;
    cr_assert(!val_money(&V, field(value), "f", VAL_REQUIRED, &m), "%s accepted", value);
    cr_assert_eq(m, -1);
    expect_only("[\"f\"]", code);
}

Test(val, money_json_numbers)
{
    cr_assert_eq(money_ok("395"), 39500);
    cr_assert_eq(money_ok("395.0"), 39500);
    cr_assert_eq(money_ok("395.5"), 39550);
    cr_assert_eq(money_ok("395.50"), 39550);
    cr_assert_eq(money_ok("1e2"), 10000);
    cr_assert_eq(money_ok("19.99"), 1999);
    cr_assert_eq(money_ok("0.01"), 1);
    cr_assert_eq(money_ok("0.1"), 10);
    cr_assert_eq(money_ok("0.30000000000000004"), 30); /* 0.1 + 0.2 in JavaScript */
    cr_assert_eq(money_ok("1234.5600000000002"), 123456);
    cr_assert_eq(money_ok("99999999.99"), 9999999999);
    cr_assert_eq(money_ok("99999999"), 9999999900);
}

Test(val, money_rounding_half_away_from_zero)
{
    cr_assert_eq(money_ok("395.005"), 39501);
    cr_assert_eq(money_ok("395.004"), 39500);
    cr_assert_eq(money_ok("395.0049999"), 39500);
    cr_assert_eq(money_ok("1.005"), 101); /* the double is 1.00499999999999989... */
    cr_assert_eq(money_ok("1.015"), 102);
    cr_assert_eq(money_ok("2.675"), 268);
    cr_assert_eq(money_ok("0.005"), 1);
    cr_assert_eq(money_ok("0.999"), 100);
    cr_assert_eq(money_ok("99999999.994"), 9999999999);
    cr_assert_eq(money_ok("1e-1"), 10);
    cr_assert_eq(money_ok_flags("0.004", VAL_ZERO_OK), 0);
    cr_assert_eq(money_ok_flags("-0.004", VAL_ZERO_OK), 0);
    cr_assert_eq(money_ok_flags("1e-9", VAL_ZERO_OK), 0);
}

Test(val, money_strings)
{
    cr_assert_eq(money_ok("\"395.00\""), 39500);
    cr_assert_eq(money_ok("\"395\""), 39500);
    cr_assert_eq(money_ok("\"395.5\""), 39550);
    cr_assert_eq(money_ok("\"395.000\""), 39500);
    cr_assert_eq(money_ok("\"0.01\""), 1);
    cr_assert_eq(money_ok("\"0395.10\""), 39510);
    cr_assert_eq(money_ok("\"99999999.99\""), 9999999999);
    money_bad("\"1.999\"", "invalid_format");
    money_bad("\"395.005\"", "invalid_format");
    money_bad("\"1.001\"", "invalid_format");
    money_bad("\" 1\"", "invalid_format");
    money_bad("\"1 \"", "invalid_format");
    money_bad("\"1e3\"", "invalid_format");
    money_bad("\"0x10\"", "invalid_format");
    money_bad("\"+1\"", "invalid_format");
    money_bad("\"$395\"", "invalid_format");
    money_bad("\"395,00\"", "invalid_format");
    money_bad("\"1,000.00\"", "invalid_format");
    money_bad("\"NaN\"", "invalid_format");
    money_bad("\"nan\"", "invalid_format");
    money_bad("\"Infinity\"", "invalid_format");
    money_bad("\"-Infinity\"", "invalid_format");
    money_bad("\"395.\"", "invalid_format");
    money_bad("\".5\"", "invalid_format");
}

Test(val, money_range)
{
    money_bad("0", "out_of_range");
    money_bad("0.0", "out_of_range");
    money_bad("\"0\"", "out_of_range");
    money_bad("\"0.00\"", "out_of_range");
    money_bad("0.004", "out_of_range");
    money_bad("-1", "out_of_range");
    money_bad("-0.5", "out_of_range");
    money_bad("\"-1\"", "out_of_range");
    money_bad("\"-0.01\"", "out_of_range");
    money_bad("100000000", "out_of_range");
    money_bad("100000000.0", "out_of_range");
    money_bad("\"100000000.00\"", "out_of_range");
    money_bad("\"100000000\"", "out_of_range");
    money_bad("99999999.995", "out_of_range");
    money_bad("1e300", "out_of_range");
    money_bad("-1e300", "out_of_range");
    money_bad("9223372036854775807", "out_of_range");
    money_bad("-9223372036854775808", "out_of_range");
    money_bad("\"99999999999999999999999999.00\"", "out_of_range");
    cr_assert_eq(money_ok_flags("0", VAL_ZERO_OK), 0);
    cr_assert_eq(money_ok_flags("\"0.00\"", VAL_ZERO_OK), 0);
    int64_t m = -1;
    cr_assert(!val_money(&V, field("-1"), "f", VAL_REQUIRED | VAL_ZERO_OK, &m));
    expect_only("[\"f\"]", "out_of_range");
}

Test(val, money_types_and_absence)
{
    money_bad("true", "invalid_type");
    money_bad("[395]", "invalid_type");
    money_bad("{\"amount\":395}", "invalid_type");
    money_bad("\"\"", "required");
    int64_t m = 5;
    cr_assert(!val_money(&V, field("\"\""), "f", VAL_OPTIONAL, &m));
    cr_assert(!val_money(&V, field("null"), "f", VAL_OPTIONAL, &m));
    cr_assert(!val_money(&V, body("{}"), "f", VAL_OPTIONAL, &m));
    expect_none();
    cr_assert_eq(m, 5);
    cr_assert(!val_money(&V, body("{}"), "f", VAL_REQUIRED, &m));
    expect_only("[\"f\"]", "required");
}

/* ------------------------------------------- enums, booleans, currency */

static const char *const STATUSES[] = {"pending",   "processing", "shipped",
                                       "delivered", "cancelled",  NULL};

Test(val, enum_values)
{
    size_t i = 99;
    cr_assert(val_enum(&V, field("\"shipped\""), "f", VAL_REQUIRED, STATUSES, &i));
    cr_assert_eq(i, 2);
    cr_assert(!val_enum(&V, field("\"Shipped\""), "f", VAL_REQUIRED, STATUSES, &i));
    expect_only("[\"f\"]", "invalid_value");
    json_t *d = json_array_get(V.details, 0);
    cr_assert_str_eq(json_string_value(json_object_get(d, "message")),
                     "must be one of: pending, processing, shipped, delivered, cancelled");
    cr_assert(val_enum(&V, field("\"Shipped\""), "f", VAL_REQUIRED | VAL_NOCASE, STATUSES, &i));
    cr_assert_eq(i, 2);
    cr_assert(!val_enum(&V, field("\"ship\""), "f", VAL_REQUIRED | VAL_NOCASE, STATUSES, &i));
    expect_only("[\"f\"]", "invalid_value");
    cr_assert(!val_enum(&V, field("\"shipped \""), "f", VAL_REQUIRED, STATUSES, &i));
    expect_only("[\"f\"]", "invalid_value");
    cr_assert(!val_enum(&V, field("2"), "f", VAL_REQUIRED, STATUSES, &i));
    expect_only("[\"f\"]", "invalid_type");
    cr_assert(!val_enum(&V, field("\"\""), "f", VAL_REQUIRED, STATUSES, &i));
    expect_only("[\"f\"]", "required");
    i = 99;
    cr_assert(!val_enum(&V, field("\"\""), "f", VAL_OPTIONAL, STATUSES, &i));
    expect_none();
    cr_assert(val_enum(&V, field("\"\""), "f", VAL_OPTIONAL | VAL_EMPTY, STATUSES, &i));
    cr_assert_eq(i, SIZE_MAX);
}

Test(val, bool_values)
{
    bool b = false;
    cr_assert(val_bool(&V, field("true"), "f", VAL_REQUIRED, &b));
    cr_assert(b);
    cr_assert(val_bool(&V, field("false"), "f", VAL_REQUIRED, &b));
    cr_assert(!b);
    const char *bad[] = {"\"true\"", "1", "0", "[]"};
    for (size_t i = 0; i < 4; i++) {
        cr_assert(!val_bool(&V, field(bad[i]), "f", VAL_REQUIRED, &b));
        expect_only("[\"f\"]", "invalid_type");
    }
    cr_assert(!val_bool(&V, body("{}"), "f", VAL_OPTIONAL, &b));
    expect_none();
    cr_assert(!val_bool(&V, body("{}"), "f", VAL_REQUIRED, &b));
    expect_only("[\"f\"]", "required");
}

Test(val, currency_codes)
{
    char c[4] = "";
    cr_assert(val_currency(&V, field("\"USD\""), "f", VAL_OPTIONAL, c));
    cr_assert_str_eq(c, "usd");
    cr_assert(val_currency(&V, field("\"eur\""), "f", VAL_OPTIONAL, c));
    cr_assert_str_eq(c, "eur");
    const char *bad[] = {"\"us\"", "\"usdd\"", "\"u$d\"", "\"12a\"", "\" usd\""};
    for (size_t i = 0; i < 5; i++) {
        cr_assert(!val_currency(&V, field(bad[i]), "f", VAL_OPTIONAL, c), "%s", bad[i]);
        expect_only("[\"f\"]", "invalid_format");
    }
    strcpy(c, "usd");
    cr_assert(!val_currency(&V, field("\"\""), "f", VAL_OPTIONAL, c));
    cr_assert_str_eq(c, "usd");
    expect_none();
}

/* ------------------------------------------------------ arrays, nesting */

Test(val, array_limits)
{
    json_t *a = NULL;
    cr_assert(val_array(&V, field("[1,2]"), "f", VAL_REQUIRED, 1, 2, &a));
    cr_assert_eq(json_array_size(a), 2);
    cr_assert(!val_array(&V, field("[]"), "f", VAL_REQUIRED, 1, 2, &a));
    expect_only("[\"f\"]", "too_short");
    cr_assert(!val_array(&V, field("[1,2,3]"), "f", VAL_REQUIRED, 1, 2, &a));
    expect_only("[\"f\"]", "too_long");
    cr_assert(!val_array(&V, field("{\"0\":1}"), "f", VAL_REQUIRED, 1, 2, &a));
    expect_only("[\"f\"]", "invalid_type");
    cr_assert(!val_array(&V, field("\"[1]\""), "f", VAL_REQUIRED, 1, 2, &a));
    expect_only("[\"f\"]", "invalid_type");
    cr_assert(!val_array(&V, body("{}"), "f", VAL_REQUIRED, 1, 2, &a));
    expect_only("[\"f\"]", "required");
    cr_assert(!val_array(&V, body("{}"), "f", VAL_OPTIONAL, 1, 2, &a));
    expect_none();
}

Test(val, object_members)
{
    json_t *o = NULL;
    cr_assert(val_object(&V, field("{}"), "f", VAL_REQUIRED, &o));
    cr_assert(!val_object(&V, field("[]"), "f", VAL_REQUIRED, &o));
    expect_only("[\"f\"]", "invalid_type");
    cr_assert(!val_object(&V, field("\"x\""), "f", VAL_REQUIRED, &o));
    expect_only("[\"f\"]", "invalid_type");
    /* members of something that is not an object: nothing more reported */
    ev_str s;
    cr_assert(!val_str(&V, NULL, "email", VAL_REQUIRED, 0, 10, &s));
    cr_assert(!val_str(&V, json_object_get(field("[1]"), "f"), "email", VAL_REQUIRED, 0, 10, &s));
    int64_t x;
    cr_assert(!val_int(&V, NULL, "q", VAL_REQUIRED, 0, 10, &x));
    expect_none();
}

/* An order's items, as the orders handler reads them. */
static void read_items(json_t *root)
{
    json_t *items = NULL;
    if (!val_array(&V, root, "items", VAL_REQUIRED, 1, 100, &items))
        return;
    val_enter_key(&V, "items");
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it;
        val_enter_index(&V, i);
        if (val_object_here(&V, json_array_get(items, i), &it)) {
            uint8_t id[16];
            int64_t q, price;
            val_uuid(&V, it, "watch_id", VAL_REQUIRED, id);
            val_int(&V, it, "quantity", VAL_REQUIRED, 1, 1000, &q);
            val_money(&V, it, "unit_price", VAL_REQUIRED, &price);
        }
        val_leave(&V);
    }
    val_leave(&V);
}

#define W1 "\"018f3a2b-c4d5-7e6f-a0b1-c2d3e4f50617\""

Test(val, nested_item_path)
{
    json_t *r = body("{\"items\":["
                     "{\"watch_id\":" W1 ",\"quantity\":1,\"unit_price\":395},"
                     "{\"watch_id\":" W1 ",\"quantity\":\"2\",\"unit_price\":\"395.00\"},"
                     "{\"watch_id\":" W1 ",\"quantity\":1,\"unit_price\":1},"
                     "{\"watch_id\":\"nope\",\"quantity\":1,\"unit_price\":1}]}");
    read_items(r);
    expect_only("[\"items\",3,\"watch_id\"]", "invalid_format");
    cr_assert_eq(V.depth, 0);
}

Test(val, nested_items_not_objects)
{
    json_t *r = body("{\"items\":[{\"watch_id\":" W1 ",\"quantity\":1,\"unit_price\":1},"
                     "\"x\", null, [], {}]}");
    read_items(r);
    cr_assert_eq(n_details(), 6);
    expect(0, "[\"items\",1]", "invalid_type");
    expect(1, "[\"items\",2]", "invalid_type");
    expect(2, "[\"items\",3]", "invalid_type");
    expect(3, "[\"items\",4,\"watch_id\"]", "required");
    expect(4, "[\"items\",4,\"quantity\"]", "required");
    expect(5, "[\"items\",4,\"unit_price\"]", "required");
}

Test(val, nested_object_path)
{
    json_t *r = body("{\"customer\":{\"email\":\"not an address\",\"full_name\":\"Ada\"}}");
    json_t *c;
    cr_assert(val_object(&V, r, "customer", VAL_REQUIRED, &c));
    val_enter_key(&V, "customer");
    ev_str email, name;
    val_email(&V, c, "email", VAL_REQUIRED, &email);
    cr_assert(val_str(&V, c, "full_name", VAL_REQUIRED, 2, 255, &name));
    val_leave(&V);
    expect_only("[\"customer\",\"email\"]", "invalid_format");
}

Test(val, path_deeper_than_recorded)
{
    json_t *r = body("{}");
    for (size_t i = 0; i < VAL_MAX_PATH + 3; i++)
        val_enter_index(&V, i);
    int64_t x;
    val_int(&V, r, "q", VAL_REQUIRED, 0, 1, &x);
    for (size_t i = 0; i < VAL_MAX_PATH + 3; i++)
        val_leave(&V);
    val_leave(&V); /* one too many: harmless */
    cr_assert_eq(V.depth, 0);
    expect_only("[0,1,2,3,4,5,6,7,\"q\"]", "required");
}

Test(val, every_failing_field_reported)
{
    json_t *r = body("{\"email\":\"nope\",\"full_name\":\"A\",\"password\":123,"
                     "\"phone\":\"\",\"city\":\"Z\\u0001rich\",\"items\":[{\"quantity\":0}],"
                     "\"extra\":{\"deep\":[1,2,3]},\"password2\":\"whatever\"}");
    ev_str email, name, pw, phone, city;
    val_email(&V, r, "email", VAL_REQUIRED, &email);
    val_str(&V, r, "full_name", VAL_REQUIRED | VAL_TRIM, 2, 255, &name);
    val_str(&V, r, "password", VAL_REQUIRED | VAL_MULTILINE, 6, 1024, &pw);
    cr_assert(!val_str(&V, r, "phone", VAL_OPTIONAL | VAL_TRIM, 0, 50, &phone));
    val_str(&V, r, "city", VAL_OPTIONAL | VAL_TRIM, 0, 100, &city);
    read_items(r);
    cr_assert_eq(n_details(), 7);
    expect(0, "[\"email\"]", "invalid_format");
    expect(1, "[\"full_name\"]", "too_short");
    expect(2, "[\"password\"]", "invalid_type");
    expect(3, "[\"city\"]", "invalid_format");
    expect(4, "[\"items\",0,\"watch_id\"]", "required");
    expect(5, "[\"items\",0,\"quantity\"]", "out_of_range");
    expect(6, "[\"items\",0,\"unit_price\"]", "required");
    char *s = val_error_json(&V);
    json_t *j = json_loads(s, 0, NULL);
    cr_assert_eq(json_array_size(json_object_get(j, "details")), 7);
    json_decref(j);
    free(s);
}

/* ------------------------------------- realistic bodies, route by route */

static const char *const CATEGORIES[] = {"automatic", "chronograph", "diver", "sport",
                                         "classic",   "luxury",      NULL};
static const char *const ROLES[] = {"user", "assistant", NULL};

/* The customer fields of register and of the legacy checkout. */
typedef struct customer_in {
    ev_str email, full_name, password, phone, address, city, country;
} customer_in;

static void read_contact(json_t *o, customer_in *c)
{
    val_email(&V, o, "email", VAL_REQUIRED, &c->email);
    val_str(&V, o, "full_name", VAL_REQUIRED | VAL_TRIM, 2, 255, &c->full_name);
    val_str(&V, o, "phone", VAL_OPTIONAL | VAL_TRIM, 0, 50, &c->phone);
    val_str(&V, o, "address", VAL_OPTIONAL | VAL_TRIM | VAL_MULTILINE, 0, 1000, &c->address);
    val_str(&V, o, "city", VAL_OPTIONAL | VAL_TRIM, 0, 100, &c->city);
    val_str(&V, o, "country", VAL_OPTIONAL | VAL_TRIM, 0, 100, &c->country);
}

Test(val, route_register)
{
    json_t *r = body("{\"email\":\" Ada@Example.com\",\"full_name\":\"Ada Lovelace\","
                     "\"password\":\"s3cret!\",\"password2\":\"s3cret!\",\"phone\":\"\","
                     "\"address\":\"12 St James's Square\",\"city\":\"London\",\"country\":\"UK\"}");
    customer_in c = {0};
    read_contact(r, &c);
    val_str(&V, r, "password", VAL_REQUIRED | VAL_MULTILINE, 6, 1024, &c.password);
    expect_none();
    cr_assert(str_eq(c.email, "Ada@Example.com"));
    cr_assert(str_eq(c.full_name, "Ada Lovelace"));
    cr_assert(str_eq(c.password, "s3cret!"));
    cr_assert_null(c.phone.p);
    cr_assert(str_eq(c.city, "London"));

    r = body("{\"email\":\"ada@example.com\",\"full_name\":\"Ada\",\"password\":\"12345\"}");
    memset(&c, 0, sizeof c);
    read_contact(r, &c);
    val_str(&V, r, "password", VAL_REQUIRED | VAL_MULTILINE, 6, 1024, &c.password);
    expect_only("[\"password\"]", "too_short");
}

Test(val, route_login_refresh_logout)
{
    json_t *r = body("{\"email\":\"ada@example.com\",\"password\":\"s3cret!\"}");
    ev_str email, pw, tok;
    val_email(&V, r, "email", VAL_REQUIRED, &email);
    val_str(&V, r, "password", VAL_REQUIRED | VAL_MULTILINE, 1, 1024, &pw);
    expect_none();
    r = body("{\"refreshToken\":\"rt_0123456789abcdef\"}");
    cr_assert(val_str(&V, r, "refreshToken", VAL_REQUIRED, 1, 512, &tok));
    r = body("{}");
    cr_assert(!val_str(&V, r, "refreshToken", VAL_OPTIONAL, 1, 512, &tok)); /* logout */
    expect_none();
}

Test(val, route_order)
{
    json_t *r = body("{\"items\":[{\"watch_id\":" W1 ",\"quantity\":1,\"unit_price\":\"395.00\","
                     "\"watch_name\":\"Seamaster\",\"image_url\":\"/x.jpg\"},"
                     "{\"watch_id\":\"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11\",\"quantity\":\"2\","
                     "\"unit_price\":1250.5}],\"shipping_address\":\"\"}");
    read_items(r);
    ev_str ship = {0};
    cr_assert(!val_str(&V, r, "shipping_address", VAL_OPTIONAL | VAL_MULTILINE, 0, 2000, &ship));
    expect_none();
    /* the values as the handler gets them */
    json_t *it = json_array_get(json_object_get(r, "items"), 1);
    int64_t q = 0, p = 0;
    cr_assert(val_int(&V, it, "quantity", VAL_REQUIRED, 1, 1000, &q));
    cr_assert(val_money(&V, it, "unit_price", VAL_REQUIRED, &p));
    cr_assert_eq(q, 2);
    cr_assert_eq(p, 125050);
}

Test(val, route_checkout)
{
    json_t *r = body("{\"customer\":{\"email\":\"guest@example.org\",\"full_name\":\"Grace Hopper\","
                     "\"phone\":\"+1 555 0100\",\"address\":\"1 Navy Way\",\"city\":\"Arlington\","
                     "\"country\":\"\"},\"items\":[{\"watch_id\":" W1 ",\"quantity\":1}]}");
    json_t *cust = NULL, *items = NULL;
    customer_in c = {0};
    if (val_object(&V, r, "customer", VAL_REQUIRED, &cust)) {
        val_enter_key(&V, "customer");
        read_contact(cust, &c);
        val_leave(&V);
    }
    if (val_array(&V, r, "items", VAL_REQUIRED, 1, 100, &items)) {
        val_enter_key(&V, "items");
        for (size_t i = 0; i < json_array_size(items); i++) {
            json_t *it;
            uint8_t id[16];
            int64_t q;
            val_enter_index(&V, i);
            if (val_object_here(&V, json_array_get(items, i), &it)) {
                val_uuid(&V, it, "watch_id", VAL_REQUIRED, id);
                val_int(&V, it, "quantity", VAL_REQUIRED, 1, 1000, &q);
            }
            val_leave(&V);
        }
        val_leave(&V);
    }
    expect_none();
    cr_assert(str_eq(c.phone, "+1 555 0100"));
    cr_assert_null(c.country.p);
}

/* The watch fields of create (every required one) and update (any). */
typedef struct watch_in {
    ev_str brand, name, model, image, description;
    int64_t price, stock;
    size_t category;
    bool has_price, has_stock, has_category;
} watch_in;

static void read_watch(json_t *r, bool create, watch_in *w)
{
    int req = create ? VAL_REQUIRED : VAL_OPTIONAL;
    int opt = create ? VAL_OPTIONAL : VAL_OPTIONAL | VAL_EMPTY;
    val_str(&V, r, "brand", req | VAL_TRIM, 1, 100, &w->brand);
    val_str(&V, r, "watch_name", req | VAL_TRIM, 1, 255, &w->name);
    w->has_price = val_money(&V, r, "price", req, &w->price);
    val_str(&V, r, "model_code", opt | VAL_TRIM, 0, 50, &w->model);
    w->has_stock = val_int(&V, r, "stock_quantity", VAL_OPTIONAL, 0, INT32_MAX, &w->stock);
    val_url(&V, r, "image_url", opt, 2048, &w->image);
    val_str(&V, r, "description", opt | VAL_MULTILINE, 0, 10000, &w->description);
    w->has_category = val_enum(&V, r, "category", opt | VAL_NOCASE, CATEGORIES, &w->category);
}

Test(val, route_admin_watch_create)
{
    json_t *r = body("{\"brand\":\"Omega\",\"watch_name\":\"Seamaster 300M\",\"price\":\"4900.00\","
                     "\"model_code\":\"210.30.42.20.03.001\",\"stock_quantity\":\"5\","
                     "\"image_url\":\"\",\"description\":\"Diver.\\nCo-Axial 8800.\","
                     "\"category\":\"diver\"}");
    watch_in w = {0};
    read_watch(r, true, &w);
    expect_none();
    cr_assert_eq(w.price, 490000);
    cr_assert(w.has_stock && w.stock == 5);
    cr_assert_null(w.image.p); /* "" : none */
    cr_assert(w.has_category && w.category == 2);

    r = body("{\"brand\":\"Omega\",\"watch_name\":\"\",\"price\":0,\"stock_quantity\":-1,"
             "\"image_url\":\"not a url\",\"category\":\"smart\"}");
    memset(&w, 0, sizeof w);
    read_watch(r, true, &w);
    cr_assert_eq(n_details(), 5);
    expect(0, "[\"watch_name\"]", "required");
    expect(1, "[\"price\"]", "out_of_range");
    expect(2, "[\"stock_quantity\"]", "out_of_range");
    expect(3, "[\"image_url\"]", "invalid_format");
    expect(4, "[\"category\"]", "invalid_value");
}

Test(val, route_admin_watch_update)
{
    json_t *r = body("{\"price\":\"5100.50\",\"stock_quantity\":3,\"model_code\":\"\","
                     "\"description\":null}");
    watch_in w = {0};
    read_watch(r, false, &w);
    expect_none();
    cr_assert(w.has_price && w.price == 510050);
    cr_assert(w.has_stock && w.stock == 3);
    cr_assert(w.model.p && w.model.n == 0);             /* "" : store null */
    cr_assert(w.description.p && w.description.n == 0); /* null : store null */
    cr_assert_null(w.brand.p);                          /* absent: unchanged */
    cr_assert_null(w.image.p);
    cr_assert(!w.has_category);
}

Test(val, route_admin_stock_and_status)
{
    int64_t stock = -1;
    cr_assert(val_int(&V, body("{\"stock_quantity\":12}"), "stock_quantity", VAL_REQUIRED, 0,
                      INT32_MAX, &stock));
    cr_assert_eq(stock, 12);
    cr_assert(!val_int(&V, body("{\"stock_quantity\":\"-3\"}"), "stock_quantity", VAL_REQUIRED,
                       0, INT32_MAX, &stock));
    expect_only("[\"stock_quantity\"]", "out_of_range");
    size_t st = 0;
    cr_assert(val_enum(&V, body("{\"status\":\"processing\"}"), "status", VAL_REQUIRED, STATUSES,
                       &st));
    cr_assert_eq(st, 1);
    cr_assert(!val_enum(&V, body("{\"status\":\"lost\"}"), "status", VAL_REQUIRED, STATUSES, &st));
    expect_only("[\"status\"]", "invalid_value");
}

Test(val, route_stripe_create_payment_intent)
{
    json_t *r = body("{\"amount\":1250.5,\"order_id\":42}");
    int64_t amount = 0, order = 0;
    char cur[4] = "usd";
    val_money(&V, r, "amount", VAL_REQUIRED, &amount);
    val_int(&V, r, "order_id", VAL_REQUIRED, 1, INT32_MAX, &order);
    val_currency(&V, r, "currency", VAL_OPTIONAL, cur);
    expect_none();
    cr_assert_eq(amount, 125050);
    cr_assert_eq(order, 42);
    cr_assert_str_eq(cur, "usd");

    r = body("{\"amount\":\"abc\",\"order_id\":4.5,\"currency\":\"dollars\"}");
    val_money(&V, r, "amount", VAL_REQUIRED, &amount);
    val_int(&V, r, "order_id", VAL_REQUIRED, 1, INT32_MAX, &order);
    val_currency(&V, r, "currency", VAL_OPTIONAL, cur);
    cr_assert_eq(n_details(), 3);
    expect(0, "[\"amount\"]", "invalid_format");
    expect(1, "[\"order_id\"]", "invalid_format");
    expect(2, "[\"currency\"]", "invalid_format");
}

Test(val, route_stripe_confirm_and_paypal)
{
    json_t *r = body("{\"payment_intent_id\":\"pi_3OabcDEF\",\"order_id\":\"42\"}");
    ev_str id;
    int64_t order = 0, amount = 0;
    char cur[4] = "usd";
    val_str(&V, r, "payment_intent_id", VAL_REQUIRED, 1, 255, &id);
    val_int(&V, r, "order_id", VAL_REQUIRED, 1, INT32_MAX, &order);
    expect_none();
    cr_assert_eq(order, 42);

    r = body("{\"amount\":395,\"order_id\":7,\"currency\":\"EUR\"}"); /* paypal create */
    val_money(&V, r, "amount", VAL_REQUIRED, &amount);
    val_int(&V, r, "order_id", VAL_REQUIRED, 1, INT32_MAX, &order);
    val_currency(&V, r, "currency", VAL_OPTIONAL, cur);
    expect_none();
    cr_assert_str_eq(cur, "eur");

    r = body("{\"paypal_order_id\":\"5O190127TN364715T\",\"order_id\":7}"); /* capture */
    cr_assert(val_str(&V, r, "paypal_order_id", VAL_REQUIRED, 1, 255, &id));
    cr_assert(str_eq(id, "5O190127TN364715T"));
    cr_assert(val_int(&V, r, "order_id", VAL_REQUIRED, 1, INT32_MAX, &order));
    r = body("{\"order_id\":0}");
    val_str(&V, r, "paypal_order_id", VAL_REQUIRED, 1, 255, &id);
    val_int(&V, r, "order_id", VAL_REQUIRED, 1, INT32_MAX, &order);
    cr_assert_eq(n_details(), 2);
    expect(0, "[\"paypal_order_id\"]", "required");
    expect(1, "[\"order_id\"]", "out_of_range");
}

Test(val, route_chat)
{
    json_t *r = body("{\"messages\":[{\"role\":\"assistant\",\"content\":\"Hello! How can I "
                     "help?\"},{\"role\":\"user\",\"content\":\"A diver under 500?\\nThanks\"},"
                     "{\"role\":\"system\",\"content\":\"\"}]}");
    json_t *msgs = NULL;
    cr_assert(val_array(&V, r, "messages", VAL_REQUIRED, 1, 100, &msgs));
    val_enter_key(&V, "messages");
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        json_t *m;
        size_t role;
        ev_str content;
        val_enter_index(&V, i);
        if (val_object_here(&V, json_array_get(msgs, i), &m)) {
            val_enum(&V, m, "role", VAL_REQUIRED, ROLES, &role);
            val_str(&V, m, "content", VAL_REQUIRED | VAL_MULTILINE, 1, 20000, &content);
        }
        val_leave(&V);
    }
    val_leave(&V);
    cr_assert_eq(n_details(), 2);
    expect(0, "[\"messages\",2,\"role\"]", "invalid_value");
    expect(1, "[\"messages\",2,\"content\"]", "required");
}
