/* kernels.h - the C interface of the CUDA kernels (the .cu files of kernels/).
 *
 * Every launcher enqueues its work on `stream` and returns the cudaError_t of
 * the launch (cudaSuccess = 0); the CUDA backend (src/backend/cuda*.c) turns a
 * non-zero value into CL_ERR_BACKEND naming the call. Activations are fp32;
 * weights are fp32, bf16 or f16 (KL_F32 / KL_BF16 / KL_F16, the values of
 * cl_dtype); recurrent states are fp32. Per-batch data (token ids, positions,
 * block tables, SSM slots, tile lists) live on the device in a kl_batch, so a
 * decode step of a fixed batch shape launches the same kernels with the same
 * arguments every time (what a CUDA graph replay needs).
 */
#ifndef CL_KERNELS_H
#define CL_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types (same values as cl_dtype). */
enum { KL_F32 = 0, KL_F16 = 1, KL_BF16 = 2 };

/* Rows per query tile of the prefill attention, tokens per chunk of the chunked
 * SSM forms (the CPU backend chunks the same way, so both round alike). */
#define KL_ATTN_TILE 128
#define KL_SSM_CHUNK 64

/* One sequence of a batch, on the device. */
typedef struct {
    int64_t tok_start, n_tok, kv_start, hide_lo, hide_hi;
    int64_t blocks_off; /* first entry of its block table in kl_batch.blocks */
    int32_t slot;       /* SSM slot */
    int32_t chunk0;     /* first entry of its SSM chunks in kl_batch.chunks */
    int32_t n_chunks;
    int32_t pad_;
} kl_seq;

typedef struct {
    int n_seq;
    int decode;          /* 1: every sequence adds exactly one token */
    int64_t n_tok;
    const int32_t *tokens;    /* [n_tok] */
    const int64_t *positions; /* [n_tok] */
    const int32_t *row_seq;   /* [n_tok] sequence of each row */
    const kl_seq *seq;        /* [n_seq] */
    const int32_t *blocks;    /* block tables, concatenated */
    const int32_t *tiles;     /* [n_tiles][2]: sequence, first row within it (attention) */
    int n_tiles;
    int n_chunks;             /* SSM chunks over all sequences */
    const int32_t *chunks;    /* [n_chunks][3]: sequence, first batch row, rows */
} kl_batch;

/* One layer's paged KV pools. */
typedef struct {
    void *k, *v; /* [pages, page_tokens, Hkv, D] */
    int64_t page_tokens, n_kv_heads, head_dim;
    int dtype;
} kl_kv;

/* One SSM layer's state pools (see cl_ssm_layer). */
typedef struct {
    float *conv, *state, *state2, *log_decay, *trans;
    int64_t conv_channels, conv_width, n_heads, head_dim;
} kl_ssm;

/* Mixer settings (see cl_mixer_params). */
typedef struct {
    int64_t n_heads, n_kv_heads, head_dim;
    float scale;
    int64_t window;
    int allow_neg_eigval;
    int64_t num_iter;
    float ridge;
    int use_alpha;
    int fast; /* 1: bf16 model, tensor-core paths allowed */
} kl_mix;

/* Profiling hook (COLLAGE_CUDA_PROFILE): when set, launchers of multi-kernel
 * ops call it after each kernel with the kernel's name, so the profile can
 * split an op's time. NULL otherwise (the check is all it costs). */
extern void (*kl_mark)(const char *name);
#define KL_MARK(name)         \
    do {                      \
        if (kl_mark)          \
            kl_mark(name);    \
    } while (0)

/* Programmatic dependent launch for the decode-path kernels (COLLAGE_CUDA_PDL,
 * default 1; set by the backend before the first launch). */
extern int kl_pdl;

/* ---- kv_move.cu ---- */
/* A run of KV rows to copy within the pools: absolute slot indexes (page *
 * page_tokens + offset) of its first source and destination rows, and its length. */
typedef struct {
    int64_t src, dst, n;
} kl_kv_run;
/* pools: device array of n_pools pool pointers (K and V of every attention layer);
 * row_bytes (a multiple of 16) per slot. Copies every run in every pool: one launch. */
cudaError_t kl_kv_copy_runs(void *const *pools, int n_pools, int64_t row_bytes,
                            const kl_kv_run *runs, int n_runs, cudaStream_t stream);
