/* tiers.c - see tiers.h. */
#include "engine/tiers.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "engine/state.h"

typedef struct {
    cl_store_kind kind;
    cl_key key;
    cl_tier tier;
    cl_seq seq;       /* device tier */
    void *bytes;      /* host tier: a snapshot of the whole state */
    size_t len;
    int64_t tokens;   /* the state's KV slots (a snapshot's position) */
    uint64_t size;    /* bytes accounted against the tier's budget */
    uint64_t last_use;
    int holds;
} entry;

struct cl_tiers {
    cl_cache *c;
    uint64_t budget[3], used[3];
    entry *e;
    int n, cap;
    int gpu_max; /* most device-tier entries (0: no limit) */
    uint64_t clock;
};

int cl_tiers_create(cl_cache *c, uint64_t gpu_bytes, uint64_t host_bytes, int gpu_max_states,
                    cl_tiers **out)
{
    cl_tiers *t = calloc(1, sizeof *t);
    if (!t)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    t->c = c;
    t->budget[CL_TIER_GPU] = gpu_bytes;
    t->budget[CL_TIER_HOST] = host_bytes;
    t->gpu_max = gpu_max_states;
    *out = t;
    return CL_OK;
}

static void drop(cl_tiers *t, int i)
{
    entry *e = &t->e[i];
    t->used[e->tier] -= e->size;
    if (e->tier == CL_TIER_GPU)
        cl_seq_release(&e->seq);
    free(e->bytes);
    t->e[i] = t->e[--t->n];
}

void cl_tiers_free(cl_tiers *t)
{
    if (!t)
        return;
    while (t->n)
        drop(t, t->n - 1);
    free(t->e);
    free(t);
}

static int find(const cl_tiers *t, cl_store_kind kind, const cl_key *key)
{
    for (int i = 0; i < t->n; i++)
        if (t->e[i].kind == kind && cl_key_eq(&t->e[i].key, key))
            return i;
    return -1;
}

cl_tier cl_tiers_has(const cl_tiers *t, cl_store_kind kind, const cl_key *key)
{
    int i = t ? find(t, kind, key) : -1;
    return i < 0 ? CL_TIER_NONE : t->e[i].tier;
}

static uint64_t state_size(const cl_cache *c, int64_t kv_len)
{
    return (uint64_t)cl_state_kv_bytes(c, kv_len) + (uint64_t)cl_state_ssm_bytes(c, 1);
}

/* The least recently used entry of a tier that nobody holds (-1: none). */
static int lru(const cl_tiers *t, cl_tier tier)
{
    int best = -1;
    for (int i = 0; i < t->n; i++)
        if (t->e[i].tier == tier && !t->e[i].holds &&
            (best < 0 || t->e[i].last_use < t->e[best].last_use))
            best = i;
    return best;
}

static int add_entry(cl_tiers *t, entry **out)
{
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        entry *ne = realloc(t->e, (size_t)cap * sizeof *ne);
        if (!ne)
            return cl_err(CL_ERR_NOMEM, "out of memory");
        t->e = ne;
        t->cap = cap;
    }
    *out = &t->e[t->n++];
    memset(*out, 0, sizeof **out);
    return CL_OK;
}

/* Room for `size` bytes in the host tier: LRU entries dropped (they are in the store). */
static int host_room(cl_tiers *t, uint64_t size)
{
    if (size > t->budget[CL_TIER_HOST])
        return 0;
    while (t->used[CL_TIER_HOST] + size > t->budget[CL_TIER_HOST]) {
        int v = lru(t, CL_TIER_HOST);
        if (v < 0)
            return 0;
        drop(t, v);
    }
    return 1;
}

/* The state of device entry i moves to the host tier (or is dropped when it has none). */
static int demote(cl_tiers *t, int i)
{
    entry *e = &t->e[i];
    if (t->budget[CL_TIER_HOST] && e->size <= t->budget[CL_TIER_HOST]) {
        void *bytes;
        size_t len;
        int rc = cl_state_snapshot(&e->seq, 0, &bytes, &len);
        if (rc != CL_OK)
            return rc;
        /* room first (may drop other host entries; e's index is stable: it is a GPU entry
         * and drop() moves only the last element into the dropped one's place) */
        cl_key key = e->key;
        cl_store_kind kind = e->kind;
        if (!host_room(t, e->size)) {
            free(bytes);
        } else {
            int j = find(t, kind, &key);
            e = &t->e[j];
            cl_seq_release(&e->seq);
            t->used[CL_TIER_GPU] -= e->size;
            e->tier = CL_TIER_HOST;
            e->bytes = bytes;
            e->len = len;
            t->used[CL_TIER_HOST] += e->size;
            return CL_OK;
        }
        i = find(t, kind, &key);
    }
    drop(t, i);
    return CL_OK;
}

static int tier_entries(const cl_tiers *t, cl_tier tier)
{
    int k = 0;
    for (int i = 0; t && i < t->n; i++)
        k += t->e[i].tier == tier;
    return k;
}

