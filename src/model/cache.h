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

typedef struct {
    int64_t page_tokens;   /* tokens per KV page (default 64) */
    int64_t init_pages;    /* initial pool size in pages */
    int64_t init_slots;    /* initial number of SSM slots */
    int growable;          /* 1: pools grow on demand */
    int track_transition;  /* keep the GDN transition product (for GDN fuse / CASO) */
    cl_dtype kv_dtype;     /* F32 on the CPU */
} cl_cache_opts;

typedef struct {
    cl_backend *b;
    cl_cache_opts o;
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
} cl_cache;

void cl_cache_opts_default(cl_cache_opts *o);
/* Defaults for a model: the backend's KV dtype for the checkpoint's dtype. */
void cl_cache_opts_for_model(const cl_model *m, cl_cache_opts *o);
int cl_cache_create(const cl_model *m, const cl_cache_opts *o, cl_cache **out);
void cl_cache_free(cl_cache *c);

/* Pages: n fresh page indices into out. */
int cl_cache_alloc_pages(cl_cache *c, int64_t n, int32_t *out);
void cl_cache_release_pages(cl_cache *c, const int32_t *pages, int64_t n);
/* Slots: a fresh slot, reset to the zero state (transition = identity). */
int cl_cache_alloc_slot(cl_cache *c, int32_t *slot);
void cl_cache_release_slot(cl_cache *c, int32_t slot);
int cl_cache_reset_slot(cl_cache *c, int32_t slot);
/* Copies slot src to slot dst (all SSM layers). */
int cl_cache_copy_slot(cl_cache *c, int32_t dst, int32_t src);

/* Bytes of one KV page of one layer (K or V). */
size_t cl_cache_page_bytes(const cl_cache *c);
/* Floats of each per-slot component of SSM layer i. */
size_t cl_cache_conv_floats(const cl_cache *c, int i);
size_t cl_cache_state_floats(const cl_cache *c, int i);

#endif
