/*
 * pl_ctx.c - checks the context document of every Otoroshi plugin kind
 * (otoroshi-abi.md §4.2-4.7: every documented field present, with its type)
 * for test_pipeline.sh. One export per kind, under the kind's default name.
 * A document with everything continues (access: {"result": true} setting
 * attrs ctx_config = its config, ctx_route = route.id, as received; matcher
 * {"result": true}; sink_matches: {"result": true} iff the path starts with
 * /ctx; pre-route: {"error": false}; request
 * and response transformers: no change); one lacking something answers 418
 * with "bad context: <field:type> ..." (matcher: {"result": false}).
 */
#include "pl_json.h"

/* Field specs "a.b.c:T": T = s string, n number, o object, a array, b bool,
 * z null, an array-or-null, * anything present. */
static int type_ok(const char *v, char t, char t2)
{
    v = j_ws(v);
    switch (t) {
    case 's': return *v == '"';
    case 'n': return *v == '-' || (*v >= '0' && *v <= '9');
    case 'o': return *v == '{';
    case 'a': return *v == '[' || (t2 == 'n' && j_is(v, "null"));
    case 'b': return j_is(v, "true") || j_is(v, "false");
    case 'z': return j_is(v, "null");
    default: return 1;
    }
}

static char *check(const char *in, const char *const *specs)
{
    char *bad = "";
    for (; *specs; specs++) {
        char path[128];
        strncpy(path, *specs, sizeof(path) - 1);
        path[sizeof(path) - 1] = '\0';
        char *colon = strchr(path, ':');
        *colon = '\0';
        const char *v = in;
        for (char *k = path, *dot; v && k; k = dot ? dot + 1 : NULL) {
            dot = strchr(k, '.');
            if (dot)
                *dot = '\0';
            v = j_get(v, k);
        }
        if (v == NULL || !type_ok(v, colon[1], colon[2]))
            bad = g_cat(bad, bad[0] ? " " : "", *specs, NULL);
    }
    return bad;
}

#define REQ(p) p "request.id:n", p "request.method:s", p "request.headers:o", \
    p "request.cookies:a", p "request.tls:b", p "request.uri:s", p "request.query:o", \
    p "request.path:s", p "request.version:s", p "request.has_body:b", p "request.remote:s", \
    p "request.client_cert_chain:*", p "request.path_params:o"
#define PREQ(k) k ".url:s", k ".method:s", k ".headers:o", k ".query:o", k ".cookies:a", \
    k ".version:s"
#define COMMON "snowflake:s", "config:*", "attrs:o", "route.id:s", "route.name:s"

static const char *const s_matcher[] = {COMMON, REQ(""), NULL};
static const char *const s_pre[] = {COMMON, REQ(""), "global_config:*", NULL};
static const char *const s_access[] = {COMMON, REQ(""), "global_config:*", "apikey:z", "user:z",
                                       NULL};
static const char *const s_request[] = {COMMON, REQ(""), "global_config:*", "apikey:z", "user:z",
                                        PREQ("raw_request"), PREQ("otoroshi_request"),
                                        "request_body_bytes:an", NULL};
static const char *const s_response[] = {COMMON,
                                         REQ(""),
                                         "global_config:*",
                                         "apikey:z",
                                         "user:z",
                                         "raw_response.status:n",
                                         "raw_response.headers:o",
                                         "raw_response.cookies:a",
                                         "otoroshi_response.status:n",
                                         "otoroshi_response.headers:o",
                                         "otoroshi_response.cookies:a",
                                         "response_body_bytes:an",
                                         NULL};
static const char *const s_sink[] = {"snowflake:s", "config:*", "attrs:o", REQ(""),
                                     "global_config:*", "origin:s", "status:n", "message:s",
                                     NULL};

static int bad418(const char *bad)
{
    g_output_str(g_cat("{\"error\":true,\"status\":418,\"headers\":{\"Content-Type\":"
                       "\"text/plain\"},\"body_str\":",
                       j_quote(g_cat("bad context: ", bad, NULL)), "}", NULL));
    return 0;
}

EXPORT("matches_route") int32_t matches_route(void)
{
    char *in = g_input(NULL);
    g_output_str(check(in, s_matcher)[0] ? "{\"result\":false}" : "{\"result\":true}");
    return 0;
}

EXPORT("pre_route") int32_t pre_route(void)
{
    char *in = g_input(NULL);
    char *bad = check(in, s_pre);
    if (bad[0])
        return bad418(bad);
    g_output_str("{\"error\":false}");
    return 0;
}

EXPORT("access") int32_t access(void)
{
    char *in = g_input(NULL);
    char *bad = check(in, s_access);
    if (bad[0]) {
        g_output_str(g_cat("{\"result\":false,\"error\":{\"status\":418,\"message\":",
                           j_quote(g_cat("bad context: ", bad, NULL)), "}}", NULL));
        return 0;
    }
    g_output_str(g_cat("{\"result\":true,\"attrs\":{\"set\":{\"ctx_config\":",
                       j_raw(j_get(in, "config")), ",\"ctx_route\":",
                       j_raw(j_path(in, "route", "id", NULL)), "}}}", NULL));
    return 0;
}

EXPORT("transform_request") int32_t transform_request(void)
{
    char *in = g_input(NULL);
    char *bad = check(in, s_request);
    if (bad[0])
        return bad418(bad);
    g_output_str("{}");
    return 0;
}

EXPORT("transform_response") int32_t transform_response(void)
{
    char *in = g_input(NULL);
    char *bad = check(in, s_response);
    if (bad[0])
        return bad418(bad);
    g_output_str(g_cat("{\"status\":", j_raw(j_path(in, "otoroshi_response", "status", NULL)),
                       "}", NULL));
    return 0;
}

EXPORT("sink_matches") int32_t sink_matches(void)
{
    char *in = g_input(NULL);
    const char *path = j_str_or(j_path(in, "request", "path", NULL), "");
    g_output_str(strncmp(path, "/ctx", 4) == 0 ? "{\"result\":true}" : "{\"result\":false}");
    return 0;
}

EXPORT("sink_handle") int32_t sink_handle(void)
{
    char *in = g_input(NULL);
    char *bad = check(in, s_sink);
    if (bad[0])
        return bad418(bad);
    g_output_str("{\"status\":200,\"headers\":{\"Content-Type\":\"text/plain\"},"
                 "\"body_str\":\"context ok\"}");
    return 0;
}
