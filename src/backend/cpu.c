/* cpu.c - the CPU backend: fp32 everywhere, OpenBLAS for the projections,
 * OpenMP across rows and heads. The readable reference every other backend is
 * checked against. Mixer ops live in cpu_attention.c, cpu_conv.c, cpu_mamba2.c,
 * cpu_gdn.c and cpu_gka.c. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu_internal.h"
#include "common/rng.h"
#include "common/status.h"

/* ---------------------------------------------------------------- memory */

static void *cpu_alloc(cl_backend *b, size_t bytes)
{
    (void)b;
    return calloc(1, bytes ? bytes : 1);
}

static void *cpu_realloc(cl_backend *b, void *p, size_t old_bytes, size_t new_bytes)
{
    (void)b;
    char *q = realloc(p, new_bytes ? new_bytes : 1);
    if (q && new_bytes > old_bytes)
        memset(q + old_bytes, 0, new_bytes - old_bytes);
    return q;
}

static void cpu_free(cl_backend *b, void *p)
{
    (void)b;
    free(p);
}

static int cpu_memcpy(cl_backend *b, void *dst, const void *src, size_t bytes)
{
    (void)b;
    if (bytes)
        memmove(dst, src, bytes);
    return CL_OK;
}

static int cpu_zero(cl_backend *b, void *dst, size_t bytes)
{
    (void)b;
    if (bytes)
        memset(dst, 0, bytes);
    return CL_OK;
}

static int cpu_sync(cl_backend *b)
{
    (void)b;
    return CL_OK;
}

static int cpu_mem_info(cl_backend *b, size_t *free_bytes, size_t *total_bytes)
{
    (void)b;
    long page = sysconf(_SC_PAGESIZE), avail = sysconf(_SC_AVPHYS_PAGES),
         phys = sysconf(_SC_PHYS_PAGES);
    if (page <= 0 || avail < 0 || phys <= 0)
        return cl_err(CL_ERR_BACKEND, "cpu: cannot read the memory size");
    *free_bytes = (size_t)avail * (size_t)page;
    *total_bytes = (size_t)phys * (size_t)page;
    return CL_OK;
}

/* --------------------------------------------------------------- weights */

static int cpu_weight_upload(cl_backend *b, const cl_tensor_view *t, int matrix, cl_bweight *out)
{
    (void)b;
    (void)matrix;
    memset(out, 0, sizeof *out);
    out->dtype = CL_F32;
    out->rows = t->rows;
    out->cols = t->cols;
    int64_t ld = t->ld ? t->ld : t->cols;
    size_t n = (size_t)(t->rows * t->cols), es = cl_dtype_size(t->dtype);
    /* fp32, dense and aligned: use the mapping as is (no copy on the CPU path) */
    if (t->dtype == CL_F32 && ld == t->cols && ((uintptr_t)t->data % sizeof(float)) == 0) {
        out->data = (void *)t->data;
        return CL_OK;
    }
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p)
        return cl_err(CL_ERR_NOMEM, "out of memory converting tensor '%s'", t->name);
    for (int64_t r = 0; r < t->rows; r++)
        cl_convert_to_f32(p + r * t->cols, (const char *)t->data + (size_t)(r * ld) * es,
                          t->dtype, (size_t)t->cols);
    out->data = p;
    out->owned = 1;
    return CL_OK;
}

static int cpu_fill_random(cl_backend *b, void *dst, cl_dtype dtype, size_t n, uint64_t key,
                           uint64_t first, int kind, float a, float bias, cl_dtype round_to)
{
    (void)b;
    if (dtype != CL_F32 && dtype != CL_BF16 && dtype != CL_F16)
        return cl_err(CL_ERR_ARG, "fill_random: dtype %s", cl_dtype_name(dtype));
    size_t es = cl_dtype_size(dtype);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float v = cl_rng_value(kind, key, first + i, a, bias), r;
        if (round_to != CL_F32) {
            uint16_t h;
            cl_convert_from_f32(&h, round_to, &v, 1);
            cl_convert_to_f32(&r, &h, round_to, 1);
            v = r;
        }
        cl_convert_from_f32((char *)dst + i * es, dtype, &v, 1);
    }
    return CL_OK;
}

static int cpu_weight_from_f32(cl_backend *b, const float *host, int64_t rows, int64_t cols,
                               cl_bweight *out)
{
    (void)b;
    memset(out, 0, sizeof *out);
    size_t n = (size_t)(rows * cols);
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p)
        return cl_err(CL_ERR_NOMEM, "out of memory (weights)");
    memcpy(p, host, n * sizeof *p);
    *out = (cl_bweight){p, CL_F32, rows, cols, 1};
    return CL_OK;
}

