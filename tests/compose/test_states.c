/* test_states - composition on mkmodel tiny models (no ../shared needed):
 * chunk layouts and positions (§3, §6, the §11.5 fix); stored-document
 * composition equals in-memory composition for equal-length documents; fuse is
 * invariant to document order for Mamba2 and GKA; one chunk composes to a plain
 * prefill; full-KV strategies; the sw gap is hidden (changing gap tokens leaves
 * the post-query logits unchanged when masked, and changes them when not); bad
 * arguments are refused. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/status.h"
#include "compose/compose.h"
#include "compose/layout.h"
#include "compose/strategy.h"
#include "compose_util.h"
#include "engine/state.h"
#include "testutil.h"

/* ---- layouts ---- */

static void test_layout_worked_example(void **st)
{
    (void)st;
    /* COMPOSITION.md §3.1: Lc=10, N=3, prefix p0 p1 */
    int32_t ctx[10] = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, pre[2] = {1, 2};
    cl_compose_opts o;
    cl_compose_opts_default(&o);
    o.num_chunks = 3;
    o.prefix_ids = pre;
    o.n_prefix = 2;
    o.pad_id = 9;
    cl_compose_layout l;
    assert_int_equal(cl_compose_layout_build(ctx, 10, &o, &l), CL_OK);
    const int32_t rows[18] = {1, 2, 10, 11, 12, 13, 1, 2, 14, 15, 16, 17, 9, 9, 1, 2, 18, 19};
    assert_int_equal(l.row_tokens, 6);
    assert_memory_equal(l.tokens, rows, sizeof rows);
    int kept = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 6; j++)
            kept += cl_compose_layout_kept(&l, i, j);
    assert_int_equal(kept, 12);
    assert_int_equal(l.kept, 12);
    assert_int_equal(l.next_pos, 6);
    for (int t = 0; t < 18; t++)
        assert_int_equal(l.positions[t], t % 6);
    cl_compose_layout_free(&l);
    /* sequential: prefix 0,1; content contiguous 2..11 (the reference puts c8, c9
     * at 12, 13, colliding with the query, §11.5); next = 12 */
    o.sequential_positions = 1;
    assert_int_equal(cl_compose_layout_build(ctx, 10, &o, &l), CL_OK);
    const int64_t pos[18] = {0, 1, 2, 3, 4, 5, 0, 1, 6, 7, 8, 9, 0, 1, 8, 9, 10, 11};
    assert_memory_equal(l.positions, pos, sizeof pos);
    assert_int_equal(l.next_pos, 12);
    cl_compose_layout_free(&l);
}

static void test_layout_other_splits(void **st)
{
    (void)st;
    int32_t ctx[9] = {10, 11, 12, 13, 14, 15, 16, 17, 18};
    cl_compose_opts o;
    cl_compose_opts_default(&o);
    o.num_chunks = 4; /* cs = 3: chunks 3,3,3,0 */
    o.min_prepend = 2;
    o.pad_id = 7;
    cl_compose_layout l;
    assert_int_equal(cl_compose_layout_build(ctx, 9, &o, &l), CL_OK);
    const int32_t rows[20] = {7, 7, 10, 11, 12, 7, 7, 13, 14, 15, 7, 7, 16, 17, 18, 7, 7, 7, 7, 7};
    assert_memory_equal(l.tokens, rows, sizeof rows);
    assert_int_equal(l.lead[0], 2);
    assert_int_equal(l.lead[3], 5);
    assert_int_equal(l.content[3], 0);
    assert_int_equal(l.kept, 11);
    cl_compose_layout_free(&l);
    /* full: the plain split 3,2,2,2 */
    o.kv = CL_COMPOSE_KV_FULL;
    assert_int_equal(cl_compose_layout_build(ctx, 9, &o, &l), CL_OK);
    const int64_t off[5] = {0, 3, 5, 7, 9};
    assert_memory_equal(l.off, off, sizeof off);
    assert_memory_equal(l.tokens, ctx, sizeof ctx);
    assert_int_equal(l.positions[4], 1);
    assert_int_equal(l.next_pos, 9);
    cl_compose_layout_free(&l);
    o.num_chunks = 0;
    assert_int_equal(cl_compose_layout_build(ctx, 9, &o, &l), CL_ERR_ARG);
}

