/* cache.h - memory for sequence state: attention KV pages and SSM state slots.
 *
 * Every attention layer has a K and a V pool of pages ([page_tokens, Hkv, D]
 * each); a sequence owns a list of page indices shared by all attention layers.
 * Every SSM layer has pools of conv state, recurrent state(s), log decay and
 * (when tracked) GDN transition product; a sequence owns one slot index shared
 * by all SSM layers. Growable pools (CPU) double on demand; fixed pools (GPU)
 * report CL_ERR_FULL, which is how admission control learns that memory is out.
 */
#ifndef CL_CACHE_H
#define CL_CACHE_H

#include "backend/backend.h"
#include "model/model.h"

/* cl_cache_opts, cl_cache_create/free and cl_cache_stats_get are public (collage.h). */

struct cl_cache {
    cl_backend *b;
    cl_cache_opts o;
    cl_dtype kv_dtype;    /* the backend's KV element type for this model */
    int n_attn, n_ssm;
    cl_kv_layer *kv;   /* [n_attn] */
    cl_ssm_layer *ssm; /* [n_ssm] */
    cl_layer_type *ssm_type; /* [n_ssm] */
    int64_t cap_pages, cap_slots;
    int32_t *free_pages; /* stack */
    int64_t n_free_pages;
    int32_t *free_slots;
    int64_t n_free_slots;
    float *identity;     /* host [H, D, D] identities (GDN transition reset) */
    /* state I/O staging owned by the engine (engine/kv_io.c), freed with the cache */
    void *io;
    void (*io_free)(void *io);
    /* Tensor parallelism: the cache of a sharded model keeps the page and slot
     * bookkeeping and the full-model geometry (kv, ssm: pool pointers NULL); each
     * rank's cache holds the pools of its heads, page and slot indexes shared. */
    int tp;
    cl_cache **shard;  /* [tp] (NULL: not sharded) */
    cl_ranks *ranks;   /* the model's rank threads */
};


/* Pages: n fresh page indices into out. */
int cl_cache_alloc_pages(cl_cache *c, int64_t n, int32_t *out);
void cl_cache_release_pages(cl_cache *c, const int32_t *pages, int64_t n);
/* Slots: a fresh slot, reset to the zero state (transition = identity). */
int cl_cache_alloc_slot(cl_cache *c, int32_t *slot);
void cl_cache_release_slot(cl_cache *c, int32_t slot);
int cl_cache_reset_slot(cl_cache *c, int32_t slot);
/* Copies slot src to slot dst (all SSM layers). */
int cl_cache_copy_slot(cl_cache *c, int32_t dst, int32_t src);

/* 1 if SSM layer i keeps the GDN transition product. */
int cl_cache_has_trans(const cl_cache *c, int i);

/* Bytes of one KV page of one layer (K or V). */
size_t cl_cache_page_bytes(const cl_cache *c);
/* Floats of each per-slot component of SSM layer i. */
size_t cl_cache_conv_floats(const cl_cache *c, int i);
size_t cl_cache_state_floats(const cl_cache *c, int i);

#endif
