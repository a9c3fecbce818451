/* collage bench compose - composition latency vs the number of documents, and the
 * time to first token of a query on composed documents vs prefilling their
 * concatenation.
 *
 * For N documents of L tokens behind a shared prefix of P tokens and a query of Q
 * tokens it measures, on one model:
 *   compose_ms      cl_compose_states over N already-prefilled documents (what a
 *                   query on stored documents pays: KV concat + SSM combination)
 *   ttft_stored_ms  compose + query body + first token
 *   ttft_memory_ms  in-memory composition of the N chunks (prefill included) + query
 *   ttft_prefill_ms prefix + all documents + query prefilled as one sequence
 * and the ratios prefill / stored and prefill / memory. Models: --model DIR, or
 * --preset NAMES (comma-separated, written by mkmodel into a temporary directory;
 * default tiny-m2,tiny-gdn,tiny-gka,small-gka). */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "bench.h"
#include "common/log.h"
#include "common/rng.h"
#include "common/status.h"
#include "compose/compose.h"
#include "mkmodel/mkmodel.h"
#include "model_flags.h"

#define MAX_DOC_COUNTS 16
#define MAX_MODELS 16

typedef struct {
    char label[128];
    int64_t docs, doc_tokens;
    double compose_ms, ttft_stored_ms, ttft_memory_ms, ttft_prefill_ms;
} row;

typedef struct {
    int64_t doc_tokens, prefix_tokens, query_tokens, repeat;
    cl_compose_opts co;
} settings;

static void fill_ids(int32_t *ids, int64_t n, int64_t V, uint64_t stream)
{
    uint64_t key = cl_rng_key(stream, "bench-compose");
    for (int64_t i = 0; i < n; i++)
        ids[i] = 1 + (int32_t)(cl_rng_uniform(key, (uint64_t)i) * (float)(V - 2));
}

static double ms_since(double t0) { return (cl_now() - t0) * 1e3; }