/* ---- engine-level checks ---- */

typedef struct {
    cl_model *m;
    cl_cache *c;
} env;

/* A tiny model and a cache that keeps GDN transitions (fuse / caso need them). */
static env make_env(const char *preset)
{
    env e;
    e.m = cu_mkmodel(preset, NULL, 0, 3);
    cl_cache_opts co;
    cl_cache_opts_for_model(e.m, &co);
    co.track_transition = 1;
    assert_int_equal(cl_cache_create(e.m, &co, &e.c), CL_OK);
    return e;
}

static void free_env(env *e)
{
    cl_cache_free(e->c);
    cl_model_free(e->m);
}

static void compare_states(const char *what, const cl_seq *a, const cl_seq *b, double tol)
{
    assert_int_equal(a->kv_len, b->kv_len);
    assert_int_equal(a->pos, b->pos);
    assert_int_equal(a->hide_lo, b->hide_lo);
    assert_int_equal(a->hide_hi, b->hide_hi);
    size_t kb = cl_state_kv_bytes(a->c, a->kv_len);
    if (kb) {
        float *ka = malloc(kb), *kb_ = malloc(kb);
        assert_int_equal(cl_state_read_kv(a, 0, a->kv_len, ka), CL_OK);
        assert_int_equal(cl_state_read_kv(b, 0, b->kv_len, kb_), CL_OK);
        char name[256];
        snprintf(name, sizeof name, "%.200s KV", what);
        cu_cmp(name, ka, kb_, kb / sizeof(float), tol);
        free(ka);
        free(kb_);
    }
    int wt = cu_cache_has_trans(a->c);
    float *sa = cu_read_ssm(a, wt), *sb = cu_read_ssm(b, wt);
    char name[256];
    snprintf(name, sizeof name, "%.200s SSM", what);
    cu_cmp(name, sa, sb, cl_state_ssm_bytes(a->c, wt) / sizeof(float), tol);
    free(sa);
    free(sb);
}

/* Stored documents (each prefix + doc prefilled alone) compose exactly as the
 * in-memory chunks of their concatenation. */
static void stored_vs_memory(env e, const char *preset, cl_compose_ssm ssm, int sw)
{
    enum { N = 3, L = 20, P = 5 };
    int32_t ctx[N * L], pre[P], row[P + L];
    cu_random_ids(ctx, N * L, e.m->cfg->vocab_size, 31);
    cu_random_ids(pre, P, e.m->cfg->vocab_size, 32);
    cl_compose_opts o;
    cl_compose_opts_default(&o);
    o.kv = sw ? CL_COMPOSE_KV_SW : CL_COMPOSE_KV_CONCAT;
    o.ssm = ssm;
    o.num_chunks = N;
    o.prefix_ids = pre;
    o.n_prefix = P;
    cl_seq mem, stored, docs[N];
    assert_int_equal(cl_seq_init(&mem, e.c), CL_OK);
    assert_int_equal(cl_seq_init(&stored, e.c), CL_OK);
    assert_int_equal(cl_compose_context(e.m, ctx, N * L, &o, &mem, NULL), CL_OK);
    const cl_seq *dp[N];
    for (int i = 0; i < N; i++) {
        assert_int_equal(cl_seq_init(&docs[i], e.c), CL_OK);
        memcpy(row, pre, sizeof pre);
        memcpy(row + P, ctx + i * L, L * sizeof *row);
        assert_int_equal(cl_seq_feed(e.m, &docs[i], row, P + L, 0, CL_LOGITS_NONE, NULL), CL_OK);
        dp[i] = &docs[i];
    }
    cl_compose_info info;
    assert_int_equal(cl_compose_states(dp, N, &o, &stored, &info), CL_OK);
    assert_int_equal(info.kept_tokens, P + N * L);
    assert_int_equal(stored.pos, P + L);
    if (sw) {
        assert_int_equal(stored.hide_lo, P);
        assert_int_equal(stored.hide_hi, P + (N - 1) * L);
    }
    char what[128];
    snprintf(what, sizeof what, "%s %s%s stored vs in-memory", preset,
             cl_compose_type_name(o.kv, ssm), "");
    /* batched rows vs single prefills: float noise (GKA's iterative solve: more) */
    compare_states(what, &stored, &mem, strstr(preset, "gka") ? 5e-5 : 1e-5);
    for (int i = 0; i < N; i++)
        cl_seq_release(&docs[i]);
    cl_seq_release(&mem);
    cl_seq_release(&stored);
}

