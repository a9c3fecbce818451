#include "engine/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "common/vmath.h"
#include "common/status.h"

void cl_sampler_opts_default(cl_sampler_opts *o)
{
    memset(o, 0, sizeof *o);
    o->greedy = 0;
    o->temperature = 1.0f;
    o->top_k = 0;
    o->top_p = 1.0f;
    o->min_p = 0.0f;
    o->repetition_penalty = 1.0f;
    o->seed = 0;
}

int cl_sampler_opts_check(const cl_sampler_opts *o)
{
    if (!o->greedy && !(o->temperature > 0 && o->temperature <= 1e6f))
        return cl_err(CL_ERR_ARG, "temperature must be in (0, 1e6] (greedy for argmax; got %g)",
                      (double)o->temperature);
    if (!(o->top_p > 0 && o->top_p <= 1))
        return cl_err(CL_ERR_ARG, "top_p must be in (0, 1] (got %g)", (double)o->top_p);
    if (!(o->min_p >= 0 && o->min_p < 1))
        return cl_err(CL_ERR_ARG, "min_p must be in [0, 1) (got %g)", (double)o->min_p);
    if (o->top_k < 0)
        return cl_err(CL_ERR_ARG, "top_k must be >= 0 (got %lld)", (long long)o->top_k);
    if (!(o->repetition_penalty > 0 && o->repetition_penalty <= 100))
        return cl_err(CL_ERR_ARG, "repetition_penalty must be in (0, 100] (got %g)",
                      (double)o->repetition_penalty);
    if (!(o->presence_penalty >= -2 && o->presence_penalty <= 2))
        return cl_err(CL_ERR_ARG, "presence_penalty must be in [-2, 2] (got %g)",
                      (double)o->presence_penalty);
    if (!(o->frequency_penalty >= -2 && o->frequency_penalty <= 2))
        return cl_err(CL_ERR_ARG, "frequency_penalty must be in [-2, 2] (got %g)",
                      (double)o->frequency_penalty);
    return CL_OK;
}

int cl_sampler_init(cl_sampler *s, const cl_sampler_opts *o)
{
    memset(s, 0, sizeof *s);
    s->o = *o;
    return cl_sampler_opts_check(o);
}

void cl_sampler_release(cl_sampler *s)
{
    free(s->items);
    free(s->block_mass);
    free(s->idx);
    free(s->prob);
    free(s->seen);
    memset(s, 0, sizeof *s);
}

int cl_sampler_create(const cl_sampler_opts *o, cl_sampler **out)
{
    cl_sampler *s = malloc(sizeof *s);
    if (!s)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    int rc = cl_sampler_init(s, o);
    if (rc != CL_OK) {
        free(s);
        return rc;
    }
    *out = s;
    return CL_OK;
}

void cl_sampler_free(cl_sampler *s)
{
    if (!s)
        return;
    cl_sampler_release(s);
    free(s);
}

int32_t cl_argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (int32_t)best;
}

/* Penalties (HF repetition: each distinct token of the history once, positive logits
 * divided, negative multiplied; OpenAI presence/frequency: over the generated tokens,
 * logit -= presence * [count > 0] + frequency * count). A bitmap over the vocabulary
 * keeps this linear in the history. */