/* One measurement for N documents. */
static int measure(cl_model *m, const settings *s, int64_t N, row *r)
{
    int64_t V = m->cfg->vocab_size, L = s->doc_tokens, P = s->prefix_tokens, Q = s->query_tokens;
    int64_t total = P + N * L + Q;
    int32_t *all = malloc((size_t)total * sizeof *all); /* prefix | docs | query */
    int32_t *doc_row = malloc((size_t)(P + L) * sizeof *doc_row);
    float *logits = malloc((size_t)V * sizeof *logits);
    cl_seq *docs = calloc((size_t)N, sizeof *docs);
    if (!all || !doc_row || !logits || !docs) {
        free(all);
        free(doc_row);
        free(logits);
        free(docs);
        return cl_err(CL_ERR_NOMEM, "out of memory");
    }
    fill_ids(all, total, V, (uint64_t)N);
    const int32_t *prefix = all, *ctx = all + P, *query = all + P + N * L;
    cl_compose_opts co = s->co;
    co.num_chunks = N;
    co.prefix_ids = P ? prefix : NULL;
    co.n_prefix = P;
    cl_cache_opts copts;
    cl_compose_cache_opts(m, &co, &copts);
    cl_cache *c = NULL;
    cl_seq out = {0}, mem = {0}, plain = {0};
    int n_docs = 0, rc = cl_cache_create(m, &copts, &c);
    if (rc == CL_OK && (rc = cl_seq_init(&out, c)) == CL_OK && (rc = cl_seq_init(&mem, c)) == CL_OK)
        rc = cl_seq_init(&plain, c);
    /* the stored documents: prefix + document, each prefilled alone (not timed) */
    for (; rc == CL_OK && n_docs < N; n_docs++) {
        if ((rc = cl_seq_init(&docs[n_docs], c)) != CL_OK)
            break;
        memcpy(doc_row, prefix, (size_t)P * sizeof *doc_row);
        memcpy(doc_row + P, ctx + n_docs * L, (size_t)L * sizeof *doc_row);
        rc = cl_seq_feed(m, &docs[n_docs], doc_row, P + L, 0, CL_LOGITS_NONE, NULL);
    }
    const cl_seq **dp = calloc((size_t)N, sizeof *dp);
    if (rc == CL_OK && !dp)
        rc = cl_err(CL_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; dp && i < N; i++)
        dp[i] = &docs[i];
    r->docs = N;
    r->doc_tokens = L;
    r->compose_ms = r->ttft_stored_ms = 1e300;
    for (int64_t k = 0; rc == CL_OK && k < s->repeat; k++) {
        double t0 = cl_now();
        rc = cl_compose_states(dp, (int)N, &co, &out, NULL);
        double tc = ms_since(t0);
        if (rc == CL_OK)
            rc = cl_compose_feed_query(m, &out, query, Q - 1, &co);
        if (rc == CL_OK)
            rc = cl_seq_feed(m, &out, query + Q - 1, 1, 0, CL_LOGITS_LAST, logits);
        double tt = ms_since(t0);
        r->compose_ms = tc < r->compose_ms ? tc : r->compose_ms;
        r->ttft_stored_ms = tt < r->ttft_stored_ms ? tt : r->ttft_stored_ms;
    }
    if (rc == CL_OK) {
        double t0 = cl_now();
        rc = cl_compose_context(m, ctx, N * L, &co, &mem, NULL);
        if (rc == CL_OK)
            rc = cl_compose_feed_query(m, &mem, query, Q - 1, &co);
        if (rc == CL_OK)
            rc = cl_seq_feed(m, &mem, query + Q - 1, 1, 0, CL_LOGITS_LAST, logits);
        r->ttft_memory_ms = ms_since(t0);
    }
    if (rc == CL_OK) {
        double t0 = cl_now();
        rc = cl_seq_feed(m, &plain, all, total, 0, CL_LOGITS_LAST, logits);
        r->ttft_prefill_ms = ms_since(t0);
    }
    free(dp);
    for (int i = 0; i < n_docs; i++)
        cl_seq_release(&docs[i]);
    if (c) {
        cl_seq_release(&out);
        cl_seq_release(&mem);
        cl_seq_release(&plain);
        cl_cache_free(c);
    }
    free(all);
    free(doc_row);
    free(logits);
    free(docs);
    return rc;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void print_row(const row *r, int json, int first)
{
    double rs = r->ttft_prefill_ms / r->ttft_stored_ms, rm = r->ttft_prefill_ms / r->ttft_memory_ms;
    if (json)
        printf("%s{\"model\":\"%s\",\"docs\":%lld,\"doc_tokens\":%lld,\"compose_ms\":%.3f,"
               "\"ttft_stored_ms\":%.3f,\"ttft_memory_ms\":%.3f,\"ttft_prefill_ms\":%.3f,"
               "\"prefill_over_stored\":%.2f,\"prefill_over_memory\":%.2f}",
               first ? "" : ",", r->label, (long long)r->docs, (long long)r->doc_tokens,
               r->compose_ms, r->ttft_stored_ms, r->ttft_memory_ms, r->ttft_prefill_ms, rs, rm);
    else
        printf("%-12s %5lld %8lld %11.2f %15.2f %15.2f %16.2f %15.1fx %15.2fx\n", r->label,
               (long long)r->docs, (long long)r->doc_tokens, r->compose_ms, r->ttft_stored_ms,
               r->ttft_memory_ms, r->ttft_prefill_ms, rs, rm);
    fflush(stdout);
}

static int parse_counts(const char *s, int64_t *v, int *n)
{
    *n = 0;
    while (*s) {
        char *end;
        long long x = strtoll(s, &end, 10);
        if (end == s || x < 1 || x > 4096 || *n == MAX_DOC_COUNTS)
            return cli_usage_error("bench compose",
                                   "--docs takes up to %d counts in [1, 4096], e.g. 2,4,8,16",
                                   MAX_DOC_COUNTS);
        v[(*n)++] = x;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return cli_usage_error("bench compose", "--docs: bad list '%s'", s);
    }
    return *n ? 0 : cli_usage_error("bench compose", "--docs is empty");
}

int bench_compose(int argc, char **argv)
{
    cli_model_flags mf;
    cli_model_flags_init(&mf);
    const char *presets = NULL, *docs_arg = "2,4,8,16", *type = "concat_kv_fuse_ssm";
    int64_t doc_tokens = 128, prefix_tokens = 16, query_tokens = 16, repeat = 3;
    int json = 0;
    cli_opt opts[] = {
        CLI_MODEL_OPTS(mf),
        {"preset", OPT_STR, &presets, "NAMES",
         "mkmodel presets, comma-separated (default tiny-m2,tiny-gdn,tiny-gka,small-gka)", 0, 0},
        {"docs", OPT_STR, &docs_arg, "LIST", "document counts (default 2,4,8,16)", 0, 0},
        {"doc-tokens", OPT_INT, &doc_tokens, "N", "tokens per document (default 128)", 0, 0},
        {"prefix-tokens", OPT_INT, &prefix_tokens, "N", "shared prefix tokens (default 16)", 0, 0},
        {"query-tokens", OPT_INT, &query_tokens, "N", "query tokens (default 16)", 0, 0},
        {"compose-type", OPT_STR, &type, "T", "compose type (default concat_kv_fuse_ssm)", 0, 0},
        {"repeat", OPT_INT, &repeat, "N", "best of N for the compose timings (default 3)", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout", 0, 0},
        {0},
    };
    cli_spec spec = {"bench compose", "[--model DIR | --preset NAMES] [--docs 2,4,8,16] [--json]",
                     "Composition latency vs the number of documents, and time to first token\n"
                     "of a query on composed documents vs prefilling their concatenation (CPU\n"
                     "unless --backend cuda).",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    int64_t counts[MAX_DOC_COUNTS];
    int n_counts;
    if ((rc = parse_counts(docs_arg, counts, &n_counts)) != 0)
        return rc;
    if (doc_tokens < 1 || query_tokens < 1 || prefix_tokens < 0 || repeat < 1)
        return cli_usage_error("bench compose", "--doc-tokens, --query-tokens and --repeat must "
                               "be >= 1, --prefix-tokens >= 0");
    settings s = {doc_tokens, prefix_tokens, query_tokens, repeat, {0}};
    cl_compose_opts_default(&s.co);
    if ((rc = cl_compose_type_parse(type, &s.co.kv, &s.co.ssm)) != CL_OK)
        return cli_fail(rc);
    if (s.co.kv == CL_COMPOSE_KV_FULL)
        return cli_usage_error("bench compose", "full-KV types compose no stored documents");
    s.co.max_context = mf.max_context;
    if (mf.model && presets)
        return cli_usage_error("bench compose", "give --model or --preset, not both");
    char list[512];
    snprintf(list, sizeof list, "%s",
             mf.model ? "" : presets ? presets : "tiny-m2,tiny-gdn,tiny-gka,small-gka");
    if (!json)
        printf("compose type %s, prefix %lld tokens, query %lld tokens, backend %s\n"
               "%-12s %5s %8s %11s %15s %15s %16s %16s %16s\n", type, (long long)prefix_tokens,
               (long long)query_tokens, mf.backend ? mf.backend : "auto", "model", "docs",
               "doc_tok", "compose_ms", "ttft_stored_ms", "ttft_memory_ms", "ttft_prefill_ms",
               "prefill/stored", "prefill/memory");
    row *rows = calloc(MAX_MODELS * MAX_DOC_COUNTS, sizeof *rows);
    if (!rows)
        return cli_fail(cl_err(CL_ERR_NOMEM, "out of memory"));
    int n_rows = 0, n_models = 0;
    char *save = NULL, *name = mf.model ? NULL : strtok_r(list, ",", &save);
    for (int done = 0; rc == 0 && !done; n_models++) {
        if (n_models == MAX_MODELS) {
            rc = cli_usage_error("bench compose", "at most %d presets", MAX_MODELS);
            break;
        }
        char dir[4096] = "";
        const char *label = mf.model ? mf.model : name;
        cli_model_flags f = mf;
        if (!mf.model) {
            const char *tmp = getenv("TMPDIR");
            snprintf(dir, sizeof dir, "%s/collage-bench-compose-XXXXXX", tmp ? tmp : "/tmp");
            if (!mkdtemp(dir)) {
                rc = cli_fail(cl_err(CL_ERR_IO, "%s: cannot create a temporary directory", dir));
                break;
            }
            cl_mkmodel_opts mo = {name, dir, 1, NULL, NULL, 0, 1};
            cl_log_info("bench compose: writing %s to %s", name, dir);
            int mrc = cl_mkmodel(&mo);
            if (mrc != CL_OK) {
                rc = cli_fail(mrc);
                nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
                break;
            }
            f.model = dir;
        }
        cl_model *m;
        if ((rc = cli_load_model("bench compose", &f, &m)) == 0) {
            for (int i = 0; i < n_counts && rc == 0; i++) {
                row *r = &rows[n_rows];
                snprintf(r->label, sizeof r->label, "%s", label);
                int mrc = measure(m, &s, counts[i], r);
                if (mrc != CL_OK) {
                    rc = cli_fail(mrc);
                } else {
                    if (!json)
                        print_row(r, 0, 0);
                    n_rows++;
                }
            }
            cl_model_free(m);
        }
        if (dir[0])
            nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        name = mf.model ? NULL : strtok_r(NULL, ",", &save);
        done = !name;
    }
    if (json && rc == 0) {
        printf("{\"bench\":\"compose\",\"compose_type\":\"%s\",\"prefix_tokens\":%lld,"
               "\"query_tokens\":%lld,\"rows\":[", type, (long long)prefix_tokens,
               (long long)query_tokens);
        for (int i = 0; i < n_rows; i++)
            print_row(&rows[i], 1, i == 0);
        printf("]}\n");
    }
    free(rows);
    return rc;
}