static void test_stored_equals_memory(void **st)
{
    (void)st;
    const char *presets[] = {"tiny-m2", "tiny-gdn", "tiny-gka"};
    cl_compose_ssm ssms[] = {CL_COMPOSE_SSM_SOUP, CL_COMPOSE_SSM_FUSE, CL_COMPOSE_SSM_KV_ONLY,
                             CL_COMPOSE_SSM_CASO};
    for (int p = 0; p < 3; p++) {
        env e = make_env(presets[p]);
        for (int s = 0; s < 4; s++)
            stored_vs_memory(e, presets[p], ssms[s], s == 0);
        free_env(&e);
    }
}

/* Mamba2 and GKA fuse with equal-length documents: the SSM state does not
 * depend on the documents' order. */
static void test_fuse_order_invariant(void **st)
{
    (void)st;
    const char *presets[] = {"tiny-m2", "tiny-gka"};
    for (int p = 0; p < 2; p++) {
        env e = make_env(presets[p]);
        enum { N = 4, L = 24 };
        int32_t ids[N * L];
        cu_random_ids(ids, N * L, e.m->cfg->vocab_size, 40 + p);
        cl_seq docs[N], a, b;
        for (int i = 0; i < N; i++) {
            assert_int_equal(cl_seq_init(&docs[i], e.c), CL_OK);
            assert_int_equal(cl_seq_feed(e.m, &docs[i], ids + i * L, L, 0, CL_LOGITS_NONE, NULL),
                             CL_OK);
        }
        assert_int_equal(cl_seq_init(&a, e.c), CL_OK);
        assert_int_equal(cl_seq_init(&b, e.c), CL_OK);
        cl_compose_opts o;
        cl_compose_opts_default(&o);
        o.ssm = CL_COMPOSE_SSM_FUSE;
        const cl_seq *fwd[N] = {&docs[0], &docs[1], &docs[2], &docs[3]};
        const cl_seq *perm[N] = {&docs[2], &docs[0], &docs[3], &docs[1]};
        assert_int_equal(cl_compose_states(fwd, N, &o, &a, NULL), CL_OK);
        assert_int_equal(cl_compose_states(perm, N, &o, &b, NULL), CL_OK);
        int wt = cu_cache_has_trans(e.c);
        float *sa = cu_read_ssm(&a, wt), *sb = cu_read_ssm(&b, wt);
        char what[64];
        snprintf(what, sizeof what, "%s fuse, permuted documents", presets[p]);
        cu_cmp(what, sa, sb, cl_state_ssm_bytes(e.c, wt) / sizeof(float), 1e-6);
        free(sa);
        free(sb);
        for (int i = 0; i < N; i++)
            cl_seq_release(&docs[i]);
        cl_seq_release(&a);
        cl_seq_release(&b);
        free_env(&e);
    }
}