/* Where row i of a contiguous buffer goes: pool index and absolute slot. */
typedef struct {
    int32_t pool, slot;
} kl_kv_row;
/* buf (16-byte aligned) holds n rows: gather = 0 writes row i to rows[i], gather = 1
 * reads rows[i] into row i. */
cudaError_t kl_kv_move_rows(void *const *pools, int64_t row_bytes, const kl_kv_row *rows,
                            int64_t n, void *buf, int gather, cudaStream_t stream);

/* out slot of an SSM pool array = sum_d coef[d][k] * slot d's, blockwise (k = index /
 * (per_slot / blocks)); slots [n] and coef [n][blocks] in device memory. */
cudaError_t kl_ssm_lincomb(float *pool, int64_t per_slot, int64_t blocks, const int32_t *slots,
                           int n, const float *coef, int32_t out_slot, cudaStream_t stream);

/* ---- elementwise.cu ---- */
/* dst[r*cols + c] = src[r*ld_src + c] converted to dtype (KL_BF16 / KL_F16 / KL_F32). */
cudaError_t kl_convert(void *dst, int dtype, const float *src, int64_t rows, int64_t cols,
                       int64_t ld_src, cudaStream_t stream);
cudaError_t kl_add(float *x, const float *y, int64_t n, cudaStream_t stream);
/* out16 (optional, bf16, same layout as out): a copy for the next GEMM's input */
cudaError_t kl_swiglu(float *out, const float *gu, int64_t rows, int64_t inter, void *out16,
                      cudaStream_t stream);
cudaError_t kl_gather_rows(float *out, const float *x, int64_t cols, const int64_t *rows,
                           int64_t n, cudaStream_t stream);
cudaError_t kl_embed(float *out, const void *table, int dtype, int64_t dim,
                     const int32_t *tokens, int64_t n, cudaStream_t stream);
/* ids[r] = first index of the maximum of logits[r*V ..]. */
cudaError_t kl_argmax(int32_t *ids, const float *logits, int64_t rows, int64_t V,
                      cudaStream_t stream);

/* ---- norm.cu ---- */
/* out16 / y16 / o16 (optional, bf16 [rows][dim or heads*dim]): the result again in
 * bf16, so the projection that follows needs no conversion pass. */
cudaError_t kl_rmsnorm(float *out, const float *x, const float *w, int64_t rows, int64_t dim,
                       float eps, void *out16, cudaStream_t stream);
/* x += y, then out = rmsnorm(x) * w (+ out16): the residual add and the norm after
 * it in one pass (cudaErrorNotSupported unless dim % 4 == 0, dim <= 16384 and the
 * pointers are 16-byte aligned). */
cudaError_t kl_add_rmsnorm(float *x, const float *y, float *out, const float *w, int64_t rows,
                           int64_t dim, float eps, void *out16, cudaStream_t stream);
cudaError_t kl_head_rmsnorm(float *x, int64_t ld, const float *w, int64_t rows, int64_t heads,
                            int64_t dim, float eps, cudaStream_t stream);
cudaError_t kl_gated_norm_m2(float *y, const float *z, int64_t ldz, const float *w, int64_t rows,
                             int64_t heads, int64_t dim, float eps, void *y16,
                             cudaStream_t stream);
cudaError_t kl_gated_norm_fla(float *o, const float *g, int64_t ldg, const float *w,
                              int64_t rows, int64_t heads, int64_t dim, float eps, void *o16,
                              cudaStream_t stream);

/* ---- rope.cu ---- */
cudaError_t kl_rope(float *x, int64_t ld, const int64_t *positions, int64_t rows, int64_t heads,
                    int64_t dim, double theta, cudaStream_t stream);

/* q/k head RMSNorms (weights wq [D], wk [D]), RoPE of q and k, and the append of
 * k and v to the KV cache, for rows x (Hq | Hkv | Hkv) head vectors at row stride
 * ld starting at q (k and v follow q in the row). D in {32, 64, 128, 256}, else
 * cudaErrorNotSupported. */
cudaError_t kl_qk_prep(float *q, int64_t ld, const float *wq, const float *wk, int64_t rows,
                       int64_t Hq, int64_t Hkv, int64_t D, float eps, double theta,
                       const kl_kv *kv, const kl_batch *b, cudaStream_t stream);

/* ---- conv.cu ---- */
cudaError_t kl_conv1d(float *out, const float *x, int64_t ldx, const float *w, const float *bias,
                      const kl_ssm *s, const kl_batch *b, cudaStream_t stream);

