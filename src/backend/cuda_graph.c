/* cuda_graph.c - op dispatch, and CUDA graphs for decode steps.
 *
 * A decode step of an 8B model is ~500 small launches; at batch 1 the launch
 * gaps alone would cost a good part of the step. Inside a decode batch
 * (batch_prepare of a batch where every sequence adds one token) ops are not
 * run but recorded: the run function and the argument bytes. When the step's
 * results are needed (argmax, to_host, batch_release, any memory op), the list
 * is compared with the lists of the graphs captured so far; an identical list
 * (same ops, same arguments: every pointer and shape the kernels use is in the
 * arguments, per-step data such as positions and block tables lives in device
 * buffers at fixed places) replays its graph, otherwise the list is captured
 * into a new graph (kept in a small LRU cache) and launched.
 *
 * Outside decode steps, and with COLLAGE_CUDA_GRAPHS=0, ops run at once.
 * COLLAGE_CUDA_PROFILE=1 runs every op synchronously and adds its device time
 * (events around it) to a per-op table (cl_cuda_profile_report). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_internal.h"
#include "common/log.h"

static cuda_ctx *prof_ctx; /* the context whose op is being profiled (one thread) */

static void prof_add(cuda_ctx *c, const char *name, float ms)
{
    int i = 0;
    while (i < c->n_prof && strcmp(c->prof_name[i], name))
        i++;
    if (i == c->n_prof && c->n_prof < CUDA_PROFILE_MAX) {
        c->prof_name[i] = name;
        c->prof_ms[i] = 0;
        c->prof_calls[i] = 0;
        c->n_prof++;
    }
    if (i < c->n_prof) {
        c->prof_ms[i] += ms;
        c->prof_calls[i]++;
    }
}

/* kl_mark: time since the op's start (or the last mark) goes to `name`. */
static void prof_mark(const char *name)
{
    cuda_ctx *c = prof_ctx;
    float dt = 0;
    if (!c || cudaEventRecord(c->prof_ev[1], c->stream) != cudaSuccess ||
        cudaEventSynchronize(c->prof_ev[1]) != cudaSuccess ||
        cudaEventElapsedTime(&dt, c->prof_ev[0], c->prof_ev[1]) != cudaSuccess)
        return;
    prof_add(c, name, dt);
    cudaEventRecord(c->prof_ev[0], c->stream);
}

/* COLLAGE_CUDA_SKIP=op,op,...: those ops are not run (timing experiments only: the
 * results are wrong; the step time without an op tells what the op costs inside
 * the decode graph, which the synchronous profile cannot). */
static int skipped(const cuda_ctx *c, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = c->skip; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n))
            return 1;
        p += len + (e ? 1 : 0);
    }
    return 0;
}

static int run_one(cuda_ctx *c, const char *name, cuda_run_fn fn, const void *args)
{
    if (c->skip[0] && skipped(c, name))
        return CL_OK;
    /* any op but a projection may rewrite the fp32 input a cached conversion came from */
    if (strncmp(name, "matmul", 6) != 0)
        c->act16_src = NULL;
    if (!c->profile)
        return fn(c, args);
    /* device time between two events around the op (no launch or sync latency) */
    if (!c->prof_ev[0]) {
        CU_CHECK(cudaEventCreate(&c->prof_ev[0]));
        CU_CHECK(cudaEventCreate(&c->prof_ev[1]));
    }
    prof_ctx = c;
    kl_mark = prof_mark;
    CU_CHECK(cudaEventRecord(c->prof_ev[0], c->stream));
    int rc = fn(c, args);
    CU_CHECK(cudaEventRecord(c->prof_ev[1], c->stream));
    CU_CHECK(cudaEventSynchronize(c->prof_ev[1]));
    float dt = 0;
    CU_CHECK(cudaEventElapsedTime(&dt, c->prof_ev[0], c->prof_ev[1]));
    prof_add(c, name, dt);
    kl_mark = NULL;
    prof_ctx = NULL;
    return rc;
}

static int list_append(cuda_rec_list *l, const char *name, cuda_run_fn fn, const void *args,
                       size_t size)
{
    if (l->n_ops == l->cap_ops) {
        size_t cap = l->cap_ops ? 2 * l->cap_ops : 256;
        cuda_rec_op *o = realloc(l->ops, cap * sizeof *o);
        if (!o)
            return cl_err(CL_ERR_NOMEM, "out of memory (op recorder)");
        l->ops = o;
        l->cap_ops = cap;
    }
    size_t need = l->n_bytes + ((size + 15) & ~(size_t)15);
    if (need > l->cap_bytes) {
        size_t cap = l->cap_bytes ? 2 * l->cap_bytes : 65536;
        while (cap < need)
            cap *= 2;
        unsigned char *b = realloc(l->bytes, cap);
        if (!b)
            return cl_err(CL_ERR_NOMEM, "out of memory (op recorder)");
        l->bytes = b;
        l->cap_bytes = cap;
    }
    memcpy(l->bytes + l->n_bytes, args, size);
    /* zero the alignment gap: lists are compared byte for byte, and the arena's
     * memory is reused from older lists (stale gap bytes made equal steps differ) */
    memset(l->bytes + l->n_bytes + size, 0, need - l->n_bytes - size);
    l->ops[l->n_ops++] = (cuda_rec_op){fn, name, l->n_bytes, size};
    l->n_bytes = need;
    return CL_OK;
}