/* Logits of the suffix (all rows) after composing context with o. */
static void composed_logits(cl_model *m, const int32_t *ctx, int64_t n_ctx, const int32_t *suf,
                            int64_t n_suf, const cl_compose_opts *o, float *logits)
{
    cl_cache_opts co;
    cl_compose_cache_opts(m, o, &co);
    cl_cache *c;
    assert_int_equal(cl_cache_create(m, &co, &c), CL_OK);
    cl_seq s;
    assert_int_equal(cl_seq_init(&s, c), CL_OK);
    if (cl_compose_context(m, ctx, n_ctx, o, &s, NULL) != CL_OK)
        fail_msg("compose: %s", cl_errmsg());
    assert_int_equal(cl_compose_feed_query(m, &s, suf, n_suf - 1, o), CL_OK);
    assert_int_equal(cl_seq_feed(m, &s, suf + n_suf - 1, 1, 0, CL_LOGITS_LAST, logits), CL_OK);
    cl_seq_release(&s);
    cl_cache_free(c);
}

static void plain_logits(cl_model *m, const int32_t *ids, int64_t n, float *logits)
{
    cl_cache *c;
    assert_int_equal(cl_cache_create(m, NULL, &c), CL_OK);
    cl_seq s;
    assert_int_equal(cl_seq_init(&s, c), CL_OK);
    assert_int_equal(cl_seq_feed(m, &s, ids, n, 0, CL_LOGITS_LAST, logits), CL_OK);
    cl_seq_release(&s);
    cl_cache_free(c);
}

/* One chunk (and full KV with one chunk) composes to a plain prefill of
 * prefix ‖ context (full: context) for every SSM strategy but kv_only, both
 * position modes. */
static void test_one_chunk_is_plain(void **st)
{
    (void)st;
    const char *presets[] = {"tiny-m2", "tiny-gdn", "tiny-gka"};
    const char *types[] = {"concat_kv_soup_ssm", "concat_kv_fuse_ssm", "concat_kv_caso_ssm",
                           "full_kv_soup_ssm", "full_kv_fuse_ssm", "full_kv_caso_ssm"};
    for (int p = 0; p < 3; p++) {
        cl_model *m = cu_mkmodel(presets[p], NULL, 0, 4);
        int64_t V = m->cfg->vocab_size;
        enum { P = 4, LC = 45, LS = 5 };
        int32_t all[P + LC + LS];
        cu_random_ids(all, P + LC + LS, V, 50 + p);
        float *ref = malloc((size_t)V * sizeof *ref), *ref_full = malloc((size_t)V * sizeof *ref),
              *got = malloc((size_t)V * sizeof *got);
        plain_logits(m, all, P + LC + LS, ref);
        plain_logits(m, all + P, LC + LS, ref_full);
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
            for (int seq = 0; seq < (strncmp(types[t], "full", 4) ? 2 : 1); seq++) {
                cl_compose_opts o;
                cl_compose_opts_default(&o);
                assert_int_equal(cl_compose_type_parse(types[t], &o.kv, &o.ssm), CL_OK);
                o.num_chunks = 1;
                o.prefix_ids = all;
                o.n_prefix = P;
                o.sequential_positions = seq;
                composed_logits(m, all + P, LC, all + P + LC, LS, &o, got);
                char what[128];
                snprintf(what, sizeof what, "%s %s N=1%s vs plain", presets[p], types[t],
                         seq ? " seq" : "");
                cu_cmp(what, got, o.kv == CL_COMPOSE_KV_FULL ? ref_full : ref, (size_t)V,
                       p == 2 ? 5e-5 : 1e-5);
            }
        free(ref);
        free(ref_full);
        free(got);
        cl_model_free(m);
    }
}

/* full_kv_*: the KV of the whole context; kv_only zeroes the SSM memory; soup
 * holds the mean of the plain chunks' states. */
