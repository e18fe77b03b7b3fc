/*
 * bg_compile.c - the server's background compiler (http_int.h). A module
 * whose artifact is not cached is compiled here, off the path of requests
 * and of table builds: first its fast tier (tcc: about 10x faster to build),
 * then its optimised tier (the configured compiler at -O2). After each
 * artifact lands in the cache the server is asked to rebuild its table,
 * which then loads the best cached tier (kiln_aot_load_best) and swaps it in
 * atomically. Parallelism is bounded (BG_THREADS) so compiles never take
 * every core from the workers. Fast-tier jobs go before every optimised one
 * (a function waiting for its first tier answers 503 meanwhile). A job
 * already queued or running for the same module and tier is not queued
 * again, nor one whose module content and tier failed before in this server:
 * a module serving its fast tier whose optimised tier fails (a compiler out
 * of memory) keeps serving it, with the failure logged once, instead of a
 * rebuild asking for the failed tier again and again. A module another ABI
 * loads itself (a component, handler.h "claims") is compiled by that ABI's
 * compile(): one tier of every core module it embeds, in one job.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "http/http_int.h"

#define BG_THREADS 1

typedef struct bg_job {
    struct bg_job *next;
    kiln_aot_options ao; /* tier set; cc/cache strings owned by the server's options */
    const kiln_abi_ops *loader; /* NULL: a core module; else compiles what the file embeds */
    char name[128];
    char hash[65];
    char path[];
} bg_job;

struct http_bg {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    bg_job *head, *tail;
    bg_job *last_fast; /* the last fast-tier job in the queue, NULL if none */
    bg_job *running[BG_THREADS];
    /* Module contents (hash) and tiers that failed: never queued again. */
    struct bg_failed {
        char hash[65];
        kiln_aot_tier tier;
    } *failed;
    size_t n_failed, cap_failed;
    pthread_t th[BG_THREADS];
    unsigned n_threads;
    bool stop;
    void (*done)(void *arg);
    void *arg;
};

static bool same(const bg_job *a, const char *hash, const char *path, kiln_aot_tier tier)
{
    return a != NULL && a->ao.tier == tier && strcmp(a->hash, hash) == 0 &&
           strcmp(a->path, path) == 0;
}

/* Under bg->lock. Best effort: out of memory, the tier may be tried again. */
static void remember_failed(http_bg *bg, const char *hash, kiln_aot_tier tier)
{
    if (bg->n_failed == bg->cap_failed) {
        size_t cap = bg->cap_failed ? bg->cap_failed * 2 : 8;
        struct bg_failed *f = kiln_realloc(bg->failed, cap * sizeof(*f));
        if (f == NULL)
            return;
        bg->failed = f;
        bg->cap_failed = cap;
    }
    snprintf(bg->failed[bg->n_failed].hash, sizeof(bg->failed[0].hash), "%s", hash);
    bg->failed[bg->n_failed++].tier = tier;
}

static bool failed_before(const http_bg *bg, const char *hash, kiln_aot_tier tier)
{
    for (size_t i = 0; i < bg->n_failed; i++)
        if (bg->failed[i].tier == tier && strcmp(bg->failed[i].hash, hash) == 0)
            return true;
    return false;
}

static void *bg_main(void *p)
{
    http_bg *bg = p;
    pthread_mutex_lock(&bg->lock);
    unsigned me = 0;
    while (me < BG_THREADS && !pthread_equal(bg->th[me], pthread_self()))
        me++;
    for (;;) {
        while (!bg->stop && bg->head == NULL)
            pthread_cond_wait(&bg->cv, &bg->lock);
        if (bg->stop)
            break;
        bg_job *j = bg->head;
        bg->head = j->next;
        if (bg->head == NULL)
            bg->tail = NULL;
        if (bg->last_fast == j)
            bg->last_fast = NULL;
        if (me < BG_THREADS)
            bg->running[me] = j;
        pthread_mutex_unlock(&bg->lock);

        kiln_module *m = NULL;
        kiln_err err;
        memset(&err, 0, sizeof(err));
        int rc = j->loader != NULL ? j->loader->compile(j->path, j->name, &j->ao, &err)
                                   : kiln_aot_load_file(j->path, &j->ao, &m, &err);
        if (rc == KILN_OK)
            http_log("kiln serve: function '%s': %s tier compiled", j->name,
                     kiln_aot_tier_name(j->ao.tier));
        else
            http_log("kiln serve: function '%s': %s tier failed: %s (not tried again until "
                     "the module changes or the server restarts)", j->name,
                     kiln_aot_tier_name(j->ao.tier), err.msg);
        kiln_module_release(m);

        pthread_mutex_lock(&bg->lock);
        if (me < BG_THREADS)
            bg->running[me] = NULL;
        if (rc != KILN_OK)
            remember_failed(bg, j->hash, j->ao.tier);
        /* A new artifact is always worth a rebuild. A failure only once no
         * other tier of the module is queued or compiling: the rebuild then
         * finds every tier remembered as failed and reports the module
         * unavailable, instead of queueing the failed tier again. */
        bool more = false;
        for (bg_job *q = bg->head; q != NULL && !more; q = q->next)
            more = strcmp(q->path, j->path) == 0 && strcmp(q->hash, j->hash) == 0;
        for (unsigned i = 0; i < BG_THREADS && !more; i++)
            more = bg->running[i] != NULL && strcmp(bg->running[i]->path, j->path) == 0;
        kiln_free(j);
        if (rc == KILN_OK || !more) {
            pthread_mutex_unlock(&bg->lock);
            bg->done(bg->arg);
            pthread_mutex_lock(&bg->lock);
        }
    }
    pthread_mutex_unlock(&bg->lock);
    return NULL;
}

