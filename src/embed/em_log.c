/*
 * em_log.c - the process-wide log configuration of the Extism C API
 * (extism_log_file, extism_log_custom + extism_log_drain) and the sink every
 * plugin logs through, plus extism_version. Plugin log calls (log_info ...)
 * and WASI output at debug level arrive here as one line each:
 *     "<time> <LEVEL> <plugin>: <message>"
 * The buffer of extism_log_custom is capped (oldest lines dropped) so a
 * host that never drains cannot grow without bound.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/alloc.h"
#include "embed/embed_int.h"

#define EM_LOG_BUFFER_MAX 10000

enum { SINK_NONE, SINK_FILE, SINK_BUFFER };

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int sink = SINK_NONE;
static int level = XTM_LOG_OFF;
static FILE *file;
static bool file_owned;
static char **lines;
static size_t n_lines, first_line;

int em_log_level(void)
{
    pthread_mutex_lock(&log_lock);
    int l = level;
    pthread_mutex_unlock(&log_lock);
    return l;
}

/* Level names as Extism accepts them; NULL means "error" (Extism's default). */
static int parse_level(const char *s)
{
    if (s == NULL)
        return XTM_LOG_ERROR;
    /* Extism also takes tracing filters ("extism=debug,cranelift=warn"):
     * Kiln honours the extism= directive, else the first bare level. */
    const char *e = strstr(s, "extism=");
    char word[16];
    const char *w = e ? e + 7 : s;
    size_t n = strcspn(w, ",");
    if (n >= sizeof(word))
        return -1;
    memcpy(word, w, n);
    word[n] = '\0';
    int l = xtm_log_level_parse(word);
    return l;
}

static void close_file_locked(void)
{
    if (file != NULL && file_owned)
        fclose(file);
    file = NULL;
    file_owned = false;
}

EXTISM_API bool extism_log_file(const char *filename, const char *log_level)
{
    int l = parse_level(log_level);
    if (l < 0)
        return false;
    const char *name = filename ? filename : "stderr";
    FILE *f;
    bool owned = false;
    if (strcmp(name, "-") == 0 || strcmp(name, "stderr") == 0) {
        f = stderr;
    } else if (strcmp(name, "stdout") == 0) {
        f = stdout;
    } else {
        f = fopen(name, "a");
        if (f == NULL)
            return false;
        owned = true;
    }
    pthread_mutex_lock(&log_lock);
    close_file_locked();
    file = f;
    file_owned = owned;
    sink = SINK_FILE;
    level = l;
    pthread_mutex_unlock(&log_lock);
    return true;
}

EXTISM_API bool extism_log_custom(const char *log_level)
{
    int l = parse_level(log_level);
    if (l < 0)
        return false;
    pthread_mutex_lock(&log_lock);
    close_file_locked();
    sink = SINK_BUFFER;
    level = l;
    pthread_mutex_unlock(&log_lock);
    return true;
}

EXTISM_API void extism_log_drain(ExtismLogDrainFunctionType handler)
{
    if (handler == NULL)
        return;
    /* Take the lines, then call the handler unlocked: it may log. */
    pthread_mutex_lock(&log_lock);
    char **taken = lines;
    size_t n = n_lines, first = first_line;
    lines = NULL;
    n_lines = first_line = 0;
    pthread_mutex_unlock(&log_lock);
    for (size_t i = 0; i < n; i++) {
        char *s = taken[(first + i) % EM_LOG_BUFFER_MAX];
        handler(s, (ExtismSize)strlen(s));
        kiln_free(s);
    }
    kiln_free(taken);
}

static const char *upper_name(int l)
{
    static const char *const names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"};
    return l >= 0 && l < 5 ? names[l] : "OFF";
}

void em_log_write(void *user, int lvl, const char *fn_name, const char *msg, size_t len)
{
    ExtismPlugin *p = user;
    (void)fn_name;
    char ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t k = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + k, sizeof(ts) - k, ".%06ldZ", now.tv_nsec / 1000);
    const char *name = p != NULL && p->c != NULL ? p->c->name : "plugin";
    int shown = len > 1 << 20 ? 1 << 20 : (int)len;
    pthread_mutex_lock(&log_lock);
    if (lvl < level || sink == SINK_NONE) {
        pthread_mutex_unlock(&log_lock);
        return;
    }
    if (sink == SINK_FILE && file != NULL) {
        fprintf(file, "%s %5s %s: %.*s\n", ts, upper_name(lvl), name, shown, msg);
        fflush(file);
    } else if (sink == SINK_BUFFER) {
        size_t n = strlen(ts) + strlen(name) + (size_t)shown + 16;
        char *line = kiln_malloc(n);
        if (lines == NULL)
            lines = kiln_calloc(EM_LOG_BUFFER_MAX, sizeof(*lines));
        if (line != NULL && lines != NULL) {
            snprintf(line, n, "%s %5s %s: %.*s\n", ts, upper_name(lvl), name, shown, msg);
            if (n_lines == EM_LOG_BUFFER_MAX) {
                kiln_free(lines[first_line]);
                lines[first_line] = line;
                first_line = (first_line + 1) % EM_LOG_BUFFER_MAX;
            } else {
                lines[(first_line + n_lines++) % EM_LOG_BUFFER_MAX] = line;
            }
        } else {
            kiln_free(line);
        }
    }
    pthread_mutex_unlock(&log_lock);
}

EXTISM_API const char *extism_version(void)
{
    /* The Extism C API level implemented (1.9: compiled plugins, reset,
     * host context), then Kiln's own version. */
    return "1.9.0-kiln" KILN_VERSION;
}