static void test_full_kv(void **st)
{
    (void)st;
    env e = make_env("tiny-gdn");
    enum { LC = 30, N = 3 };
    int32_t ctx[LC];
    cu_random_ids(ctx, LC, e.m->cfg->vocab_size, 60);
    cl_seq plain, out, chunks[N];
    assert_int_equal(cl_seq_init(&plain, e.c), CL_OK);
    assert_int_equal(cl_seq_init(&out, e.c), CL_OK);
    assert_int_equal(cl_seq_feed(e.m, &plain, ctx, LC, 0, CL_LOGITS_NONE, NULL), CL_OK);
    cl_compose_opts o;
    cl_compose_opts_default(&o);
    o.kv = CL_COMPOSE_KV_FULL;
    o.ssm = CL_COMPOSE_SSM_KV_ONLY;
    o.num_chunks = N;
    assert_int_equal(cl_compose_context(e.m, ctx, LC, &o, &out, NULL), CL_OK);
    assert_int_equal(out.kv_len, LC);
    assert_int_equal(out.pos, LC);
    size_t kb = cl_state_kv_bytes(e.c, LC);
    float *ka = malloc(kb), *kb_ = malloc(kb);
    assert_int_equal(cl_state_read_kv(&out, 0, LC, ka), CL_OK);
    assert_int_equal(cl_state_read_kv(&plain, 0, LC, kb_), CL_OK);
    cu_cmp("full KV = plain prefill KV", ka, kb_, kb / sizeof(float), 0);
    int wt = cu_cache_has_trans(e.c);
    size_t sf = cl_state_ssm_bytes(e.c, wt) / sizeof(float);
    float *s = cu_read_ssm(&out, wt);
    cl_compose_ssm_view *v;
    size_t fl;
    assert_int_equal(cl_compose_ssm_views(e.c, wt, &v, &fl), CL_OK);
    for (int i = 0; i < e.c->n_ssm; i++)
        for (size_t t = 0; t < v[i].state_n; t++)
            assert_true(s[v[i].state + t] == 0.0f && s[v[i].state2 + t] == 0.0f);
    free(s);
    /* soup: mean of the plain chunks 10,10,10 */
    o.ssm = CL_COMPOSE_SSM_SOUP;
    assert_int_equal(cl_compose_context(e.m, ctx, LC, &o, &out, NULL), CL_OK);
    float *mean = calloc(sf, sizeof *mean);
    for (int i = 0; i < N; i++) {
        assert_int_equal(cl_seq_init(&chunks[i], e.c), CL_OK);
        assert_int_equal(cl_seq_feed(e.m, &chunks[i], ctx + i * 10, 10, 0, CL_LOGITS_NONE, NULL),
                         CL_OK);
        float *ci = cu_read_ssm(&chunks[i], wt);
        for (int l = 0; l < e.c->n_ssm; l++)
            for (size_t t = 0; t < v[l].state_n; t++)
                mean[v[l].state + t] += ci[v[l].state + t] / N;
        free(ci);
    }
    s = cu_read_ssm(&out, wt);
    for (int l = 0; l < e.c->n_ssm; l++)
        cu_cmp("full_kv_soup_ssm state = mean of plain chunks", s + v[l].state, mean + v[l].state,
               v[l].state_n, 1e-5);
    free(s);
    free(mean);
    free(v);
    free(ka);
    free(kb_);
    for (int i = 0; i < N; i++)
        cl_seq_release(&chunks[i]);
    cl_seq_release(&plain);
    cl_seq_release(&out);
    free_env(&e);
}

/* sw: the gap (content of chunks 0..N-2) is invisible to the query when masked:
 * with kv_only SSM, changing the gap tokens leaves the logits unchanged; without
 * --sw-mask-query the query body sees the gap and the logits change. */
