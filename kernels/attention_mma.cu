/* attention_mma.cu - flash attention on the tensor cores (mma.sync) for bf16
 * paged KV, D = 128: the prefill kernel where the wgmma one (attention_wgmma.cu,
 * sm_90a) is not built, and the paged decode kernel (spec MODEL.md §5-6).
 *
 * K and V tiles of 64 keys are copied into shared memory with cp.async (every
 * row looked up through the block table, so any page size works); S = Q K^T and
 * O += P V are mma.sync m16n8k16 bf16 products with fp32 accumulation; the
 * softmax is the online (running max / sum) form in fp32 on the S fragments,
 * whose layout is also the layout of the A operand of the P V product, so P
 * never leaves registers. Shared rows are 256 bytes: 16-byte chunks are
 * XOR-swizzled by (row mod 8) so that ldmatrix reads eight rows without bank
 * conflicts.
 *
 * Two numbers: 4 * D FLOPs per visible (query, key) pair per head; for a causal
 * 32K prompt that is the 18 attention layers' ~160 TFLOP of the model's ~640. */
#include "tc.cuh"

#define FA_KEYS 64 /* keys per tile */
#define FA_D 128
#define FA_CH 16 /* 16-byte chunks per row */

__device__ __forceinline__ int fa_swz(int row, int chunk) { return row * FA_CH + (chunk ^ (row & 7)); }

/* ------------------------------------------------- prefill, 32 rows per warp */

/* 128 query rows per block (4 warps x 32 rows): every K and V fragment read
 * from shared memory feeds two m16 products instead of one, which halves the
 * ldmatrix traffic per mma (the first round's kernel, 16 rows per warp: 64
 * ldmatrix per 128 mma per key tile and warp; here 80 per 256). Q stays in
 * shared memory and is re-read per k step (registers hold O: 128, S: 64). K and
 * V tiles are double buffered (tile j+1 streams in during all of tile j's work:
 * 96 KB, two blocks per SM); a first version with one K and one V buffer (V(j)
 * loading during S, K(j+1) during P V) was latency-bound, +5% over that first
 * kernel. Blocks start with the last query tiles (the most keys) to shorten the
 * causal tail; a warp whose rows see none of a key tile skips its products. */
#define F2_ROWS 128

