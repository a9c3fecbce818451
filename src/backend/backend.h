/* backend.h - the op table every numeric operation goes through.
 *
 * forward.c is written once against this table; cpu.c is the readable fp32
 * reference (OpenBLAS + OpenMP), cuda.c the fast one. All pointers passed to ops
 * are backend memory (host memory for the CPU backend, device memory for CUDA)
 * unless named `host`. Activations are fp32; weights are whatever the backend
 * uploaded (cl_bweight). Recurrent states are fp32.
 *
 * Sequence state lives in pools owned by the caller (src/model/cache.h) and
 * allocated through this table: attention KV in pages of `page_tokens` tokens
 * (one block table per sequence, shared by all attention layers), SSM states in
 * slots (one slot index per sequence, shared by all SSM layers). A batch names,
 * per sequence, its block table, slot, KV length before the batch and the tokens
 * it adds, so one op call serves a prefill chunk, a decode step of many
 * sequences, or a mix.
 */
#ifndef CL_BACKEND_H
#define CL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "common/dtype.h"
#include "common/rng.h" /* CL_RNG_* kinds of fill_random */

typedef struct cl_backend cl_backend;

/* A host tensor to upload, viewed as rows x cols (a vector has rows = 1): row r starts
 * at element r * ld (ld 0: cols), so a block of columns of a larger matrix can be
 * viewed without a copy. `name` is for error messages only. */
typedef struct {
    const void *data;
    cl_dtype dtype;
    int64_t rows, cols, ld;
    const char *name;
} cl_tensor_view;

/* An uploaded weight: rows x cols (a vector has rows = 1). */
typedef struct {
    void *data;
    cl_dtype dtype;
    int64_t rows, cols;
    int owned; /* 1 if the backend allocated data (0: aliases the mmap) */
} cl_bweight;

/* One sequence's part of a batch. */
typedef struct {
    int64_t tok_start;     /* first row of this sequence in the batch's token rows */
    int64_t n_tok;         /* rows it adds */
    int64_t kv_start;      /* KV slots already filled (new tokens go at kv_start..) */
    const int32_t *blocks; /* block table (host array): page i of this sequence */
    int32_t slot;          /* SSM state slot */
    int64_t hide_lo, hide_hi; /* KV slots [lo, hi) invisible to new queries (sw compose) */
} cl_batch_seq;

typedef struct {
    int n_seq;
    int64_t n_tok;             /* total rows */
    const cl_batch_seq *seq;   /* [n_seq] (host) */
    const int32_t *tokens;     /* [n_tok] token ids (host) */
    const int64_t *positions;  /* [n_tok] RoPE positions (host) */
    void *dev;                 /* backend's prepared copy (set by batch_prepare) */
} cl_batch;

/* Pools: per layer base pointers, geometry shared by all layers of a kind. */
typedef struct {
    void *k, *v;          /* [cap_pages, page_tokens, Hkv, D] in kv_dtype */
    int64_t page_tokens, n_kv_heads, head_dim;
    cl_dtype kv_dtype;
} cl_kv_layer;

typedef struct {
    float *conv;      /* [cap_slots, W-1, C] pre-activation conv inputs, oldest first */
    float *state;     /* [cap_slots, H, D, D]: M2 S[p][n], GDN S[k][v], GKA h_kv[k][v] */
    float *state2;    /* GKA h_kk [cap_slots, H, D, D] (NULL otherwise) */
    float *log_decay; /* [cap_slots, H]: M2 sum(dt*A), GDN/GKA sum(g) since the state began */
    float *trans;     /* GDN transition product P [cap_slots, H, D, D] (NULL if not tracked) */
    int64_t conv_channels, conv_width, n_heads, head_dim;
} cl_ssm_layer;

/* A run of KV slots to copy within the pools of every attention layer: absolute slot
 * indexes (page * page_tokens + offset) of its first source and destination slots. */
typedef struct {
    int64_t src, dst, n;
} cl_kv_run;

/* Where row i of a contiguous KV buffer belongs: pool (2 * attention layer + 0 for K,
 * 1 for V) and absolute slot. */
typedef struct {
    int32_t pool, slot;
} cl_kv_row;

/* Per-call settings of the mixer ops. */
typedef struct {
    int64_t n_heads, n_kv_heads, head_dim;
    float scale;          /* query scale (attention 1/sqrt(D); GDN 1/sqrt(D); GKA gla scale) */
    int64_t window;       /* SWA window (0: full attention) */
    /* GDN */
    int allow_neg_eigval;
    /* GKA */
    int64_t num_iter;
    float ridge_strength;
    int use_alpha;
} cl_mixer_params;