static void test_sw_gap_hidden(void **st)
{
    (void)st;
    cl_model *m = cu_mkmodel("tiny-m2", NULL, 0, 8);
    int64_t V = m->cfg->vocab_size;
    enum { P = 3, LC = 36, N = 3, LS = 6 };
    int32_t pre[P], a[LC], b[LC], suf[LS];
    cu_random_ids(pre, P, V, 70);
    cu_random_ids(a, LC, V, 71);
    cu_random_ids(suf, LS, V, 72);
    memcpy(b, a, sizeof a);
    for (int i = 2; i < 2 * LC / N; i += 3) /* change tokens of chunks 0 and 1 only */
        b[i] = (a[i] + 17) % (int32_t)V;
    float *la = malloc((size_t)V * sizeof *la), *lb = malloc((size_t)V * sizeof *lb);
    cl_compose_opts o;
    cl_compose_opts_default(&o);
    o.kv = CL_COMPOSE_KV_SW;
    o.ssm = CL_COMPOSE_SSM_KV_ONLY;
    o.num_chunks = N;
    o.prefix_ids = pre;
    o.n_prefix = P;
    o.sw_mask_query = 1;
    composed_logits(m, a, LC, suf, LS, &o, la);
    composed_logits(m, b, LC, suf, LS, &o, lb);
    double same = cu_cmp("sw_kv_only masked query: gap changed", la, lb, (size_t)V, 0);
    o.sw_mask_query = 0;
    composed_logits(m, a, LC, suf, LS, &o, la);
    composed_logits(m, b, LC, suf, LS, &o, lb);
    double diff = tu_rel_err(la, lb, (size_t)V);
    print_message("    unmasked query body: gap change moves the logits by %.3g\n", diff);
    assert_true(same == 0.0 && diff > 1e-4);
    /* and the same under concat: the gap is visible */
    o.kv = CL_COMPOSE_KV_CONCAT;
    o.sw_mask_query = 1;
    composed_logits(m, a, LC, suf, LS, &o, la);
    composed_logits(m, b, LC, suf, LS, &o, lb);
    assert_true(tu_rel_err(la, lb, (size_t)V) > 1e-4);
    free(la);
    free(lb);
    cl_model_free(m);
}

/* Generation after the query honours the gap even when the body saw it: the
 * last query token's logits ignore the gap KV (compare with the gap's KV zeroed). */
static void test_sw_generation_mask(void **st)
{
    (void)st;
    cl_model *m = cu_mkmodel("tiny-attn", NULL, 0, 9);
    int64_t V = m->cfg->vocab_size;
    enum { LC = 30, N = 3 };
    int32_t ctx[LC], q = 5;
    cu_random_ids(ctx, LC, V, 80);
    cl_compose_opts o;
    cl_compose_opts_default(&o);
    o.kv = CL_COMPOSE_KV_SW;
    o.ssm = CL_COMPOSE_SSM_KV_ONLY;
    o.num_chunks = N;
    cl_cache *c;
    assert_int_equal(cl_cache_create(m, NULL, &c), CL_OK);
    cl_seq s, t;
    assert_int_equal(cl_seq_init(&s, c), CL_OK);
    assert_int_equal(cl_seq_init(&t, c), CL_OK);
    cl_compose_info info;
    assert_int_equal(cl_compose_context(m, ctx, LC, &o, &s, &info), CL_OK);
    assert_int_equal(s.hide_lo, 1); /* min_prepend pad of row 0 */
    assert_int_equal(s.hide_hi, 1 + 20);
    /* t = the same state with the gap's KV replaced by other values: with the gap
     * hidden, nothing changes */
    assert_int_equal(cl_seq_copy(&t, &s), CL_OK);
    size_t kb = cl_state_kv_bytes(c, 20);
    float *junk = malloc(kb);
    for (size_t i = 0; i < kb / sizeof *junk; i++)
        junk[i] = (float)((i * 7) % 13) - 6.0f;
    assert_int_equal(cl_state_write_kv(&t, 1, 20, junk), CL_OK);
    float *l1 = malloc((size_t)V * sizeof *l1), *l2 = malloc((size_t)V * sizeof *l2);
    assert_int_equal(cl_seq_feed(m, &s, &q, 1, 0, CL_LOGITS_LAST, l1), CL_OK);
    assert_int_equal(cl_seq_feed(m, &t, &q, 1, 0, CL_LOGITS_LAST, l2), CL_OK);
    cu_cmp("sw: gap KV replaced, generation logits", l1, l2, (size_t)V, 0);
    free(junk);
    free(l1);
    free(l2);
    cl_seq_release(&s);
    cl_seq_release(&t);
    cl_cache_free(c);
    cl_model_free(m);
}

