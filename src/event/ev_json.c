/*
 * ev_json.c - how an event reaches a function: the ABI's own `event` op
 * (components, kiln:faas), or for every core-module ABI the JSON event ABI:
 * the function's handle() gets a synthetic request
 *
 *   POST <path>   Content-Type: application/json
 *   Kiln-Event-Type: object-added   Kiln-Event-Id: 42   Kiln-Event-Attempt: 1
 *   Kiln-Event-Source: kv:NS
 *   {"event_type":"object-added","event_timestamp":{"seconds":S,"nanoseconds":N},
 *    "event_version":"1","source":"kv:NS","key":"k","payload":"<base64>","id":42,"attempt":1}
 *
 * A key that is not UTF-8 comes as "key_base64" instead of "key". A 2xx
 * answer means handled; anything else (another status, a trap, a timeout)
 * is a failure whose cause names the status and the start of the body.
 * No per-ABI code: WASI-CGI, Extism and Otoroshi all serve requests.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/utf8.h"
#include "event/event.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ev_base64(const uint8_t *p, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return o;
}

/* A JSON string body for UTF-8 text s (already checked): escapes quotes,
 * backslashes and control characters. Returns bytes written (out holds at
 * least 6 * n). */
static size_t json_escape(const uint8_t *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

int ev_json_request(const kiln_event *ev, const char *path, kiln_request *req, kiln_kv *hdrs,
                    char **body, char **hdr_buf)
{
    *body = *hdr_buf = NULL;
    const char *type = kiln_event_type_name(ev->type);
    bool text_key = utf8_valid(ev->key, ev->key_len);
    size_t cap = 512 + strlen(ev->source) * 2 + (ev->payload_len + 2) / 3 * 4 +
                 (text_key ? ev->key_len * 6 : (ev->key_len + 2) / 3 * 4);
    char *b = kiln_malloc(cap);
    char *h = kiln_malloc(256 + strlen(ev->source));
    if (b == NULL || h == NULL) {
        kiln_free(b);
        kiln_free(h);
        return KILN_ENOMEM;
    }
    int64_t sec = ev->timestamp_ns / 1000000000, nsec = ev->timestamp_ns % 1000000000;
    size_t o = (size_t)snprintf(b, cap,
                                "{\"event_type\":\"%s\",\"event_timestamp\":{\"seconds\":%" PRId64
                                ",\"nanoseconds\":%" PRId64 "},\"event_version\":\"%s\","
                                "\"source\":\"",
                                type, sec, nsec, ev->version);
    o += json_escape((const uint8_t *)ev->source, strlen(ev->source), b + o);
    if (text_key) {
        memcpy(b + o, "\",\"key\":\"", 9);
        o += 9;
        o += json_escape(ev->key, ev->key_len, b + o);
    } else {
        memcpy(b + o, "\",\"key_base64\":\"", 16);
        o += 16;
        o += ev_base64(ev->key, ev->key_len, b + o);
    }
    memcpy(b + o, "\",\"payload\":\"", 13);
    o += 13;
    o += ev_base64(ev->payload, ev->payload_len, b + o);
    o += (size_t)snprintf(b + o, cap - o, "\",\"id\":%" PRIu64 ",\"attempt\":%" PRIu32 "}",
                          ev->id, ev->attempt);
    /* Header values: "application/json\0TYPE\0ID\0ATTEMPT\0SOURCE\0". */
    char *hp = h;
    const char *ct = hp;
    hp += sprintf(hp, "application/json") + 1;
    const char *ty = hp;
    hp += sprintf(hp, "%s", type) + 1;
    const char *id = hp;
    hp += sprintf(hp, "%" PRIu64, ev->id) + 1;
    const char *at = hp;
    hp += sprintf(hp, "%" PRIu32, ev->attempt) + 1;
    const char *src = hp;
    sprintf(hp, "%s", ev->source);
    hdrs[0] = (kiln_kv){"Content-Type", ct};
    hdrs[1] = (kiln_kv){"Kiln-Event-Type", ty};
    hdrs[2] = (kiln_kv){"Kiln-Event-Id", id};
    hdrs[3] = (kiln_kv){"Kiln-Event-Attempt", at};
    hdrs[4] = (kiln_kv){"Kiln-Event-Source", src};
    *req = (kiln_request){
        .method = "POST",
        .url = path,
        .path = path,
        .query = "",
        .host = "localhost",
        .remote_addr = "127.0.0.1",
        .headers = hdrs,
        .n_headers = 5,
        .body = (const uint8_t *)b,
        .body_len = o,
    };
    *body = b;
    *hdr_buf = h;
    return KILN_OK;
}

/* The start of a body on one line, for a cause. */
static void body_excerpt(const kiln_response *r, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < r->body_len && o + 1 < cap && i < 160; i++) {
        uint8_t c = r->body[i];
        out[o++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

int ev_deliver(const ev_target *t, const kiln_event *ev, kiln_err *err)
{
    if (t->abi->event != NULL)
        return t->abi->event(t->fn, t->state, t->pre, ev, err);
    kiln_request req;
    kiln_kv hdrs[5];
    char *body, *hbuf;
    int rc = ev_json_request(ev, t->path, &req, hdrs, &body, &hbuf);
    if (rc != KILN_OK)
        return kiln_err_set(err, rc, "out of memory building the event request");
    kiln_response resp;
    kiln_response_init(&resp, t->fn->max_output_bytes);
    rc = t->abi->handle(t->fn, t->state, t->pre, &req, &resp, err);
    if (rc == KILN_OK && (resp.status < 200 || resp.status > 299)) {
        char ex[200];
        body_excerpt(&resp, ex, sizeof(ex));
        rc = kiln_err_set(err, KILN_EGUEST, "the handler answered %d%s%s", resp.status,
                          ex[0] ? ": " : "", ex);
    } else if (rc != KILN_OK && err->msg[0] == '\0') {
        kiln_err_set(err, rc, "%s", kiln_strerror(rc));
    }
    kiln_response_fini(&resp);
    kiln_free(body);
    kiln_free(hbuf);
    return rc;
}
