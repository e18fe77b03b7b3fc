/*
 * conn_limit.c - open connections per client address, across every worker's
 * daemon (http_int.h). MHD's own per-IP limit counts per daemon, and with one
 * daemon per worker sharing the listening socket, which daemon accepts is up
 * to the kernel: a per-daemon share of the cap refused clients early while
 * other daemons had room. This table is consulted on accept (MHD's accept
 * policy callback) and updated when a connection starts and closes; it is
 * touched once per connection, never per request.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>

#include "base/alloc.h"
#include "http/http_int.h"

#define IP_BUCKETS 4096u

typedef struct ip_node {
    uint8_t key[16]; /* IPv6, or IPv4-mapped IPv6 */
    unsigned count;
    struct ip_node *next;
} ip_node;

struct http_ip_table {
    pthread_mutex_t lock;
    ip_node *buckets[IP_BUCKETS];
};

static bool addr_key(const struct sockaddr *sa, uint8_t key[16])
{
    memset(key, 0, 16);
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &in->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

static unsigned bucket_of(const uint8_t key[16])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % IP_BUCKETS;
}

int http_ip_table_new(http_ip_table **out)
{
    *out = kiln_calloc(1, sizeof(**out));
    if (*out == NULL)
        return KILN_ENOMEM;
    pthread_mutex_init(&(*out)->lock, NULL);
    return KILN_OK;
}

void http_ip_table_free(http_ip_table *t)
{
    if (t == NULL)
        return;
    for (unsigned b = 0; b < IP_BUCKETS; b++)
        for (ip_node *n = t->buckets[b], *next; n != NULL; n = next) {
            next = n->next;
            kiln_free(n);
        }
    pthread_mutex_destroy(&t->lock);
    kiln_free(t);
}

bool http_ip_admit(http_ip_table *t, const struct sockaddr *addr, unsigned cap)
{
    uint8_t key[16];
    if (cap == 0 || !addr_key(addr, key))
        return true;
    unsigned count = 0;
    pthread_mutex_lock(&t->lock);
    for (ip_node *n = t->buckets[bucket_of(key)]; n != NULL; n = n->next)
        if (memcmp(n->key, key, 16) == 0) {
            count = n->count;
            break;
        }
    pthread_mutex_unlock(&t->lock);
    return count < cap;
}

void http_ip_count(http_ip_table *t, const struct sockaddr *addr, int delta)
{
    uint8_t key[16];
    if (!addr_key(addr, key))
        return;
    unsigned b = bucket_of(key);
    pthread_mutex_lock(&t->lock);
    ip_node **pp = &t->buckets[b];
    while (*pp != NULL && memcmp((*pp)->key, key, 16) != 0)
        pp = &(*pp)->next;
    if (*pp == NULL && delta > 0) {
        ip_node *n = kiln_calloc(1, sizeof(*n));
        if (n != NULL) { /* out of memory: this connection goes uncounted */
            memcpy(n->key, key, 16);
            *pp = n;
        }
    }
    ip_node *n = *pp;
    if (n != NULL) {
        if (delta > 0)
            n->count += (unsigned)delta;
        else
            n->count = n->count > (unsigned)-delta ? n->count - (unsigned)-delta : 0;
        if (n->count == 0) {
            *pp = n->next;
            kiln_free(n);
        }
    }
    pthread_mutex_unlock(&t->lock);
}
