/* ops_console.c - the web console: GET/HEAD /dashboard, /dashboard/ and
 * /dashboard/{asset}.
 *
 * The console is a static page (gateway/console/) embedded in the binary at
 * build time (console_assets.h); it reads and changes everything through the
 * REST door like any other client, with the caller's bearer token. Its
 * files hold no data, so they are served without credentials, as /healthz
 * is (router.c exempts op_console from authentication).
 *
 * Every answer forbids what the page never needs: a Content-Security-Policy
 * that allows scripts, styles and connections to this origin only (no inline
 * code, no framing), nosniff and no Referer. Assets are revalidated on each
 * load (Cache-Control: no-cache) against a strong ETag computed at build
 * time, so a new binary's console is picked up at once and an unchanged one
 * costs a 304. */
#include <stdbool.h>
#include <string.h>

#include "app.h"
#include "console_assets.h"
#include "ops.h"
#include "reply.h"

#define CONSOLE_PREFIX "/dashboard"

#define CONSOLE_CSP                                                                          \
    "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; "          \
    "img-src 'self' data:; frame-ancestors 'none'"

static const struct gw_console_asset *find_asset(const char *name)
{
    for (const struct gw_console_asset *a = gw_console_assets; a->name; a++)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

/* Whether If-None-Match "inm" (a list of entity tags, or "*") names "etag".
 * RFC 9110 13.1.2 compares weakly: a W/ prefix is ignored. */
static bool etag_matches(const char *inm, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = inm;
    while (*p) {
        p += strspn(p, " \t,");
        if (!*p)
            break;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        size_t n = strcspn(p, ",");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == elen && memcmp(p, etag, n) == 0)
            return true;
        p += strcspn(p, ",");
    }
    return false;
}

static void security_headers(struct gw_req *req)
{
    gw_resp_header(req, "content-security-policy", CONSOLE_CSP);
    gw_resp_header(req, "x-content-type-options", "nosniff");
    gw_resp_header(req, "referrer-policy", "no-referrer");
}

void op_console(struct gw_app *app, struct gw_req *req)
{
    (void)app;
    const char *path = gw_req_path(req);
    security_headers(req);
    /* The page's links are relative (app.js, style.css), so it must be
     * loaded from the directory URL. */
    if (strcmp(path, CONSOLE_PREFIX) == 0) {
        gw_resp_header(req, "location", CONSOLE_PREFIX "/");
        gw_resp_header(req, "cache-control", "no-cache");
        gw_resp_send(req, 301, NULL, 0);
        return;
    }
    const char *name = strcmp(path, CONSOLE_PREFIX "/") == 0 ? "index.html" : gw_req_param(req, 0);
    const struct gw_console_asset *a = name ? find_asset(name) : NULL;
    if (!a) {
        struct gw_error err = {0};
        gw_error_set(&err, GW_ERR_NOT_FOUND, "No console file '%.100s' under " CONSOLE_PREFIX "/",
                     name ? name : "");
        gw_reply_error(req, &err);
        return;
    }
    gw_resp_header(req, "cache-control", "no-cache");
    gw_resp_header(req, "etag", a->etag);
    const char *inm = gw_req_header(req, "if-none-match");
    if (inm && etag_matches(inm, a->etag)) {
        gw_resp_send(req, 304, NULL, 0);
        return;
    }
    gw_resp_header(req, "content-type", a->content_type);
    /* HTTP/1.1 drops a HEAD reply's body itself (keeping its length);
     * HTTP/2 would send it as DATA, so it gets none there. */
    bool head = strcmp(gw_req_method(req), "HEAD") == 0;
    if (head && gw_req_proto(req) == GW_PROTO_H2)
        gw_resp_send(req, 200, NULL, 0);
    else
        gw_resp_send(req, 200, a->data, a->len);
}