int cuda_dispatch(cuda_ctx *c, const char *name, cuda_run_fn fn, const void *args, size_t size)
{
    /* held-back ops go first (they are dispatched through here too) */
    if (c->n_held)
        CL_TRY(cuda_held_flush(c));
    if (c->has_pend)
        CL_TRY(cuda_gemm_flush(c));
    if (c->recording)
        return list_append(&c->rec, name, fn, args, size);
    return run_one(c, name, fn, args);
}

static int lists_equal(const cuda_rec_list *a, const cuda_rec_list *b)
{
    if (a->n_ops != b->n_ops || a->n_bytes != b->n_bytes)
        return 0;
    for (size_t i = 0; i < a->n_ops; i++)
        if (a->ops[i].fn != b->ops[i].fn || a->ops[i].size != b->ops[i].size)
            return 0;
    return memcmp(a->bytes, b->bytes, a->n_bytes) == 0;
}

static int run_list(cuda_ctx *c, const cuda_rec_list *l)
{
    for (size_t i = 0; i < l->n_ops; i++)
        CL_TRY(run_one(c, l->ops[i].name, l->ops[i].fn, l->bytes + l->ops[i].off));
    return CL_OK;
}

/* Captures the recorded list into a graph; on failure leaves *exec NULL. */
static int capture(cuda_ctx *c, cudaGraphExec_t *exec)
{
    *exec = NULL;
    CU_CHECK(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal));
    int rc = run_list(c, &c->rec);
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(c->stream, &g);
    if (rc == CL_OK && e != cudaSuccess)
        rc = cl_err(CL_ERR_BACKEND, "cuda: graph capture: %s", cudaGetErrorString(e));
    if (rc == CL_OK) {
        e = cudaGraphInstantiate(exec, g, 0);
        if (e != cudaSuccess) {
            *exec = NULL;
            rc = cl_err(CL_ERR_BACKEND, "cuda: graph instantiate: %s", cudaGetErrorString(e));
        }
    }
    if (g)
        cudaGraphDestroy(g);
    cudaGetLastError();
    return rc;
}

int cuda_flush(cuda_ctx *c)
{
    if (c->sticky_rc) {
        int rc = c->sticky_rc;
        c->sticky_rc = 0;
        return cl_err(rc, "%s", c->sticky_msg);
    }
    if (c->n_held)
        CL_TRY(cuda_held_flush(c));
    if (c->has_pend)
        CL_TRY(cuda_gemm_flush(c));
    if (!c->recording)
        return CL_OK;
    c->recording = 0;
    c->act16_src = NULL; /* a graph must never rely on conversions made outside it */
    if (!c->rec.n_ops)
        return CL_OK;
    c->clock++;
    for (int i = 0; i < CUDA_GRAPH_CACHE; i++) {
        cuda_graph_entry *g = &c->cache[i];
        if (g->exec && lists_equal(&g->list, &c->rec)) {
            g->last_used = c->clock;
            c->graph_hits++;
            CU_CHECK(cudaGraphLaunch(g->exec, c->stream));
            return CL_OK;
        }
    }
    if (getenv("COLLAGE_CUDA_GRAPH_DEBUG")) /* why did no graph match? */
        for (int i = 0; i < CUDA_GRAPH_CACHE; i++) {
            const cuda_rec_list *l = &c->cache[i].list;
            if (!c->cache[i].exec || l->n_ops != c->rec.n_ops)
                continue;
            for (size_t k = 0; k < l->n_ops; k++) {
                const cuda_rec_op *a = &l->ops[k], *b = &c->rec.ops[k];
                if (a->fn != b->fn || a->size != b->size ||
                    memcmp(l->bytes + a->off, c->rec.bytes + b->off, a->size)) {
                    size_t j = 0;
                    while (a->fn == b->fn && j < a->size &&
                           l->bytes[a->off + j] == c->rec.bytes[b->off + j])
                        j++;
                    fprintf(stderr, "cuda graph: op %zu (%s) differs at byte %zu\n", k, b->name,
                            j);
                    break;
                }
            }
        }
    cudaGraphExec_t exec = NULL;
    int rc = capture(c, &exec);
    c->act16_src = NULL;
    if (rc != CL_OK || !exec) {
        /* not capturable here: run the ops directly from now on */
        cl_log_warn("cuda: decode graphs disabled (%s)", cl_errmsg());
        c->graphs = 0;
        return run_list(c, &c->rec);
    }
    int slot = 0;
    for (int i = 0; i < CUDA_GRAPH_CACHE; i++) {
        if (!c->cache[i].exec) {
            slot = i;
            break;
        }
        if (c->cache[i].last_used < c->cache[slot].last_used)
            slot = i;
    }
    cuda_graph_entry *g = &c->cache[slot];
    if (g->exec)
        cudaGraphExecDestroy(g->exec);
    /* the entry takes the recorded list; the recorder reuses the evicted one's memory */
    cuda_rec_list old = g->list;
    g->list = c->rec;
    c->rec = old;
    c->rec.n_ops = c->rec.n_bytes = 0;
    g->exec = exec;
    g->last_used = c->clock;
    c->graph_captures++;
    CU_CHECK(cudaGraphLaunch(exec, c->stream));
    return CL_OK;
}

void cuda_graphs_free(cuda_ctx *c)
{
    for (int i = 0; i < CUDA_GRAPH_CACHE; i++) {
        if (c->cache[i].exec)
            cudaGraphExecDestroy(c->cache[i].exec);
        free(c->cache[i].list.ops);
        free(c->cache[i].list.bytes);
        memset(&c->cache[i], 0, sizeof c->cache[i]);
    }
    free(c->rec.ops);
    free(c->rec.bytes);
    memset(&c->rec, 0, sizeof c->rec);
}