static void cpu_weight_free(cl_backend *b, cl_bweight *w)
{
    (void)b;
    if (w->owned)
        free(w->data);
    memset(w, 0, sizeof *w);
}

static int cpu_batch_prepare(cl_backend *b, cl_batch *batch)
{
    (void)b;
    batch->dev = NULL;
    return CL_OK;
}

static void cpu_batch_release(cl_backend *b, cl_batch *batch)
{
    (void)b;
    (void)batch;
}

/* ------------------------------------------------------------ dense ops */

static int cpu_embed(cl_backend *b, float *out, const cl_bweight *table, const cl_batch *batch)
{
    (void)b;
    int64_t dim = table->cols;
    for (int64_t t = 0; t < batch->n_tok; t++) {
        int32_t id = batch->tokens[t];
        if (id < 0 || id >= table->rows)
            return cl_err(CL_ERR_RANGE, "token id %d out of range [0, %lld)", id,
                          (long long)table->rows);
        memcpy(out + t * dim, cpu_w(table) + (int64_t)id * dim, (size_t)dim * sizeof *out);
    }
    return CL_OK;
}

/* Qwen3RMSNorm: normalize in fp32, then scale by the weight (spec §3.1). */
static int cpu_rmsnorm(cl_backend *b, float *out, const float *x, const cl_bweight *w,
                       int64_t rows, int64_t dim, float eps)
{
    (void)b;
    const float *wt = cpu_w(w);
#pragma omp parallel for schedule(static) if (rows > 16)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *o = out + r * dim;
        double ss = 0;
        for (int64_t i = 0; i < dim; i++)
            ss += (double)xr[i] * xr[i];
        float inv = (float)(1.0 / sqrt(ss / (double)dim + eps));
        for (int64_t i = 0; i < dim; i++)
            o[i] = wt[i] * (xr[i] * inv);
    }
    return CL_OK;
}

static int cpu_head_rmsnorm(cl_backend *b, float *x, int64_t ld, const cl_bweight *w,
                            int64_t rows, int64_t heads, int64_t dim, float eps)
{
    (void)b;
    const float *wt = cpu_w(w);
#pragma omp parallel for collapse(2) schedule(static) if (rows * heads > 16)
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t h = 0; h < heads; h++) {
            float *v = x + r * ld + h * dim;
            double ss = 0;
            for (int64_t i = 0; i < dim; i++)
                ss += (double)v[i] * v[i];
            float inv = (float)(1.0 / sqrt(ss / (double)dim + eps));
            for (int64_t i = 0; i < dim; i++)
                v[i] = wt[i] * (v[i] * inv);
        }
    }
    return CL_OK;
}

/* One thread pool only: OpenBLAS runs single-threaded and OpenMP splits the output
 * columns (weight rows) across threads, so OpenBLAS's and OpenMP's workers never
 * spin against each other. */
static int cpu_matmul(cl_backend *b, float *out, int64_t ldo, const float *x, int64_t ldx,
                      const cl_bweight *w, int64_t rows)
{
    int64_t N = w->rows, K = w->cols;
    int nt = b->threads;
    int64_t work = rows * N * K;
    if (work < 65536 || nt < 2)
        nt = 1;
    int64_t step = (N + nt - 1) / nt;
    step = (step + 15) / 16 * 16;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t n0 = 0; n0 < N; n0 += step) {
        int64_t n = N - n0 < step ? N - n0 : step;
        const float *wp = cpu_w(w) + n0 * K;
        if (rows == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)K, 1.0f, wp, (int)K, x, 1,
                        0.0f, out + n0, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)n, (int)K, 1.0f,
                        x, (int)ldx, wp, (int)K, 0.0f, out + n0, (int)ldo);
    }
    return CL_OK;
}

static int cpu_add(cl_backend *b, float *x, const float *y, int64_t n)
{
    (void)b;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
    return CL_OK;
}

static int cpu_swiglu(cl_backend *b, float *out, const float *gu, int64_t rows, int64_t inter)
{
    (void)b;
#pragma omp parallel for schedule(static) if (rows * inter > 65536)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < inter; i++)
            out[r * inter + i] = cpu_silu(gu[r * 2 * inter + i]) * gu[r * 2 * inter + inter + i];
    return CL_OK;
}

/* RoPE, rotate-half (spec §3.7): inv_freq and the phase p*inv_freq in fp32 as the
 * reference computes them, cos/sin of that fp32 phase. */