static int gpu_room(cl_tiers *t, uint64_t size)
{
    if (size > t->budget[CL_TIER_GPU])
        return 0;
    while (t->used[CL_TIER_GPU] + size > t->budget[CL_TIER_GPU] ||
           (t->gpu_max && tier_entries(t, CL_TIER_GPU) >= t->gpu_max)) {
        int v = lru(t, CL_TIER_GPU);
        if (v < 0 || demote(t, v) != CL_OK)
            return 0;
    }
    return 1;
}

int cl_tiers_offer(cl_tiers *t, cl_store_kind kind, const cl_key *key, cl_seq *s, int adopt,
                   int *taken)
{
    if (taken)
        *taken = 0;
    if (!t || s->kv_len != s->pos)
        return CL_OK; /* a composed state is not a stored value's */
    int i = find(t, kind, key);
    if (i >= 0) {
        t->e[i].last_use = ++t->clock;
        return CL_OK;
    }
    uint64_t size = state_size(t->c, s->kv_len);
    if (t->budget[CL_TIER_GPU] && gpu_room(t, size)) {
        entry *e;
        CL_TRY(add_entry(t, &e));
        if (adopt) {
            e->seq = *s; /* the entry owns its slot and pages now */
            if (taken)
                *taken = 1;
        } else {
            int rc = cl_seq_init(&e->seq, t->c);
            if (rc == CL_OK)
                rc = cl_seq_copy(&e->seq, s);
            if (rc != CL_OK) { /* no room in a fixed cache: the host tier, if any */
                if (e->seq.c)
                    cl_seq_release(&e->seq);
                t->n--;
                cl_err_clear();
                goto host;
            }
        }
        e->kind = kind;
        e->key = *key;
        e->tier = CL_TIER_GPU;
        e->tokens = s->kv_len;
        e->size = size;
        e->last_use = ++t->clock;
        t->used[CL_TIER_GPU] += size;
        return CL_OK;
    }
host:
    if (t->budget[CL_TIER_HOST] && host_room(t, size)) {
        void *bytes;
        size_t len;
        CL_TRY(cl_state_snapshot(s, 0, &bytes, &len));
        entry *e;
        int rc = add_entry(t, &e);
        if (rc != CL_OK) {
            free(bytes);
            return rc;
        }
        e->kind = kind;
        e->key = *key;
        e->tier = CL_TIER_HOST;
        e->bytes = bytes;
        e->len = len;
        e->tokens = s->kv_len;
        e->size = size;
        e->last_use = ++t->clock;
        t->used[CL_TIER_HOST] += size;
    }
    return CL_OK;
}

const cl_seq *cl_tiers_hold(cl_tiers *t, cl_store_kind kind, const cl_key *key)
{
    int i = t ? find(t, kind, key) : -1;
    if (i < 0 || t->e[i].tier != CL_TIER_GPU)
        return NULL;
    t->e[i].holds++;
    t->e[i].last_use = ++t->clock;
    return &t->e[i].seq;
}

void cl_tiers_release(cl_tiers *t, const cl_seq *s)
{
    for (int i = 0; t && i < t->n; i++)
        if (t->e[i].tier == CL_TIER_GPU && &t->e[i].seq == s && t->e[i].holds > 0) {
            t->e[i].holds--;
            return;
        }
}

int cl_tiers_restore(cl_tiers *t, cl_store_kind kind, const cl_key *key, cl_seq *s,
                     cl_tier *tier)
{
    *tier = CL_TIER_NONE;
    int i = t ? find(t, kind, key) : -1;
    if (i < 0)
        return CL_OK;
    entry *e = &t->e[i];
    e->last_use = ++t->clock;
    if (e->tier == CL_TIER_GPU)
        CL_TRY(cl_seq_copy(s, &e->seq));
    else
        CL_TRY(cl_state_restore(s, e->bytes, e->len, "host-tier state"));
    *tier = e->tier;
    return CL_OK;
}

int cl_tiers_entry(const cl_tiers *t, cl_store_kind kind, int i, cl_key *key, int64_t *tokens)
{
    /* most recently used first: a small selection over the few entries a tier holds */
    uint64_t bound = UINT64_MAX;
    int pick = -1;
    for (int k = 0; t && k <= i; k++) {
        pick = -1;
        for (int j = 0; j < t->n; j++)
            if (t->e[j].kind == kind && t->e[j].last_use < bound &&
                (pick < 0 || t->e[j].last_use > t->e[pick].last_use))
                pick = j;
        if (pick < 0)
            return 0;
        bound = t->e[pick].last_use;
    }
    if (pick < 0)
        return 0;
    *key = t->e[pick].key;
    *tokens = t->e[pick].tokens;
    return 1;
}

void cl_tiers_usage(const cl_tiers *t, uint64_t *gpu_bytes, uint64_t *host_bytes,
                    uint64_t *gpu_entries, uint64_t *host_entries)
{
    *gpu_bytes = t ? t->used[CL_TIER_GPU] : 0;
    *host_bytes = t ? t->used[CL_TIER_HOST] : 0;
    *gpu_entries = (uint64_t)tier_entries(t, CL_TIER_GPU);
    *host_entries = (uint64_t)tier_entries(t, CL_TIER_HOST);
}