int http_bg_new(void (*done)(void *arg), void *arg, http_bg **out)
{
    http_bg *bg = kiln_calloc(1, sizeof(*bg));
    *out = NULL;
    if (bg == NULL)
        return KILN_ENOMEM;
    pthread_mutex_init(&bg->lock, NULL);
    pthread_cond_init(&bg->cv, NULL);
    bg->done = done;
    bg->arg = arg;
    pthread_mutex_lock(&bg->lock);
    for (unsigned i = 0; i < BG_THREADS; i++)
        if (pthread_create(&bg->th[i], NULL, bg_main, bg) == 0)
            bg->n_threads++;
    pthread_mutex_unlock(&bg->lock);
    if (bg->n_threads == 0) {
        pthread_cond_destroy(&bg->cv);
        pthread_mutex_destroy(&bg->lock);
        kiln_free(bg);
        return KILN_EIO;
    }
    *out = bg;
    return KILN_OK;
}

void http_bg_free(http_bg *bg)
{
    if (bg == NULL)
        return;
    pthread_mutex_lock(&bg->lock);
    bg->stop = true;
    pthread_cond_broadcast(&bg->cv);
    pthread_mutex_unlock(&bg->lock);
    /* A compile in progress finishes (the tool runs have their own limits). */
    for (unsigned i = 0; i < bg->n_threads; i++)
        pthread_join(bg->th[i], NULL);
    for (bg_job *j = bg->head, *n; j != NULL; j = n) {
        n = j->next;
        kiln_free(j);
    }
    kiln_free(bg->failed);
    pthread_cond_destroy(&bg->cv);
    pthread_mutex_destroy(&bg->lock);
    kiln_free(bg);
}

void http_bg_submit(http_bg *bg, const char *name, const char *path, const char *hash,
                    const kiln_abi_ops *loader, const kiln_aot_options *ao, kiln_aot_tier tier)
{
    size_t pl = strlen(path) + 1;
    pthread_mutex_lock(&bg->lock);
    bool dup = failed_before(bg, hash, tier);
    for (bg_job *j = bg->head; j != NULL && !dup; j = j->next)
        dup = same(j, hash, path, tier);
    for (unsigned i = 0; i < BG_THREADS && !dup; i++)
        dup = same(bg->running[i], hash, path, tier);
    bg_job *j = dup ? NULL : kiln_malloc(sizeof(*j) + pl);
    if (j != NULL) {
        memset(j, 0, sizeof(*j));
        j->ao = *ao;
        j->ao.tier = tier;
        j->ao.cache_only = false;
        j->ao.imports = NULL; /* checked when the table links the module */
        j->loader = loader != NULL && loader->compile != NULL ? loader : NULL;
        snprintf(j->name, sizeof(j->name), "%s", name);
        snprintf(j->hash, sizeof(j->hash), "%s", hash);
        memcpy(j->path, path, pl);
        if (tier == KILN_AOT_TIER_FAST) {
            /* After the fast jobs already queued, before every optimised one. */
            bg_job **at = bg->last_fast ? &bg->last_fast->next : &bg->head;
            j->next = *at;
            *at = j;
            if (j->next == NULL)
                bg->tail = j;
            bg->last_fast = j;
        } else {
            if (bg->tail != NULL)
                bg->tail->next = j;
            else
                bg->head = j;
            bg->tail = j;
        }
        pthread_cond_signal(&bg->cv);
    }
    pthread_mutex_unlock(&bg->lock);
}