static int cpu_rope(cl_backend *b, float *x, int64_t ld, const cl_batch *batch, int64_t heads,
                    int64_t dim, double theta)
{
    (void)b;
    int64_t half = dim / 2;
    float *inv = malloc((size_t)half * sizeof *inv);
    if (!inv)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    for (int64_t j = 0; j < half; j++)
        inv[j] = (float)(1.0 / pow(theta, (double)(2 * j) / (double)dim));
#pragma omp parallel for schedule(static) if (batch->n_tok > 8)
    for (int64_t t = 0; t < batch->n_tok; t++) {
        float cs[512], sn[512];
        float pos = (float)batch->positions[t];
        for (int64_t j = 0; j < half && j < 512; j++) {
            float ph = pos * inv[j];
            cs[j] = (float)cos((double)ph);
            sn[j] = (float)sin((double)ph);
        }
        for (int64_t h = 0; h < heads; h++) {
            float *v = x + t * ld + h * dim;
            for (int64_t j = 0; j < half; j++) {
                float a = v[j], c = v[j + half];
                v[j] = a * cs[j] - c * sn[j];
                v[j + half] = c * cs[j] + a * sn[j];
            }
        }
    }
    free(inv);
    return CL_OK;
}

static int cpu_gather_rows(cl_backend *b, float *out, const float *x, int64_t cols,
                           const int64_t *rows_host, int64_t n)
{
    (void)b;
    for (int64_t i = 0; i < n; i++)
        memmove(out + i * cols, x + rows_host[i] * cols, (size_t)cols * sizeof *out);
    return CL_OK;
}

static int cpu_gated_norm_m2(cl_backend *b, float *y, const float *z, int64_t ldz,
                             const cl_bweight *w, int64_t rows, int64_t heads, int64_t dim,
                             float eps)
{
    (void)b;
    const float *wt = cpu_w(w);
#pragma omp parallel for schedule(static) if (rows > 4)
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t h = 0; h < heads; h++) {
            float *v = y + r * heads * dim + h * dim;
            const float *zz = z + r * ldz + h * dim;
            double ss = 0;
            for (int64_t i = 0; i < dim; i++) {
                v[i] *= cpu_silu(zz[i]); /* gate first (norm_before_gate=False), §3.3 */
                ss += (double)v[i] * v[i];
            }
            float inv = (float)(1.0 / sqrt(ss / (double)dim + eps));
            for (int64_t i = 0; i < dim; i++)
                v[i] = v[i] * inv * wt[h * dim + i];
        }
    }
    return CL_OK;
}

static int cpu_gated_norm_fla(cl_backend *b, float *o, const float *g, int64_t ldg,
                              const cl_bweight *w, int64_t rows, int64_t heads, int64_t dim,
                              float eps)
{
    (void)b;
    const float *wt = cpu_w(w);
#pragma omp parallel for schedule(static) if (rows > 4)
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t h = 0; h < heads; h++) {
            float *v = o + r * heads * dim + h * dim;
            const float *gg = g + r * ldg + h * dim;
            double ss = 0;
            for (int64_t i = 0; i < dim; i++)
                ss += (double)v[i] * v[i];
            float inv = (float)(1.0 / sqrt(ss / (double)dim + eps));
            /* norm before gate (§3.2): y = o*rstd*w * g*sigmoid(g) */
            for (int64_t i = 0; i < dim; i++)
                v[i] = v[i] * inv * wt[i] * cpu_silu(gg[i]);
        }
    }
    return CL_OK;
}

static int cpu_argmax(cl_backend *b, int32_t *ids, const float *logits, int64_t rows, int64_t V)
{
    (void)b;
    for (int64_t r = 0; r < rows; r++) {
        const float *x = logits + r * V;
        int64_t best = 0;
        for (int64_t i = 1; i < V; i++)
            if (x[i] > x[best])
                best = i;
        ids[r] = (int32_t)best;
    }
    return CL_OK;
}

/* ---------------------------------------------------------- moving state */

static size_t kv_row_bytes(const cl_kv_layer *kv)
{
    return (size_t)(kv->n_kv_heads * kv->head_dim) * cl_dtype_size(kv->kv_dtype);
}

static int cpu_kv_copy_runs(cl_backend *b, const cl_kv_layer *kv, int n_layers,
                            const cl_kv_run *runs, int64_t n_runs)
{
    (void)b;
    if (n_layers <= 0)
        return CL_OK;
    size_t row = kv_row_bytes(&kv[0]);
#pragma omp parallel for collapse(2) schedule(static)
    for (int p = 0; p < 2 * n_layers; p++)
        for (int64_t r = 0; r < n_runs; r++) {
            char *pool = p % 2 ? kv[p / 2].v : kv[p / 2].k;
            memmove(pool + (size_t)runs[r].dst * row, pool + (size_t)runs[r].src * row,
                    (size_t)runs[r].n * row);
        }
    return CL_OK;
}

static int cpu_kv_move_rows(cl_backend *b, void *const *pools, int64_t row_bytes,
                            const cl_kv_row *rows, int64_t n, void *buf, int gather)
{
    (void)b;
    size_t row = (size_t)row_bytes;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        char *slot = (char *)pools[rows[i].pool] + (size_t)rows[i].slot * row;
        char *rowbuf = (char *)buf + (size_t)i * row;
        if (gather)
            memcpy(rowbuf, slot, row);
        else
            memcpy(slot, rowbuf, row);
    }
    return CL_OK;
}