template <bool PACK>
__global__ void __launch_bounds__(128, 2) fa2_kernel(float *out, const float *q, int64_t ldq,
                                                     const __nv_bfloat16 *kp,
                                                     const __nv_bfloat16 *vp, int64_t P,
                                                     int p_shift, int64_t Hq, int64_t Hkv,
                                                     float scale_log2, int64_t window, kl_batch b)
{
    extern __shared__ uint4 fa_sm[];
    uint4 *Qs = fa_sm, *Ks = Qs + F2_ROWS * FA_CH, *Vs = Ks + 2 * FA_KEYS * FA_CH;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    /* PACK (4 query heads per KV head): the block is the 4 heads of KV head g over
     * 32 positions of a 128-position tile, one head per warp, so every K/V tile
     * read serves 4 heads; else 128 positions of one head, 32 per warp. Positions
     * of this warp's rows: poff + 0..31; its head hw. */
    const int tile = b.n_tiles - 1 - (int)(PACK ? blockIdx.x / 4 : blockIdx.x);
    const int qq = PACK ? 3 - (int)(blockIdx.x % 4) : 0;
    const int64_t g = PACK ? (int64_t)blockIdx.y : (int64_t)blockIdx.y / (Hq / Hkv);
    const int64_t h0 = PACK ? g * 4 : (int64_t)blockIdx.y, hw = PACK ? h0 + warp : h0;
    const int si = b.tiles[2 * tile], r0 = b.tiles[2 * tile + 1] + 32 * qq;
    const kl_seq sq = b.seq[si];
    const int npos_max = PACK ? 32 : F2_ROWS;
    const int nrows = (int)(sq.n_tok - r0 < npos_max ? sq.n_tok - r0 : npos_max);
    if (nrows <= 0)
        return;
    const int poff = PACK ? 0 : warp * 32;

    for (int i = tid; i < F2_ROWS * FA_CH; i += 128) {
        int r = i / FA_CH, c = i % FA_CH;
        const int pos = PACK ? r % 32 : r;
        const int64_t hr = PACK ? h0 + r / 32 : h0;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (pos < nrows) {
            const float4 *src = reinterpret_cast<const float4 *>(
                q + (sq.tok_start + r0 + pos) * ldq + hr * FA_D + c * 8);
            v = kl_pack_bf16x8(src[0], src[1]);
        }
        Qs[fa_swz(r, c)] = v;
    }

    const int32_t q_first = (int32_t)(sq.kv_start + r0), q_last = q_first + nrows - 1;
    const int32_t lo = window > 0 && q_first - window + 1 > 0 ? q_first - (int32_t)window + 1 : 0;
    const int32_t hi = q_last + 1;
    const int32_t hide_lo = (int32_t)sq.hide_lo, hide_hi = (int32_t)sq.hide_hi;
    const int32_t *btab = b.blocks + sq.blocks_off;
    const int32_t pmask = p_shift >= 0 ? (1 << p_shift) - 1 : 0;
    const int n_kt = (int)((hi - lo + FA_KEYS - 1) / FA_KEYS);
    const int64_t row_elems = Hkv * FA_D;
    /* this warp's rows: first and last query slot it holds */
    const int wrows = nrows - poff < 32 ? nrows - poff : 32;
    const int32_t wq_first = q_first + poff, wq_last = wq_first + (wrows > 0 ? wrows : 1) - 1;

    auto load = [&](int kt, int st) { /* K and V of key tile kt into stage st */
        const int32_t base = lo + kt * FA_KEYS;
        const int c = tid % FA_CH; /* each thread copies one 16-byte column of 8 rows */
        uint4 *kd = Ks + st * FA_KEYS * FA_CH, *vd = Vs + st * FA_KEYS * FA_CH;
#pragma unroll 1
        for (int r = tid / FA_CH; r < FA_KEYS; r += 128 / FA_CH) {
            int32_t j = base + r;
            const __nv_bfloat16 *ks = kp, *vs = vp;
            int sz = 0;
            if (j < hi) {
                int32_t pi = p_shift >= 0 ? j >> p_shift : (int32_t)(j / P);
                int32_t po = p_shift >= 0 ? j & pmask : (int32_t)(j % P);
                int64_t off = ((int64_t)btab[pi] * P + po) * row_elems + g * FA_D + c * 8;
                ks = kp + off;
                vs = vp + off;
                sz = 16;
            }
            kl_cp16(kd + fa_swz(r, c), ks, sz);
            kl_cp16(vd + fa_swz(r, c), vs, sz);
        }
        kl_cp_commit();
    };

    if (n_kt > 0)
        load(0, 0);

    float o[2][16][4];
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int d = 0; d < 16; d++)
            o[mt][d][0] = o[mt][d][1] = o[mt][d][2] = o[mt][d][3] = 0.0f;
    float m[2][2], l[2][2];
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int k = 0; k < 2; k++) {
            m[mt][k] = -INFINITY;
            l[mt][k] = 0.0f;
        }

    for (int kt = 0; kt < n_kt; kt++) {
        const int st = kt & 1;
        if (kt + 1 < n_kt) {
            load(kt + 1, st ^ 1);
            kl_cp_wait<1>();
        } else {
            kl_cp_wait<0>();
        }
        __syncthreads(); /* tile kt visible */
        const uint4 *kt_s = Ks + st * FA_KEYS * FA_CH, *vt_s = Vs + st * FA_KEYS * FA_CH;
        const int32_t kbase = lo + kt * FA_KEYS;
        /* keys after the warp's last row, or all before its window: nothing to add */
        const bool skip = wrows <= 0 || kbase > wq_last ||
                          (window > 0 && kbase + FA_KEYS - 1 < wq_first - window + 1 - 32);
        float s[2][8][4];
        if (!skip) {
#pragma unroll
            for (int mt = 0; mt < 2; mt++)
#pragma unroll
                for (int nt = 0; nt < 8; nt++)
                    s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.0f;
#pragma unroll
            for (int ks = 0; ks < 8; ks++) { /* k16 steps: Q (2 m tiles) then K n-tiles */
                uint32_t qa[2][4];
#pragma unroll
                for (int mt = 0; mt < 2; mt++) {
                    int row = warp * 32 + mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
                    kl_ldm4(qa[mt], Qs + fa_swz(row, 2 * ks + (lane >> 4)));
                }
#pragma unroll
                for (int nt = 0; nt < 8; nt++) {
                    uint32_t bk[2];
                    kl_ldm2(bk, kt_s + fa_swz(nt * 8 + (lane & 7), 2 * ks + ((lane >> 3) & 1)));
#pragma unroll
                    for (int mt = 0; mt < 2; mt++)
                        kl_mma_bf16(s[mt][nt], qa[mt], bk[0], bk[1]);
                }
            }
            /* mask, scale (log2 domain), online softmax, per m tile */
            const bool whole = wrows == 32 && kbase + FA_KEYS - 1 <= wq_first &&
                               (window <= 0 || kbase >= wq_last - (int32_t)window + 1) &&
                               (kbase + FA_KEYS <= hide_lo || kbase >= hide_hi);
#pragma unroll
            for (int mt = 0; mt < 2; mt++) {
                float mx[2] = {-INFINITY, -INFINITY};
                if (whole) {
#pragma unroll
                    for (int nt = 0; nt < 8; nt++)
#pragma unroll
                        for (int e = 0; e < 4; e++) {
                            float v = s[mt][nt][e] * scale_log2;
                            s[mt][nt][e] = v;
                            mx[e >> 1] = fmaxf(mx[e >> 1], v);
                        }
                } else {
                    int32_t qs[2], qlo[2]; /* the two rows of this lane, -1: past the tile */
#pragma unroll
                    for (int k = 0; k < 2; k++) {
                        const int rl = poff + mt * 16 + (lane >> 2) + 8 * k;
                        qs[k] = rl < nrows ? q_first + rl : -1;
                        qlo[k] = window > 0 && qs[k] - window + 1 > 0 ? qs[k] - (int32_t)window + 1
                                                                      : 0;
                    }
#pragma unroll
                    for (int nt = 0; nt < 8; nt++)
#pragma unroll
                        for (int e = 0; e < 4; e++) {
                            const int k = e >> 1;
                            const int32_t key = kbase + nt * 8 + (lane & 3) * 2 + (e & 1);
                            bool ok = key >= qlo[k] && key <= qs[k] &&
                                      !(key >= hide_lo && key < hide_hi);
                            float v = ok ? s[mt][nt][e] * scale_log2 : -INFINITY;
                            s[mt][nt][e] = v;
                            mx[k] = fmaxf(mx[k], v);
                        }
                }
                float corr[2];
#pragma unroll
                for (int k = 0; k < 2; k++) {
                    mx[k] = fmaxf(mx[k], __shfl_xor_sync(0xffffffffu, mx[k], 1));
                    mx[k] = fmaxf(mx[k], __shfl_xor_sync(0xffffffffu, mx[k], 2));
                    float mn = fmaxf(m[mt][k], mx[k]);
                    float mu = mn == -INFINITY ? 0.0f : mn;
                    corr[k] = exp2f(m[mt][k] - mu);
                    m[mt][k] = mn;
                    mx[k] = mu;
                    l[mt][k] *= corr[k];
                }
#pragma unroll
                for (int nt = 0; nt < 8; nt++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        float pv = exp2f(s[mt][nt][e] - mx[e >> 1]);
                        s[mt][nt][e] = pv;
                        l[mt][e >> 1] += pv;
                    }
#pragma unroll
                for (int d = 0; d < 16; d++) {
                    o[mt][d][0] *= corr[0];
                    o[mt][d][1] *= corr[0];
                    o[mt][d][2] *= corr[1];
                    o[mt][d][3] *= corr[1];
                }
            }
        }
        if (!skip) {
#pragma unroll
            for (int k2 = 0; k2 < 4; k2++) {
                uint32_t a[2][4];
#pragma unroll
                for (int mt = 0; mt < 2; mt++) {
                    a[mt][0] = kl_pack_bf16(s[mt][2 * k2][0], s[mt][2 * k2][1]);
                    a[mt][1] = kl_pack_bf16(s[mt][2 * k2][2], s[mt][2 * k2][3]);
                    a[mt][2] = kl_pack_bf16(s[mt][2 * k2 + 1][0], s[mt][2 * k2 + 1][1]);
                    a[mt][3] = kl_pack_bf16(s[mt][2 * k2 + 1][2], s[mt][2 * k2 + 1][3]);
                }
#pragma unroll
                for (int dt = 0; dt < 16; dt += 2) {
                    uint32_t bv[4];
                    int key = k2 * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
                    kl_ldm4t(bv, vt_s + fa_swz(key, dt + (lane >> 4)));
#pragma unroll
                    for (int mt = 0; mt < 2; mt++) {
                        kl_mma_bf16(o[mt][dt], a[mt], bv[0], bv[1]);
                        kl_mma_bf16(o[mt][dt + 1], a[mt], bv[2], bv[3]);
                    }
                }
            }
        }
        __syncthreads(); /* stage st is loaded again next iteration */
    }