static int penalize(cl_sampler *s, float *logits, int64_t V, const int32_t *hist, int64_t n,
                    int64_t n_prompt)
{
    const cl_sampler_opts *o = &s->o;
    int rep = o->repetition_penalty != 1.0f;
    int oai = o->presence_penalty != 0.0f || o->frequency_penalty != 0.0f;
    if (!rep && !oai)
        return CL_OK;
    if (s->seen_cap < V) {
        uint32_t *ns = realloc(s->seen, (size_t)V * sizeof *ns);
        if (!ns)
            return cl_err(CL_ERR_NOMEM, "out of memory (sampler)");
        s->seen = ns;
        s->seen_cap = V;
    }
    memset(s->seen, 0, (size_t)V * sizeof *s->seen);
    if (n_prompt > n)
        n_prompt = n;
    for (int64_t i = 0; i < n; i++) {
        int32_t t = hist[i];
        if (t < 0 || t >= V)
            continue;
        s->seen[t] |= 1u;
        if (i >= n_prompt)
            s->seen[t] += 2u;
    }
    for (int64_t i = 0; i < n; i++) {
        int32_t t = hist[i];
        if (t < 0 || t >= V || !(s->seen[t] & 1u))
            continue;
        if (rep)
            logits[t] = logits[t] > 0 ? logits[t] / o->repetition_penalty
                                      : logits[t] * o->repetition_penalty;
        uint32_t count = s->seen[t] >> 1;
        if (oai && count)
            logits[t] -= o->presence_penalty + o->frequency_penalty * (float)count;
        s->seen[t] &= ~1u; /* each distinct token once */
    }
    return CL_OK;
}

static _Thread_local const float *cmp_base; /* qsort has no context argument */
static int cmp_desc(const void *a, const void *b)
{
    float x = cmp_base[*(const int32_t *)a], y = cmp_base[*(const int32_t *)b];
    if (x != y)
        return x > y ? -1 : 1;
    return *(const int32_t *)a - *(const int32_t *)b;
}

/* s->idx and s->prob for V tokens: 1, or 0 when out of memory. */
static int scratch(cl_sampler *s, int64_t V)
{
    if (s->cap >= V)
        return 1;
    int32_t *ni = realloc(s->idx, (size_t)V * sizeof *ni);
    if (ni)
        s->idx = ni;
    float *np = realloc(s->prob, (size_t)V * sizeof *np);
    if (np)
        s->prob = np;
    if (!ni || !np)
        return 0;
    s->cap = V;
    return 1;
}

/* Fills s->idx[0..*n) with the surviving token ids and s->prob with their
 * normalised probabilities (sorted by probability, descending). */