/* ---- gemv.cu ---- */
/* out[t*ldo + n] = sum_k x[t*ldx + k] * W[n, k] for t < rows (rows <= KL_GEMV_MAX_ROWS),
 * x fp32, W bf16 or f16 [N, K] (K % 8 == 0). For small decode batches, where the
 * product only streams W and a GEMM library is not at the bandwidth limit. */
#define KL_GEMV_MAX_ROWS 8
cudaError_t kl_gemv(float *out, int64_t ldo, const float *x, int64_t ldx, const void *w,
                    int dtype, int64_t N, int64_t K, int64_t rows, cudaStream_t stream);

/* ---- gemm_skinny.cu ---- */
/* out[r*ldo + n] = sum_k X[r, k] W[n, k] for r < rows <= KL_SKINNY_MAX_ROWS on the
 * tensor cores; X bf16 [rows][K] packed, W bf16 [N][K], K % 8 == 0. */
#define KL_SKINNY_MAX_ROWS 128
cudaError_t kl_gemm_skinny(float *out, int64_t ldo, const void *x16, const void *w, int64_t N,
                           int64_t K, int64_t rows, int sm_count, cudaStream_t stream);
/* Host-side setup (shared-memory limits); once, outside graph capture. */
cudaError_t kl_gemm_skinny_prepare(void);

/* ---- gemm_small.cu ---- */
/* out[r*ldo + n] = sum_k X[r, k] W[n, k] for r < rows <= KL_SMALL_MAX_ROWS, W bf16
 * [N][K] (K % 8 == 0, 16-byte aligned); X fp32 (x_bf16 = 0, ldx % 4 == 0) or bf16
 * (ldx % 8 == 0), 16-byte aligned. No scratch, no memset; launched with
 * programmatic dependent launch when kl_pdl is set. */
#define KL_SMALL_MAX_ROWS 32
/* block shape of the <= 8-row kernel (tuning runs): 0 = 8 warps x 2 chunks per load
 * group (fastest in the batch-1 decode graph), 1 = 4 warps x 4, 2 = 8 x 4, 3 = 16 x 4,
 * 4 = 16 x 2, 5 = 4 x 2, 6 = 8 x 1 */
extern int kl_small_variant;
cudaError_t kl_gemm_small(float *out, int64_t ldo, const void *x, int x_bf16, int64_t ldx,
                          const void *w, int64_t N, int64_t K, int64_t rows, cudaStream_t stream);

/* ---- gemm_wgmma.cu ---- */
/* The same product for rows <= 128 with wgmma (sm_90a builds only: otherwise
 * kl_gemm_wgmma_available() is 0 and kl_gemm_wgmma returns cudaErrorNotSupported).
 * X bf16 [rows][K] packed; out is zeroed (memset) and accumulated. */
int kl_gemm_wgmma_available(void);
cudaError_t kl_gemm_wgmma(float *out, int64_t ldo, const void *x16, const void *w, int64_t N,
                          int64_t K, int64_t rows, int sm_count, cudaStream_t stream);
/* Host-side setup (shared-memory limits); once, outside graph capture. */
cudaError_t kl_gemm_wgmma_prepare(void);

/* ---- attention.cu ---- */
/* Writes k, v rows [n_tok, Hkv*D] (row stride ldk) at each sequence's kv_start.. */
cudaError_t kl_kv_append(const kl_kv *kv, const float *k, const float *v, int64_t ldk,
                         const kl_batch *b, cudaStream_t stream);
/* Decode (one query per sequence): split-KV partials then a combine. `partial`
 * holds n_seq * Hq * n_split * (D + 2) floats. */
int kl_attn_decode_splits(int n_seq, int64_t n_kv_heads, int sm_count);
/* 1 (COLLAGE_CUDA_SPLITS=old): the first round's split count at small batches (A/B) */
extern int kl_attn_splits_old;
cudaError_t kl_attn_decode(float *out, const float *q, int64_t ldq, const kl_kv *kv,
                           const kl_batch *b, const kl_mix *p, float *partial, int n_split,
                           cudaStream_t stream);
/* The tensor-core decode kernel (bf16 KV, D = 128, G <= 16), used by
 * kl_attn_decode when it applies; out == NULL: host-side setup only. */
cudaError_t kl_attn_decode_mma(float *out, const float *q, int64_t ldq, const kl_kv *kv,
                               const kl_batch *b, const kl_mix *p, float *partial, int n_split,
                               cudaStream_t stream);