#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int k = 0; k < 2; k++) {
            float lk = l[mt][k];
            lk += __shfl_xor_sync(0xffffffffu, lk, 1);
            lk += __shfl_xor_sync(0xffffffffu, lk, 2);
            const int rl = poff + mt * 16 + (lane >> 2) + 8 * k;
            if (rl >= nrows)
                continue;
            float inv = lk > 0.0f ? 1.0f / lk : 0.0f;
            float *dst = out + (sq.tok_start + r0 + rl) * Hq * FA_D + hw * FA_D + (lane & 3) * 2;
#pragma unroll
            for (int dt = 0; dt < 16; dt++) {
                float2 v = make_float2(o[mt][dt][2 * k] * inv, o[mt][dt][2 * k + 1] * inv);
                *reinterpret_cast<float2 *>(dst + dt * 8) = v;
            }
        }
}

extern "C" {
int kl_fa_old = 0;
}

extern "C" cudaError_t kl_attn_prefill_mma(float *out, const float *q, int64_t ldq,
                                           const kl_kv *kv, const kl_batch *b, const kl_mix *p,
                                           cudaStream_t stream)
{
    if (kv->dtype != KL_BF16 || p->head_dim != FA_D || ldq % 4 || ((uintptr_t)q % 16) ||
        b->n_tiles <= 0)
        return b->n_tiles <= 0 && kv->dtype == KL_BF16 && p->head_dim == FA_D
                   ? cudaSuccess
                   : cudaErrorNotSupported;
    const size_t smem_new = (size_t)(F2_ROWS + 4 * FA_KEYS) * FA_CH * sizeof(uint4);
    static int attr_set = 0;
    if (!attr_set) {
        cudaError_t e = cudaFuncSetAttribute(fa2_kernel<false>,
                                     cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem_new);
        if (e == cudaSuccess)
            e = cudaFuncSetAttribute(fa2_kernel<true>,
                                     cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem_new);
        if (e != cudaSuccess)
            return e;
        attr_set = 1;
    }
    const float log2e = 1.4426950408889634f;
    int64_t P = kv->page_tokens;
    int p_shift = -1;
    if (P > 0 && !(P & (P - 1)))
        for (p_shift = 0; (1ll << p_shift) < P; p_shift++)
            ;
    if (kl_fa_old == 0) { /* Hopper: the wgmma kernel (attention_wgmma.cu) */
        cudaError_t e = kl_attn_prefill_wgmma(out, q, ldq, kv, b, p, stream);
        if (e != cudaErrorNotSupported)
            return e;
        (void)cudaGetLastError();
    }
    if (p->n_heads == 4 * p->n_kv_heads && kl_fa_old != 2) { /* GQA 4: heads packed */
        dim3 grid((unsigned)(4 * b->n_tiles), (unsigned)p->n_kv_heads);
        fa2_kernel<true><<<grid, 128, smem_new, stream>>>(
            out, q, ldq, (const __nv_bfloat16 *)kv->k, (const __nv_bfloat16 *)kv->v, P, p_shift,
            p->n_heads, p->n_kv_heads, p->scale * log2e, p->window, *b);
        return cudaGetLastError();
    }
    dim3 grid((unsigned)b->n_tiles, (unsigned)p->n_heads);
    fa2_kernel<false><<<grid, 128, smem_new, stream>>>(out, q, ldq, (const __nv_bfloat16 *)kv->k,
                                                       (const __nv_bfloat16 *)kv->v, P, p_shift,
                                                       p->n_heads, p->n_kv_heads,
                                                       p->scale * log2e, p->window, *b);
    return cudaGetLastError();
}