static int filtered(cl_sampler *s, float *logits, int64_t V, int64_t *n_out)
{
    if (!scratch(s, V))
        return cl_err(CL_ERR_NOMEM, "out of memory (sampler)");
    const cl_sampler_opts *o = &s->o;
    for (int64_t i = 0; i < V; i++) {
        logits[i] /= o->temperature;
        s->idx[i] = (int32_t)i;
    }
    cmp_base = logits;
    qsort(s->idx, (size_t)V, sizeof *s->idx, cmp_desc);
    int64_t n = V;
    if (o->top_k > 0 && o->top_k < n)
        n = o->top_k;
    double mx = logits[s->idx[0]], sum = 0;
    for (int64_t i = 0; i < n; i++) {
        s->prob[i] = (float)exp((double)logits[s->idx[i]] - mx);
        sum += s->prob[i];
    }
    for (int64_t i = 0; i < n; i++)
        s->prob[i] = (float)(s->prob[i] / sum);
    if (o->top_p < 1.0f) {
        /* keep the smallest prefix whose mass reaches top_p (at least one token) */
        double acc = 0;
        int64_t keep = n;
        for (int64_t i = 0; i < n; i++) {
            acc += s->prob[i];
            if (acc >= o->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (o->min_p > 0.0f) {
        float thr = o->min_p * s->prob[0];
        int64_t keep = 1;
        while (keep < n && s->prob[keep] >= thr)
            keep++;
        n = keep;
    }
    sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += s->prob[i];
    for (int64_t i = 0; i < n; i++)
        s->prob[i] = (float)(s->prob[i] / sum);
    *n_out = n;
    return CL_OK;
}

int cl_sampler_probs(cl_sampler *s, float *logits, int64_t V, const int32_t *hist, int64_t nh,
                     int64_t n_prompt, float *probs)
{
    CL_TRY(penalize(s, logits, V, hist, nh, n_prompt));
    memset(probs, 0, (size_t)V * sizeof *probs);
    if (s->o.greedy) {
        probs[cl_argmax(logits, V)] = 1.0f;
        return CL_OK;
    }
    int64_t n = 0;
    CL_TRY(filtered(s, logits, V, &n));
    for (int64_t i = 0; i < n; i++)
        probs[s->idx[i]] = s->prob[i];
    return CL_OK;
}

/* ---- drawing without sorting the vocabulary ----
 * The draw walks the surviving tokens in the order (probability descending, id
 * ascending; id order when nothing is filtered) and takes the first at which the running
 * mass exceeds u times the total. A full sort of a 151K vocabulary costs ~23 ms per row,
 * a second per decode step of a batch of 40; instead: one pass when nothing is filtered,
 * a sorted list of k for a small top-k, and a quickselect on that order for the top-p
 * boundary and the crossing token (expected linear time). The passes over the whole
 * vocabulary (scale, max, e^x) are vector loops (common/vmath.h), and e^x of a small
 * top-k is taken for its k tokens alone: 0.15 ms a row where libm's expf took 0.7. */

/* top_k up to this: selected in one pass with a sorted list */
#define SMALL_K 64

/* a precedes b in the walk's order */
static int before(cl_sampler_item a, cl_sampler_item b)
{
    return a.w > b.w || (a.w == b.w && a.id < b.id);
}

static void swap_items(cl_sampler_item *x, int64_t i, int64_t j)
{
    cl_sampler_item t = x[i];
    x[i] = x[j];
    x[j] = t;
}

/* Partitions x[lo, hi) around a pivot (median of three in the order): on return
 * x[lo, *p) precede x[*p], which precedes x(*p, hi). */
static void partition(cl_sampler_item *x, int64_t lo, int64_t hi, int64_t *p)
{
    int64_t mid = lo + (hi - lo) / 2, last = hi - 1;
    if (before(x[mid], x[lo]))
        swap_items(x, mid, lo);
    if (before(x[last], x[lo]))
        swap_items(x, last, lo);
    if (before(x[last], x[mid]))
        swap_items(x, last, mid);
    swap_items(x, mid, last); /* the median is the pivot, kept at the end */
    const cl_sampler_item pv = x[last];
    int64_t store = lo;
    for (int64_t i = lo; i < last; i++)
        if (before(x[i], pv))
            swap_items(x, i, store++);
    swap_items(x, store, last);
    *p = store;
}

/* Reorders x[0, n) so that its first k entries are the k first in the order. */
static void select_first(cl_sampler_item *x, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n;
    while (hi - lo > 1) {
        int64_t p;
        partition(x, lo, hi, &p);
        if (p == k || p == k - 1)
            return;
        if (p > k)
            hi = p;
        else
            lo = p + 1;
    }
}

/* The position, in the walk's order over x[0, n), of the item at which the running
 * mass crosses target (inclusive: first with mass >= target; else first with mass >
 * target). x is reordered so that x[0, pos] are the items up to it (in no particular
 * order among themselves). */
static int64_t crossing(cl_sampler_item *x, int64_t n, double target, int inclusive)
{
    int64_t lo = 0, hi = n;
    double done = 0; /* mass of x[0, lo) */
    while (hi - lo > 1) {
        int64_t p;
        partition(x, lo, hi, &p);
        double m = 0;
        for (int64_t i = lo; i < p; i++)
            m += x[i].w;
        double at = done + m + x[p].w;
        if (inclusive ? done + m >= target : done + m > target)
            hi = p; /* it is among those before the pivot */
        else if (inclusive ? at >= target : at > target)
            return p;
        else {
            done = at;
            lo = p + 1;
        }
    }
    return lo < n ? lo : n - 1; /* (past the total by rounding: the last one) */
}

/* Tokens below (1 - top_p) * total / n hold at most (1 - top_p) of the mass together, so
 * the top-p prefix lies among the others: usually a few of the 151K. */
static float nucleus_floor(float top_p, double total, int64_t n)
{
    return (float)((1.0 - (double)top_p) * total / (double)n);
}

static double mass(const cl_sampler_item *x, int64_t n)
{
    double t = 0;
    for (int64_t i = 0; i < n; i++)
        t += x[i].w;
    return t;
}

/* e^(logits - mx) of the whole vocabulary into s->prob, block sums into s->block_mass;
 * returns the total, or -1 when out of memory. */
static double vocab_mass(cl_sampler *s, const float *logits, int64_t V, float mx)
{
    int64_t nb = (V + CL_VEXP_BLOCK - 1) / CL_VEXP_BLOCK;
    if (!scratch(s, V))
        return -1;
    if (s->block_cap < nb) {
        double *nm = realloc(s->block_mass, (size_t)nb * sizeof *nm);
        if (!nm)
            return -1;
        s->block_mass = nm;
        s->block_cap = nb;
    }
    return cl_vexp_shifted(logits, mx, s->prob, V, s->block_mass);
}

/* Unfiltered: the first id (in id order) at which the running mass exceeds target,
 * skipping whole blocks by their sums; the last token of nonzero mass if rounding
 * leaves target out of reach. */
static int32_t walk_ids(const cl_sampler *s, int64_t V, double target)
{
    const float *w = s->prob;
    double acc = 0;
    for (int64_t b = 0; b * CL_VEXP_BLOCK < V; b++) {
        if (acc + s->block_mass[b] > target) {
            int64_t i0 = b * CL_VEXP_BLOCK, i1 = i0 + CL_VEXP_BLOCK < V ? i0 + CL_VEXP_BLOCK : V;
            double in = acc;
            for (int64_t i = i0; i < i1; i++) {
                in += (double)w[i];
                if (in > target)
                    return (int32_t)i;
            }
        } /* (else, or the sums disagreed by rounding: on to the next block) */
        acc += s->block_mass[b];
    }
    int64_t last = V - 1;
    while (last > 0 && !(w[last] > 0))
        last--;
    return (int32_t)last;
}

int32_t cl_sampler_draw(cl_sampler *s, float *logits, int64_t V, double u)
{
    if (s->items_cap < V) {
        cl_sampler_item *ni = realloc(s->items, (size_t)V * sizeof *ni);
        if (!ni)
            return cl_argmax(logits, V);
        s->items = ni;
        s->items_cap = V;
    }
    const cl_sampler_opts *o = &s->o;
    cl_sampler_item *x = s->items; /* (unnormalised probability, id); the largest w is 1 */
    float mx = cl_vdiv_max(logits, o->temperature, V);
    if (o->top_k == 0 && o->top_p >= 1.0f && o->min_p <= 0.0f) {
        /* nothing filtered: any fixed order gives the same distribution; the ids' own
         * order needs no ordering work (one pass for the mass, one to the crossing) */
        double total = vocab_mass(s, logits, V, mx);
        return total >= 0 ? walk_ids(s, V, u * total) : cl_argmax(logits, V);
    }
    int64_t n = V;
    int nucleus_done = 0;
    if (o->top_k > 0 && o->top_k <= SMALL_K && o->top_k < V) {
        /* the k largest logits in one pass: a sorted list of k, most tokens rejected by
         * one comparison with its last (ids ascend, so a tie never enters); e^x for those
         * k alone, then ordered by probability (rounding can tie distinct logits) */
        n = 0;
        for (int64_t i = 0; i < V; i++) {
            float l = logits[i];
            if (l != l || (n == o->top_k && !(l > x[n - 1].w)))
                continue;
            int64_t j = n < o->top_k ? n++ : n - 1;
            while (j > 0 && l > x[j - 1].w) {
                x[j] = x[j - 1];
                j--;
            }
            x[j] = (cl_sampler_item){l, (int32_t)i};
        }
        for (int64_t j = 0; j < n; j++) {
            cl_sampler_item it = {expf(x[j].w - mx), x[j].id};
            int64_t k = j;
            while (k > 0 && before(it, x[k - 1])) {
                x[k] = x[k - 1];
                k--;
            }
            x[k] = it;
        }
    } else {
        double total = vocab_mass(s, logits, V, mx);
        if (total < 0)
            return cl_argmax(logits, V);
        const float *w = s->prob;
        int cut_k = o->top_k > 0 && o->top_k < V;
        if (!cut_k && o->top_p < 1.0f) {
            /* the nucleus of the whole vocabulary, without an item per token: only those
             * of mass >= eps can be in it (below) */
            float eps = nucleus_floor(o->top_p, total, V);
            n = 0;
            for (int64_t i = 0; i < V; i++)
                if (w[i] >= eps)
                    x[n++] = (cl_sampler_item){w[i], (int32_t)i};
            n = crossing(x, n, (double)o->top_p * total, 1) + 1;
            nucleus_done = 1;
        } else {
            for (int64_t i = 0; i < V; i++)
                x[i] = (cl_sampler_item){w[i], (int32_t)i};
            if (cut_k) {
                select_first(x, n, o->top_k);
                n = o->top_k;
            }
        }
    }
    if (o->top_p < 1.0f && !nucleus_done) { /* the smallest prefix reaching top_p */
        double total = mass(x, n);
        float eps = nucleus_floor(o->top_p, total, n);
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++)
            if (x[i].w >= eps)
                swap_items(x, i, m++);
        n = crossing(x, m, (double)o->top_p * total, 1) + 1;
    }
    if (n <= 0) /* nothing survived: every logit NaN */
        return cl_argmax(logits, V);
    if (o->min_p > 0.0f) { /* at least min_p times the most likely (whose w is 1) */
        int64_t keep = 0;
        for (int64_t i = 0; i < n; i++)
            if (x[i].w >= o->min_p)
                x[keep++] = x[i];
        n = keep > 0 ? keep : 1;
    }
    return x[crossing(x, n, u * mass(x, n), 0)].id;
}

int32_t cl_sampler_pick(cl_sampler *s, float *logits, int64_t V, const int32_t *hist, int64_t nh,
                        int64_t n_prompt)
{
    penalize(s, logits, V, hist, nh, n_prompt); /* out of memory: no penalty */
    uint64_t step = s->step++;
    if (s->o.greedy)
        return cl_argmax(logits, V);
    /* one uniform per step from (seed, step): repeatable */
    double u = (double)(cl_mix64(cl_mix64(s->o.seed) ^ (step * 0x9e3779b97f4a7c15ull)) >> 11) *
               (1.0 / 9007199254740992.0);
    return cl_sampler_draw(s, logits, V, u);
}

int cl_sampler_logprobs(cl_sampler *s, const float *raw, int64_t V, int32_t id, int k,
                        cl_token_logprobs *out)
{
    if (k < 0)
        k = 0;
    if (k > CL_MAX_TOP_LOGPROBS)
        k = CL_MAX_TOP_LOGPROBS;
    if (k > V)
        k = (int)V;
    double mx = raw[0];
    for (int64_t i = 1; i < V; i++)
        mx = raw[i] > mx ? raw[i] : mx;
    double sum = 0;
    for (int64_t i = 0; i < V; i++)
        sum += exp((double)raw[i] - mx);
    double lse = mx + log(sum);
    int n = 0; /* insertion into a sorted top-k list (k <= 20) */
    for (int64_t i = 0; i < V && k > 0; i++) {
        float v = raw[i];
        if (n == k && v <= raw[s->top_ids[n - 1]])
            continue;
        int j = n < k ? n++ : n - 1;
        while (j > 0 && raw[s->top_ids[j - 1]] < v) {
            s->top_ids[j] = s->top_ids[j - 1];
            j--;
        }
        s->top_ids[j] = (int32_t)i;
    }
    for (int i = 0; i < n; i++)
        s->top_lp[i] = (float)((double)raw[s->top_ids[i]] - lse);
    out->id = id;
    out->logprob = id >= 0 && id < V ? (float)((double)raw[id] - lse) : -INFINITY;
    out->n_top = n;
    out->top_ids = s->top_ids;
    out->top_logprobs = s->top_lp;
    return CL_OK;
}