/* Sequential positions: every kept token sits at its position in prefix ‖
 * context (content contiguous, also in a short last row), so the first attention
 * layer's K and V, which depend only on token and position, equal those of a
 * plain prefill of prefix ‖ context. */
static void test_sequential_positions(void **st)
{
    (void)st;
    cl_model *m = cu_mkmodel("tiny-attn", NULL, 0, 10);
    enum { P = 2, LC = 10, N = 3 };
    int32_t all[P + LC];
    cu_random_ids(all, P + LC, m->cfg->vocab_size, 90);
    cl_compose_opts o;
    cl_compose_opts_default(&o);
    o.ssm = CL_COMPOSE_SSM_KV_ONLY;
    o.num_chunks = N;
    o.prefix_ids = all;
    o.n_prefix = P;
    o.sequential_positions = 1;
    cl_cache *c;
    assert_int_equal(cl_cache_create(m, NULL, &c), CL_OK);
    cl_seq s, plain;
    assert_int_equal(cl_seq_init(&s, c), CL_OK);
    assert_int_equal(cl_seq_init(&plain, c), CL_OK);
    assert_int_equal(cl_compose_context(m, all + P, LC, &o, &s, NULL), CL_OK);
    assert_int_equal(s.kv_len, P + LC);
    assert_int_equal(s.pos, P + LC);
    assert_int_equal(cl_seq_feed(m, &plain, all, P + LC, 0, CL_LOGITS_NONE, NULL), CL_OK);
    size_t kb = cl_state_kv_bytes(c, P + LC);
    float *a = malloc(kb), *b = malloc(kb);
    assert_int_equal(cl_state_read_kv(&s, 0, P + LC, a), CL_OK);
    assert_int_equal(cl_state_read_kv(&plain, 0, P + LC, b), CL_OK);
    size_t layer0 = kb / (size_t)c->n_attn / sizeof(float); /* K and V of layer 0 */
    cu_cmp("sequential: layer-0 KV = plain prefill", a, b, layer0, 1e-6);
    free(a);
    free(b);
    cl_seq_release(&s);
    cl_seq_release(&plain);
    cl_cache_free(c);
    cl_model_free(m);
}