static void *cpu_host_alloc(cl_backend *b, size_t bytes)
{
    (void)b;
    void *p = NULL;
    return posix_memalign(&p, 64, bytes ? bytes : 1) == 0 ? p : NULL;
}

static void cpu_host_free(cl_backend *b, void *p)
{
    (void)b;
    free(p);
}

/* host and backend memory are one: a copy is done when it returns */
static int cpu_copy_now(cl_backend *b, void *dst, const void *src, size_t bytes, uint64_t *ticket)
{
    (void)b;
    memcpy(dst, src, bytes);
    *ticket = 0;
    return CL_OK;
}

static int cpu_transfer_wait(cl_backend *b, uint64_t ticket)
{
    (void)b;
    (void)ticket;
    return CL_OK;
}

static int cpu_ssm_lincomb(cl_backend *b, float *pool, size_t per_slot, int64_t blocks,
                           const int32_t *slots, int n, const float *coef, int32_t out_slot)
{
    (void)b;
    size_t bs = per_slot / (size_t)blocks;
    float *out = pool + (size_t)out_slot * per_slot;
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < blocks; k++) {
        float *o = out + (size_t)k * bs;
        for (size_t t = 0; t < bs; t++)
            o[t] = 0.0f;
        for (int i = 0; i < n; i++) {
            const float c = coef[(size_t)i * (size_t)blocks + (size_t)k];
            const float *x = pool + (size_t)slots[i] * per_slot + (size_t)k * bs;
            for (size_t t = 0; t < bs; t++)
                o[t] += c * x[t];
        }
    }
    return CL_OK;
}

static cl_dtype cpu_matrix_dtype(cl_backend *b, cl_dtype weights)
{
    (void)b;
    (void)weights;
    return CL_F32;
}

static cl_dtype cpu_kv_dtype(cl_backend *b, cl_dtype weights)
{
    (void)b;
    (void)weights;
    return CL_F32;
}

static void cpu_destroy(cl_backend *b) { free(b); }

/* OpenMP's team size is a per-thread setting: a rank thread takes the backend's. */
static int cpu_bind_thread(cl_backend *b)
{
    omp_set_num_threads(b->threads);
    return CL_OK;
}

static const cl_backend_ops cpu_ops = {
    .name = "cpu",
    .feed_tokens = 512,
    .alloc = cpu_alloc,
    .realloc = cpu_realloc,
    .free = cpu_free,
    .to_host = cpu_memcpy,
    .from_host = cpu_memcpy,
    .copy = cpu_memcpy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .mem_info = cpu_mem_info,
    .weight_upload = cpu_weight_upload,
    .weight_from_f32 = cpu_weight_from_f32,
    .weight_free = cpu_weight_free,
    .fill_random = cpu_fill_random,
    .batch_prepare = cpu_batch_prepare,
    .batch_release = cpu_batch_release,
    .embed = cpu_embed,
    .rmsnorm = cpu_rmsnorm,
    .head_rmsnorm = cpu_head_rmsnorm,
    .matmul = cpu_matmul,
    .add = cpu_add,
    .swiglu = cpu_swiglu,
    .rope = cpu_rope,
    .gather_rows = cpu_gather_rows,
    .attention = cpu_attention,
    .conv1d = cpu_conv1d,
    .mamba2 = cpu_mamba2,
    .gdn = cpu_gdn,
    .gka = cpu_gka,
    .gated_norm_m2 = cpu_gated_norm_m2,
    .gated_norm_fla = cpu_gated_norm_fla,
    .argmax = cpu_argmax,
    .matrix_dtype = cpu_matrix_dtype,
    .kv_copy_runs = cpu_kv_copy_runs,
    .ssm_lincomb = cpu_ssm_lincomb,
    .kv_move_rows = cpu_kv_move_rows,
    .host_alloc = cpu_host_alloc,
    .host_free = cpu_host_free,
    .upload_async = cpu_copy_now,
    .download_async = cpu_copy_now,
    .transfer_wait = cpu_transfer_wait,
    .kv_dtype = cpu_kv_dtype,
    .bind_thread = cpu_bind_thread,
    .destroy = cpu_destroy,
};

int cl_backend_cpu_create(int threads, cl_backend **out)
{
    cl_backend *b = calloc(1, sizeof *b);
    if (!b)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    if (threads <= 0)
        threads = omp_get_max_threads();
    b->ops = &cpu_ops;
    b->threads = threads;
    omp_set_num_threads(threads);
    *out = b;
    return CL_OK;
}