/* Host-side setup of the decode kernel for this KV geometry (shared-memory
 * limit); call outside graph capture, before the first kl_attn_decode. */
cudaError_t kl_attn_decode_prepare(const kl_kv *kv, const kl_mix *p);
/* Prefill / mixed batches: every row against its sequence's visible slots (any KV dtype). */
cudaError_t kl_attn_prefill(float *out, const float *q, int64_t ldq, const kl_kv *kv,
                            const kl_batch *b, const kl_mix *p, cudaStream_t stream);
/* Tensor-core flash attention for bf16 KV, D == 128 (returns cudaErrorNotSupported otherwise).
 * kl_fa_old = 0: the wgmma kernel where built for sm_90a, else fa2; 2 (COLLAGE_CUDA_FA=nopack):
 * fa2 with 128 rows of one head per block also when 4 query heads share a KV head; 3 (=fa2):
 * fa2 (A/B runs). */
extern int kl_fa_old;
/* The wgmma kernel alone (cudaErrorNotSupported without sm_90a or for other shapes);
 * kl_fa3_variant (A/B runs): 0 = 128 keys per tile, S of the next tile overlapping the
 * softmax (default); 1 = 128 keys, no overlap (COLLAGE_CUDA_FA=wg128s); 2 = 64 keys
 * (=wg64); 3 = 64 keys, no overlap (=wg64s). */
extern int kl_fa3_variant;
cudaError_t kl_attn_prefill_wgmma(float *out, const float *q, int64_t ldq, const kl_kv *kv,
                                  const kl_batch *b, const kl_mix *p, cudaStream_t stream);
cudaError_t kl_attn_prefill_mma(float *out, const float *q, int64_t ldq, const kl_kv *kv,
                                const kl_batch *b, const kl_mix *p, cudaStream_t stream);

/* ---- mamba2.cu / gdn.cu / gka.cu ---- */
/* Floats of scratch the chunked (prefill) forms need for n_chunks chunks of H
 * heads (decode batches need none). */
enum { KL_SSM_M2 = 0, KL_SSM_GDN = 1, KL_SSM_GKA = 2 };
/* Host-side setup of the SSM decode kernels (shared-memory limits); once,
 * outside graph capture. */
cudaError_t kl_ssm_prepare(void);
size_t kl_m2_scratch_floats(int64_t n_chunks, int64_t H, int64_t D);
size_t kl_gdn_scratch_floats(int64_t n_chunks, int64_t H, int64_t D);
size_t kl_gka_scratch_floats(int64_t n_chunks, int64_t H, int64_t D, int64_t num_iter);

cudaError_t kl_mamba2(float *y, const float *xbc, const float *dt_raw, int64_t lddt,
                      const float *dt_bias, const float *a_log, const float *d_skip,
                      const kl_ssm *s, const kl_batch *b, const kl_mix *p, void *scratch,
                      cudaStream_t stream);
cudaError_t kl_gdn(float *o, const float *qkv, const float *beta_raw, const float *gk_raw,
                   int64_t ldg, const float *a_log, const float *dt_bias, const kl_ssm *s,
                   const kl_batch *b, const kl_mix *p, void *scratch, cudaStream_t stream);
cudaError_t kl_gka(float *o, const float *qkv, const float *a_raw, const float *b_raw,
                   const float *alpha_raw, int64_t ldg, const float *b_bias,
                   const float *alpha_bias, const float *a_log, const float *dt_bias,
                   const kl_ssm *s, const kl_batch *b, const kl_mix *p, void *scratch,
                   cudaStream_t stream);

/* ---- rng.cu ---- */
/* Fills n elements with value(i) from the counter-based generator of
 * src/common/rng.h (stream `key`): kind NORMAL a*N(0,1)+b, UNIFORM a*U+b,
 * A_LOG log(1 + 15U), DT_BIAS softplus^-1 of a log-uniform dt in [1e-3, 1e-1],
 * CONST b. Element i of the output gets counter first + i. */
enum { KL_RNG_NORMAL = 0, KL_RNG_UNIFORM, KL_RNG_A_LOG, KL_RNG_DT_BIAS, KL_RNG_CONST };
cudaError_t kl_fill_random(void *dst, int dtype, int64_t n, uint64_t key, uint64_t first,
                           int kind, float a, float b, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