static void test_bad_arguments(void **st)
{
    (void)st;
    cl_compose_kv kv;
    cl_compose_ssm ssm;
    assert_int_equal(cl_compose_type_parse("concat_kv_soup", &kv, &ssm), CL_ERR_ARG);
    assert_non_null(strstr(cl_errmsg(), "unknown compose type"));
    assert_int_equal(cl_compose_type_parse("sw_caso_ssm", &kv, &ssm), CL_OK);
    assert_string_equal(cl_compose_type_name(kv, ssm), "sw_caso_ssm");
    cl_model *m = cu_mkmodel("tiny-m2", NULL, 0, 3);
    int32_t ids[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    cl_compose_opts o;
    cl_compose_opts_default(&o);
    cl_gen_opts g;
    cl_gen_opts_default(&g);
    g.max_new_tokens = 2;
    cl_ids out = {0};
    o.num_chunks = 0;
    assert_int_equal(cl_compose_run(m, ids, 10, 2, &o, &g, &out, NULL, NULL), CL_ERR_ARG);
    assert_non_null(strstr(cl_errmsg(), "num-chunks"));
    o.num_chunks = 2;
    assert_int_equal(cl_compose_run(m, ids, 10, 11, &o, &g, &out, NULL, NULL), CL_ERR_ARG);
    assert_non_null(strstr(cl_errmsg(), "longer than the input"));
    assert_int_equal(cl_compose_run(m, ids, 10, 0, &o, &g, &out, NULL, NULL), CL_ERR_ARG);
    ids[3] = 100000;
    assert_int_equal(cl_compose_run(m, ids, 10, 2, &o, &g, &out, NULL, NULL), CL_ERR_RANGE);
    assert_non_null(strstr(cl_errmsg(), "out of range"));
    ids[3] = 4;
    o.pad_id = -1;
    assert_int_equal(cl_compose_run(m, ids, 10, 2, &o, &g, &out, NULL, NULL), CL_ERR_RANGE);
    o.pad_id = 1;
    o.max_context = 4; /* rows of 6 tokens do not fit */
    assert_int_equal(cl_compose_run(m, ids, 10, 2, &o, &g, &out, NULL, NULL), CL_ERR_RANGE);
    o.max_context = 0;
    assert_int_equal(cl_compose_run(m, ids, 10, 2, &o, &g, &out, NULL, NULL), CL_OK);
    assert_int_equal((int)out.n, 2);
    /* stored documents: full KV and self-composition are refused */
    cl_cache *c;
    assert_int_equal(cl_cache_create(m, NULL, &c), CL_OK);
    cl_seq d, r;
    assert_int_equal(cl_seq_init(&d, c), CL_OK);
    assert_int_equal(cl_seq_init(&r, c), CL_OK);
    const cl_seq *dp[2] = {&d, &r};
    assert_int_equal(cl_compose_states(dp, 2, &o, &r, NULL), CL_ERR_ARG);
    o.kv = CL_COMPOSE_KV_FULL;
    assert_int_equal(cl_compose_states(dp, 1, &o, &r, NULL), CL_ERR_ARG);
    o.kv = CL_COMPOSE_KV_CONCAT;
    o.n_prefix = 5; /* more lead than the (empty) document holds */
    assert_int_equal(cl_compose_states(dp, 1, &o, &r, NULL), CL_ERR_ARG);
    cl_seq_release(&d);
    cl_seq_release(&r);
    cl_cache_free(c);
    cl_ids_free(&out);
    cl_model_free(m);
    /* GDN fuse over a document restored from a snapshot without its transition */
    env e = make_env("tiny-gdn");
    int32_t toks[12] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    cl_seq a, b, z;
    assert_int_equal(cl_seq_init(&a, e.c), CL_OK);
    assert_int_equal(cl_seq_init(&b, e.c), CL_OK);
    assert_int_equal(cl_seq_init(&z, e.c), CL_OK);
    assert_int_equal(cl_seq_feed(e.m, &a, toks, 12, 0, CL_LOGITS_NONE, NULL), CL_OK);
    size_t nb = cl_state_ssm_bytes(e.c, 0);
    void *host = malloc(nb);
    assert_int_equal(cl_state_read_ssm(&a, host, 0), CL_OK);
    assert_int_equal(cl_state_write_ssm(&b, host, 0), CL_OK); /* transition stays identity */
    b.kv_len = 0;
    const cl_seq *gp[2] = {&a, &b};
    assert_int_equal(cl_compose_ssm_into(gp, 2, CL_COMPOSE_SSM_FUSE, &z), CL_ERR_ARG);
    assert_non_null(strstr(cl_errmsg(), "no transition product"));
    free(host);
    cl_seq_release(&a);
    cl_seq_release(&b);
    cl_seq_release(&z);
    free_env(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_worked_example),
        cmocka_unit_test(test_layout_other_splits),
        cmocka_unit_test(test_stored_equals_memory),
        cmocka_unit_test(test_fuse_order_invariant),
        cmocka_unit_test(test_one_chunk_is_plain),
        cmocka_unit_test(test_full_kv),
        cmocka_unit_test(test_sw_gap_hidden),
        cmocka_unit_test(test_sw_generation_mask),
        cmocka_unit_test(test_sequential_positions),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