/* ------------------------------------------------------------------ decode */

/* Decode (one query per sequence) on the tensor cores, bf16 KV, D = 128.
 *
 * grid (n_split, Hkv, n_seq), 4 warps. The G query heads of a KV head are the
 * rows of one 16-row mma A operand (rows >= G are zero), so the KV rows are read
 * once for all of them. KV streams through shared memory in stages of 64 tokens
 * (cp.async, DM_STAGES deep); each warp scores its 16 tokens of a stage (2 x 8
 * mma n-tiles over 8 k-steps), keeps an online softmax of its own, and adds
 * P V (16 n-tiles of D) into fp32 accumulators. The four warps and the splits
 * are combined at the end. Per 16 KB of KV a warp issues ~100 instructions, so
 * the kernel is bound by the KV stream, not by the issue slots the SIMT kernel
 * (attention.cu) spends on shuffles and exponentials. */
#define DM_TOK 64
#define DM_STAGES 3

template <int G>
__global__ void __launch_bounds__(128) attn_decode_mma_kernel(
    float *out, const float *q, int64_t ldq, const __nv_bfloat16 *kp, const __nv_bfloat16 *vp,
    int64_t P, int p_shift, int64_t Hkv, float scale_log2, int64_t window, kl_batch b,
    float *partial)
{
    extern __shared__ uint4 dm_sm[];
    const int split = blockIdx.x, n_split = gridDim.x, h = blockIdx.y, si = blockIdx.z;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const kl_seq sq = b.seq[si];
    const int64_t Hq = Hkv * G;
    const int32_t qslot = (int32_t)sq.kv_start;
    const int32_t lo = window > 0 && qslot - window + 1 > 0 ? qslot - (int32_t)window + 1 : 0;
    const int32_t hi = qslot + 1;
    const int32_t per = (hi - lo + n_split - 1) / n_split;
    const int32_t t0 = lo + split * per, t1 = t0 + per < hi ? t0 + per : hi;
    const int n_tiles = t1 > t0 ? (t1 - t0 + DM_TOK - 1) / DM_TOK : 0;
    const int32_t hide_lo = (int32_t)sq.hide_lo, hide_hi = (int32_t)sq.hide_hi;
    const int32_t *btab = b.blocks + sq.blocks_off;
    const int32_t pmask = p_shift >= 0 ? (1 << p_shift) - 1 : 0;
    const int64_t row_elems = Hkv * FA_D;

    auto load_tile = [&](int tile) {
        uint4 *kd = dm_sm + (size_t)(tile % DM_STAGES) * 2 * DM_TOK * FA_CH, *vd = kd + DM_TOK * FA_CH;
        for (int i = tid; i < DM_TOK * FA_CH; i += 128) {
            int r = i / FA_CH, c = i % FA_CH;
            int32_t j = t0 + tile * DM_TOK + r;
            const __nv_bfloat16 *ks = kp, *vs = vp;
            int sz = 0;
            if (j < t1) {
                int32_t pi = p_shift >= 0 ? j >> p_shift : (int32_t)(j / P);
                int32_t po = p_shift >= 0 ? j & pmask : (int32_t)(j % P);
                int64_t off = ((int64_t)btab[pi] * P + po) * row_elems + h * FA_D + c * 8;
                ks = kp + off;
                vs = vp + off;
                sz = 16;
            }
            kl_cp16(kd + fa_swz(r, c), ks, sz);
            kl_cp16(vd + fa_swz(r, c), vs, sz);
        }
    };
    /* The kernel before (qk_prep) appends this step's K, V at slot qslot; older
     * slots were written by earlier steps. A split that ends before qslot starts
     * its pipeline before the dependency wait (the batch metadata it reads was
     * uploaded before the step). */
    const bool early = t1 <= qslot;
    if (!early)
        kl_pdl_wait();
#pragma unroll
    for (int k = 0; k < DM_STAGES - 1; k++) {
        if (k < n_tiles)
            load_tile(k);
        kl_cp_commit();
    }
    if (early)
        kl_pdl_wait();
    kl_pdl_trigger();

    /* Q rows g < G as A fragments, straight from the fp32 activations */
    uint32_t qa[8][4];
    {
        const int r0 = lane >> 2, r1 = r0 + 8, c0 = (lane & 3) * 2;
        const float *q0 = q + sq.tok_start * ldq + ((int64_t)h * G + r0) * FA_D;
        const float *q1 = q + sq.tok_start * ldq + ((int64_t)h * G + r1) * FA_D;
#pragma unroll
        for (int ks = 0; ks < 8; ks++) {
            int k0 = ks * 16 + c0;
            qa[ks][0] = r0 < G ? kl_pack_bf16(q0[k0], q0[k0 + 1]) : 0u;
            qa[ks][1] = r1 < G ? kl_pack_bf16(q1[k0], q1[k0 + 1]) : 0u;
            qa[ks][2] = r0 < G ? kl_pack_bf16(q0[k0 + 8], q0[k0 + 9]) : 0u;
            qa[ks][3] = r1 < G ? kl_pack_bf16(q1[k0 + 8], q1[k0 + 9]) : 0u;
        }
    }
    float o[16][4];
#pragma unroll
    for (int d = 0; d < 16; d++)
        o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

    for (int tile = 0; tile < n_tiles; tile++) {
        if (tile + DM_STAGES - 1 < n_tiles)
            load_tile(tile + DM_STAGES - 1);
        kl_cp_commit();
        kl_cp_wait<DM_STAGES - 1>();
        __syncthreads();
        const uint4 *ks_s = dm_sm + (size_t)(tile % DM_STAGES) * 2 * DM_TOK * FA_CH;
        const uint4 *vs_s = ks_s + DM_TOK * FA_CH;
        const int kr = warp * 16; /* this warp's 16 keys of the stage */
        float s[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
        for (int kk = 0; kk < 4; kk++)
#pragma unroll
            for (int nt = 0; nt < 2; nt++) {
                uint32_t bk[4];
                kl_ldm4(bk, ks_s + fa_swz(kr + nt * 8 + (lane & 7), kk * 4 + (lane >> 3)));
                kl_mma_bf16(s[nt], qa[2 * kk], bk[0], bk[1]);
                kl_mma_bf16(s[nt], qa[2 * kk + 1], bk[2], bk[3]);
            }
        const int32_t kbase = t0 + tile * DM_TOK + kr;
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int32_t key = kbase + nt * 8 + (lane & 3) * 2 + (e & 1);
                bool ok = key < t1 && !(key >= hide_lo && key < hide_hi);
                float v = ok ? s[nt][e] * scale_log2 : -INFINITY;
                s[nt][e] = v;
                mx[e >> 1] = fmaxf(mx[e >> 1], v);
            }
        float corr[2];
#pragma unroll
        for (int k = 0; k < 2; k++) {
            mx[k] = fmaxf(mx[k], __shfl_xor_sync(0xffffffffu, mx[k], 1));
            mx[k] = fmaxf(mx[k], __shfl_xor_sync(0xffffffffu, mx[k], 2));
            float mn = fmaxf(m[k], mx[k]);
            float mu = mn == -INFINITY ? 0.0f : mn;
            corr[k] = exp2f(m[k] - mu);
            m[k] = mn;
            mx[k] = mu;
            l[k] *= corr[k];
        }
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float p = exp2f(s[nt][e] - mx[e >> 1]);
                s[nt][e] = p;
                l[e >> 1] += p;
            }
#pragma unroll
        for (int d = 0; d < 16; d++) {
            o[d][0] *= corr[0];
            o[d][1] *= corr[0];
            o[d][2] *= corr[1];
            o[d][3] *= corr[1];
        }
        uint32_t a[4] = {kl_pack_bf16(s[0][0], s[0][1]), kl_pack_bf16(s[0][2], s[0][3]),
                         kl_pack_bf16(s[1][0], s[1][1]), kl_pack_bf16(s[1][2], s[1][3])};
#pragma unroll
        for (int dt = 0; dt < 16; dt += 2) {
            uint32_t bv[4];
            kl_ldm4t(bv, vs_s + fa_swz(kr + (lane & 7) + ((lane >> 3) & 1) * 8, dt + (lane >> 4)));
            kl_mma_bf16(o[dt], a, bv[0], bv[1]);
            kl_mma_bf16(o[dt + 1], a, bv[2], bv[3]);
        }
        __syncthreads();
    }
    kl_cp_wait<0>();
    __syncthreads();

    /* combine the 4 warps (log2 domain), then write the output or this split's
     * partial with m in the natural-log domain (what attn_combine_kernel reads) */