typedef struct cl_backend_ops {
    const char *name;
    /* tokens per forward call when a long prompt is fed (prefill); the engine's
     * default chunk on this backend: small on the CPU (bounded activations, no
     * gain from larger calls), large on a GPU (one call must fill the device) */
    int64_t feed_tokens;

    /* ---- memory ---- */
    void *(*alloc)(cl_backend *b, size_t bytes);          /* zero-filled; NULL on failure */
    void *(*realloc)(cl_backend *b, void *p, size_t old_bytes, size_t new_bytes); /* grows, keeps
                                                             contents, zero-fills the rest */
    void (*free)(cl_backend *b, void *p);
    int (*to_host)(cl_backend *b, void *host, const void *src, size_t bytes);
    int (*from_host)(cl_backend *b, void *dst, const void *host, size_t bytes);
    int (*copy)(cl_backend *b, void *dst, const void *src, size_t bytes);
    int (*zero)(cl_backend *b, void *dst, size_t bytes);
    int (*sync)(cl_backend *b);
    /* Memory the backend's allocations can still take, and its total (bytes). */
    int (*mem_info)(cl_backend *b, size_t *free_bytes, size_t *total_bytes);

    /* ---- weights ---- */
    /* Uploads a checkpoint tensor viewed as rows x cols (vector: rows 1) in the
     * backend's weight dtype for matmuls (`matrix` = 1) or fp32 (`matrix` = 0),
     * except that a backend may keep a 2-D table (the embedding) in the
     * checkpoint's 16-bit type; out->dtype says which. */
    int (*weight_upload)(cl_backend *b, const cl_tensor_view *t, int matrix, cl_bweight *out);
    /* Uploads fp32 host data (rows x cols) as an fp32 weight (fused small tensors). */
    int (*weight_from_f32)(cl_backend *b, const float *host, int64_t rows, int64_t cols,
                           cl_bweight *out);
    void (*weight_free)(cl_backend *b, cl_bweight *w);
    /* Fills n elements of dst (backend memory, of dtype F32/BF16/F16) with values
     * first.. of counter-based stream `key` (CL_RNG_* kinds), each rounded through
     * round_to (F32: not rounded) before it is stored: random-weight models and random
     * KV / state for benchmarks, generated where the memory lives. */
    int (*fill_random)(cl_backend *b, void *dst, cl_dtype dtype, size_t n, uint64_t key,
                       uint64_t first, int kind, float a, float bias, cl_dtype round_to);

    /* ---- batch ---- */
    int (*batch_prepare)(cl_backend *b, cl_batch *batch);
    void (*batch_release)(cl_backend *b, cl_batch *batch);

    /* ---- dense ops (T rows) ---- */
    int (*embed)(cl_backend *b, float *out, const cl_bweight *table, const cl_batch *batch);
    /* out[t] = x[t] * rsqrt(mean(x[t]^2) + eps) * w  (out may alias x) */
    int (*rmsnorm)(cl_backend *b, float *out, const float *x, const cl_bweight *w, int64_t rows,
                   int64_t dim, float eps);
    /* In place, per head of `dim` values: rows x heads vectors at x[r*ld + h*dim]. */
    int (*head_rmsnorm)(cl_backend *b, float *x, int64_t ld, const cl_bweight *w, int64_t rows,
                        int64_t heads, int64_t dim, float eps);
    /* out[t*ldo + n] = sum_k x[t*ldx + k] * W[n, k], t < rows, n < W.rows */
    int (*matmul)(cl_backend *b, float *out, int64_t ldo, const float *x, int64_t ldx,
                  const cl_bweight *w, int64_t rows);
    /* x += y (n values) */
    int (*add)(cl_backend *b, float *x, const float *y, int64_t n);
    /* out[t, i] = silu(gu[t, i]) * gu[t, I + i]  (gate and up side by side, ld 2I) */
    int (*swiglu)(cl_backend *b, float *out, const float *gu, int64_t rows, int64_t inter);
    /* RoPE rotate-half on rows x heads vectors of x (row stride ld), positions per row. */
    int (*rope)(cl_backend *b, float *x, int64_t ld, const cl_batch *batch, int64_t heads,
                int64_t dim, double theta);
    /* Copies the given rows (host index list) of x (width cols) to out, compacted. */
    int (*gather_rows)(cl_backend *b, float *out, const float *x, int64_t cols,
                       const int64_t *rows_host, int64_t n);

    /* ---- attention (SWA when p->window > 0) ----
     * q [T, Hq*D] (ld ldq), k/v [T, Hkv*D] (ld ldk) already normed and rotated.
     * Appends k, v at each sequence's kv_start.. then out[T, Hq*D] = softmax(qK^T*scale)V
     * with causal mask (query at slot kv_start+i sees slots <= itself, within the window,
     * minus the hidden range). */
    int (*attention)(cl_backend *b, float *out, const float *q, int64_t ldq, const float *k,
                     const float *v, int64_t ldk, const cl_kv_layer *kv, const cl_batch *batch,
                     const cl_mixer_params *p);

    /* ---- SSM ops ---- */
    /* Causal depthwise conv + SiLU over C channels (x rows at stride ldx), W taps
     * w [C, W] (tap W-1 = current token), optional bias [C]; updates the conv state. */
    int (*conv1d)(cl_backend *b, float *out, const float *x, int64_t ldx, const cl_bweight *w,
                  const cl_bweight *bias, const cl_ssm_layer *s, const cl_batch *batch);
    /* Mamba2 (spec MODEL.md §7): xbc = post-conv [T, conv_dim] = x [Hkv*D] | B [Hkv*D] |
     * C [Hq*D]; dt_raw rows at stride lddt; y [T, Hq*D]. Updates state and log_decay. */
    int (*mamba2)(cl_backend *b, float *y, const float *xbc, const float *dt_raw, int64_t lddt,
                  const cl_bweight *dt_bias, const cl_bweight *a_log, const cl_bweight *d_skip,
                  const cl_ssm_layer *s, const cl_batch *batch, const cl_mixer_params *p);
    /* Gated DeltaNet (§8): qkv post-conv [T, (Hq+2Hkv)*D]; beta_raw, gk_raw [T, H] at
     * stride ldg; out o [T, H*D]. Updates state, log_decay and (if tracked) trans. */
    int (*gdn)(cl_backend *b, float *o, const float *qkv, const float *beta_raw,
               const float *gk_raw, int64_t ldg, const cl_bweight *a_log,
               const cl_bweight *dt_bias, const cl_ssm_layer *s, const cl_batch *batch,
               const cl_mixer_params *p);
    /* Gated KalmaNet (§9): qkv post-conv; a_raw, b_raw, alpha_raw [T, H] at stride ldg
     * (biases not yet added); out o [T, H*D]. Updates state (h_kv), state2 (h_kk), log_decay. */
    int (*gka)(cl_backend *b, float *o, const float *qkv, const float *a_raw,
               const float *b_raw, const float *alpha_raw, int64_t ldg,
               const cl_bweight *b_bias, const cl_bweight *alpha_bias, const cl_bweight *a_log,
               const cl_bweight *dt_bias, const cl_ssm_layer *s, const cl_batch *batch,
               const cl_mixer_params *p);
    /* Mamba2 gated norm: y[t, h*D..] = rmsnorm_head(y * silu(z)) * w, z at stride ldz. */
    int (*gated_norm_m2)(cl_backend *b, float *y, const float *z, int64_t ldz,
                         const cl_bweight *w, int64_t rows, int64_t heads, int64_t dim,
                         float eps);
    /* fla FusedRMSNormGated: o[r, h] = o * rstd(o) * w * g * sigmoid(g), g at stride ldg. */
    int (*gated_norm_fla)(cl_backend *b, float *o, const float *g, int64_t ldg,
                          const cl_bweight *w, int64_t rows, int64_t heads, int64_t dim,
                          float eps);

    /* ---- logits ---- */
    /* ids[r] = argmax over V of logits[r*V ..] for rows r < rows (ids: host). */
    int (*argmax)(cl_backend *b, int32_t *ids_host, const float *logits, int64_t rows,
                  int64_t V);
    /* Element type this backend keeps projection matrices in for a checkpoint of the
     * given dtype (what weight_upload gives a matrix). */
    cl_dtype (*matrix_dtype)(cl_backend *b, cl_dtype weights);
    /* KV cache element type this backend uses for a checkpoint of the given dtype. */
    cl_dtype (*kv_dtype)(cl_backend *b, cl_dtype weights);

    /* ---- composition (optional: NULL means host copies, compose/strategy.c) ----
     * GDN fuse of one layer on the device: for every head h, state[out_slot][h] =
     * the matrix PICASO (compose/picaso.h) of (trans[slots[i]][h], state[slots[i]][h])
     * over the n documents, weight[k] for its k-document term; nothing else of
     * out_slot is touched. */
    int (*gdn_fuse)(cl_backend *b, const cl_ssm_layer *s, const int32_t *slots, int n,
                    const float *weight, int32_t out_slot);

    /* ---- moving state (reuse at bus speed) ----
     * KV rows move for every attention layer in one call; the host never walks pages. */
    /* Copies every run in the K and V pools of all n_layers layers. */
    int (*kv_copy_runs)(cl_backend *b, const cl_kv_layer *kv, int n_layers, const cl_kv_run *runs,
                        int64_t n_runs);
    /* buf (n rows of row_bytes, 16-byte aligned) <-> pool rows: gather = 0 writes row i
     * of buf to rows[i], gather = 1 reads rows[i] into row i. Every pointer is backend
     * memory (pools: the pool pointers, K and V of each attention layer), so a caller
     * can upload the row map together with the rows it describes and queue many moves
     * without waiting. */
    int (*kv_move_rows)(cl_backend *b, void *const *pools, int64_t row_bytes,
                        const cl_kv_row *rows, int64_t n, void *buf, int gather);
    /* Host memory the backend moves at full speed (page-locked on a GPU): staging for
     * restores and stores. NULL on failure. */
    void *(*host_alloc)(cl_backend *b, size_t bytes);
    void (*host_free)(cl_backend *b, void *p);
    /* Copies between host_alloc memory and backend memory, ordered with the ops (so a
     * kv_scatter issued after an upload sees its data) but not waited for: *ticket
     * names the copy; transfer_wait(ticket) returns once it (and all before it) ended,
     * after which the host buffer may be reused or read. */
    int (*upload_async)(cl_backend *b, void *dst, const void *host, size_t bytes,
                        uint64_t *ticket);
    int (*download_async)(cl_backend *b, void *host, const void *src, size_t bytes,
                          uint64_t *ticket);
    int (*transfer_wait)(cl_backend *b, uint64_t ticket);

    /* ---- composition on the backend (no host round trip) ----
     * Linear combination of one per-slot array of an SSM pool (conv, state, state2):
     * pool + out_slot * per_slot = sum_i coef[i * blocks + k] * (pool + slots[i] *
     * per_slot), blockwise: block k (per_slot / blocks floats, e.g. a head) has its own
     * coefficients. coef is host memory [n][blocks]. out_slot is none of the slots. */
    int (*ssm_lincomb)(cl_backend *b, float *pool, size_t per_slot, int64_t blocks,
                       const int32_t *slots, int n, const float *coef, int32_t out_slot);
    /* GDN CASO of one layer (optional, NULL: host copies): for every head,
     * state[out] = sum_i (P_n ... P_{i+1}) S_i and trans[out] = P_n ... P_1 (compose/
     * picaso.h), P = trans[slots[i]], S = state[slots[i]]. */
    int (*gdn_caso)(cl_backend *b, const cl_ssm_layer *s, const int32_t *slots, int n,
                    int32_t out_slot);

    /* ---- threads (optional: NULL means nothing to do) ----
     * Makes the calling thread ready to run this backend's ops: the CUDA device made
     * current, the CPU backend's OpenMP team size set. Tensor-parallel rank threads
     * call it once (backend/ranks.h). */
    int (*bind_thread)(cl_backend *b);

    /* ---- teardown ---- */
    void (*destroy)(cl_backend *b);
} cl_backend_ops;

struct cl_backend {
    const cl_backend_ops *ops;
    int threads;
    void *impl;
};

/* Creates a backend by name ("cpu", "cuda", or NULL/"auto": cuda when a GPU is
 * present and the build has it, else cpu). */
int cl_backend_create(const char *name, int threads, cl_backend **out);
/* The same on a given device (CUDA: device index; the CPU backend has one). */
int cl_backend_create_device(const char *name, int threads, int device, cl_backend **out);
void cl_backend_destroy(cl_backend *b);
/* 1 if this build has the CUDA backend and a device is visible. */
int cl_backend_cuda_available(void);

int cl_backend_cpu_create(int threads, cl_backend **out);
#ifdef COLLAGE_HAVE_CUDA
int cl_backend_cuda_create(int device, cl_backend **out);
#endif

#endif