#pragma unroll
    for (int k = 0; k < 2; k++) {
        l[k] += __shfl_xor_sync(0xffffffffu, l[k], 1);
        l[k] += __shfl_xor_sync(0xffffffffu, l[k], 2);
    }
    float *cm = reinterpret_cast<float *>(dm_sm); /* [4][G][FA_D + 2] */
#pragma unroll
    for (int k = 0; k < 2; k++) {
        const int r = (lane >> 2) + 8 * k;
        if (r >= G)
            continue;
        float *row = cm + ((size_t)warp * G + r) * (FA_D + 2);
        if ((lane & 3) == 0) {
            row[0] = m[k];
            row[1] = l[k];
        }
#pragma unroll
        for (int dt = 0; dt < 16; dt++) {
            row[2 + dt * 8 + (lane & 3) * 2] = o[dt][2 * k];
            row[2 + dt * 8 + (lane & 3) * 2 + 1] = o[dt][2 * k + 1];
        }
    }
    __syncthreads();
    for (int idx = tid; idx < G * FA_D; idx += 128) {
        const int g = idx / FA_D, d = idx % FA_D;
        float M = -INFINITY;
        for (int w = 0; w < 4; w++)
            M = fmaxf(M, cm[((size_t)w * G + g) * (FA_D + 2)]);
        float L = 0.0f, A = 0.0f;
        if (M > -INFINITY)
            for (int w = 0; w < 4; w++) {
                const float *row = cm + ((size_t)w * G + g) * (FA_D + 2);
                float wt = exp2f(row[0] - M);
                L += row[1] * wt;
                A += row[2 + d] * wt;
            }
        const int64_t qh = (int64_t)h * G + g;
        if (n_split == 1) {
            out[sq.tok_start * Hq * FA_D + qh * FA_D + d] = L > 0.0f ? A / L : 0.0f;
        } else {
            float *pp = partial + (((int64_t)si * Hq + qh) * n_split + split) * (FA_D + 2);
            pp[2 + d] = A;
            if (d == 0) {
                pp[0] = M == -INFINITY ? -INFINITY : M * 0.6931471805599453f;
                pp[1] = L;
            }
        }
    }
}

template <int G>
static cudaError_t decode_mma_launch(float *out, const float *q, int64_t ldq, const kl_kv *kv,
                                     const kl_batch *b, const kl_mix *p, float *partial,
                                     int n_split, cudaStream_t stream)
{
    size_t smem = (size_t)DM_STAGES * 2 * DM_TOK * FA_CH * sizeof(uint4);
    if (!out) /* prepare: shared-memory limit, outside any graph capture */
        return cudaFuncSetAttribute(attn_decode_mma_kernel<G>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    int64_t P = kv->page_tokens;
    int p_shift = -1;
    if (P > 0 && !(P & (P - 1)))
        for (p_shift = 0; (1ll << p_shift) < P; p_shift++)
            ;
    dim3 grid((unsigned)n_split, (unsigned)kv->n_kv_heads, (unsigned)b->n_seq);
    (void)kl_launch(attn_decode_mma_kernel<G>, dim3(grid), dim3(128), smem, stream, out, q, ldq,
                    (const __nv_bfloat16 *)kv->k, (const __nv_bfloat16 *)kv->v, P, p_shift,
                    kv->n_kv_heads, p->scale * 1.4426950408889634f, p->window, *b, partial);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_attn_decode_mma(float *out, const float *q, int64_t ldq,
                                          const kl_kv *kv, const kl_batch *b, const kl_mix *p,
                                          float *partial, int n_split, cudaStream_t stream)
{
    if (kv->dtype != KL_BF16 || p->head_dim != FA_D || p->n_kv_heads <= 0)
        return cudaErrorNotSupported;
    switch (p->n_heads / p->n_kv_heads) {
    case 1: return decode_mma_launch<1>(out, q, ldq, kv, b, p, partial, n_split, stream);
    case 2: return decode_mma_launch<2>(out, q, ldq, kv, b, p, partial, n_split, stream);
    case 4: return decode_mma_launch<4>(out, q, ldq, kv, b, p, partial, n_split, stream);
    case 8: return decode_mma_launch<8>(out, q, ldq, kv, b, p, partial, n_split, stream);
    case 16: return decode_mma_launch<16>(out, q, ldq, kv, b, p, partial, n_split, stream);
    default: return cudaErrorNotSupported;
    }
}
