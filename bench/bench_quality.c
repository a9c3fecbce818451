/* collage bench quality - retrieval accuracy of composed document states next to plain
 * prefill of the same context, on question sets of the synthetic retrieval task
 * (models/README.md; written by `python -m collage_train.questions ... --ids`).
 *
 * For every question of every set it answers the prompt (greedy, 5 new tokens, the
 * decoded text stripped of spaces must equal the 5-digit answer):
 *   plain        the documents concatenated, then the prompt, one prefill
 *   <type>       every document prefilled on its own from the zero state (independent
 *                positions, exactly what `collage ingest` stores), composed with that
 *                compose type (cl_compose_states), then the prompt
 *   seq:<type>   --sequential: the in-memory composition of the context in as many
 *                chunks as documents with RoPE positions continuing across chunks
 *                (cl_compose_run; the concat types)
 * and reports accuracy per set and method, with accuracy by needle depth (fifths of the
 * context). Uses the public API only (src/collage.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "bench.h"
#include "cJSON.h"
#include "cli_ctx.h"
#include "collage.h"
#include "model_flags.h"

#define MAX_METHODS 32
#define DEPTH_BINS 5
#define ANSWER_TOKENS 5

typedef struct {
    int32_t **doc;       /* [n_docs][doc_n[i]] */
    int64_t *doc_n;
    int n_docs;
    int32_t *prompt;
    int64_t n_prompt;
    char answer[16];
    double needle_depth; /* token offset of the fact / context tokens, in [0, 1) */
} question;

typedef struct {
    const char *path;
    question *q;
    int n;
    int64_t context_tokens; /* mean over the questions */
    int n_docs;             /* of the first question (sets are written with one count) */
} qset;

typedef struct {
    char name[48];
    int sequential;
    cl_compose_kv kv;
    cl_compose_ssm ssm;
    int plain;
} method;

typedef struct {
    int ok, total;
    int bin_ok[DEPTH_BINS], bin_total[DEPTH_BINS];
} tally;

static void question_free(question *q)
{
    for (int i = 0; i < q->n_docs; i++)
        free(q->doc[i]);
    free(q->doc);
    free(q->doc_n);
    free(q->prompt);
}

static void qset_free(qset *s)
{
    for (int i = 0; i < s->n; i++)
        question_free(&s->q[i]);
    free(s->q);
}

/* ids: a JSON array of integers in [0, V) into a new array. */
static int read_ids(const cJSON *a, int64_t V, const char *path, const char *what, int qi,
                    int32_t **out, int64_t *n)
{
    if (!cJSON_IsArray(a))
        return cl_err(CL_ERR_FORMAT, "%s: questions[%d].%s: expected an array of token ids "
                      "(write the set with --ids)", path, qi, what);
    int64_t len = cJSON_GetArraySize(a);
    int32_t *v = malloc((size_t)(len > 0 ? len : 1) * sizeof *v);
    if (!v)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    int64_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (!cJSON_IsNumber(e) || e->valuedouble != (double)(int64_t)e->valuedouble ||
            e->valuedouble < 0 || e->valuedouble >= (double)V) {
            free(v);
            return cl_err(CL_ERR_FORMAT, "%s: questions[%d].%s[%lld]: not a token id of this "
                          "model (0..%lld)", path, qi, what, (long long)i, (long long)V - 1);
        }
        v[i++] = (int32_t)e->valuedouble;
    }
    *out = v;
    *n = len;
    return CL_OK;
}

static int parse_question(const cJSON *o, int64_t V, const char *path, int qi, question *q)
{
    const cJSON *docs = cJSON_GetObjectItemCaseSensitive(o, "doc_ids");
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(o, "prompt_ids");
    const cJSON *ans = cJSON_GetObjectItemCaseSensitive(o, "answer");
    const cJSON *depth = cJSON_GetObjectItemCaseSensitive(o, "needle_depth");
    if (!cJSON_IsArray(docs) || cJSON_GetArraySize(docs) < 1)
        return cl_err(CL_ERR_FORMAT, "%s: questions[%d].doc_ids: expected a non-empty array "
                      "(write the set with --ids)", path, qi);
    if (!cJSON_IsString(ans) || strlen(ans->valuestring) == 0 ||
        strlen(ans->valuestring) >= sizeof q->answer)
        return cl_err(CL_ERR_FORMAT, "%s: questions[%d].answer: expected a short string", path,
                      qi);
    snprintf(q->answer, sizeof q->answer, "%s", ans->valuestring);
    q->needle_depth = cJSON_IsNumber(depth) ? depth->valuedouble : 0.0;
    if (!(q->needle_depth >= 0 && q->needle_depth <= 1))
        return cl_err(CL_ERR_FORMAT, "%s: questions[%d].needle_depth: expected a number in "
                      "[0, 1]", path, qi);
    q->n_docs = cJSON_GetArraySize(docs);
    q->doc = calloc((size_t)q->n_docs, sizeof *q->doc);
    q->doc_n = calloc((size_t)q->n_docs, sizeof *q->doc_n);
    if (!q->doc || !q->doc_n)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, docs) {
        char what[32];
        snprintf(what, sizeof what, "doc_ids[%d]", i);
        CL_TRY(read_ids(d, V, path, what, qi, &q->doc[i], &q->doc_n[i]));
        if (q->doc_n[i] < 1)
            return cl_err(CL_ERR_FORMAT, "%s: questions[%d].%s: empty document", path, qi, what);
        i++;
    }
    CL_TRY(read_ids(prompt, V, path, "prompt_ids", qi, &q->prompt, &q->n_prompt));
    if (q->n_prompt < 1)
        return cl_err(CL_ERR_FORMAT, "%s: questions[%d].prompt_ids: empty prompt", path, qi);
    return CL_OK;
}

static int load_set(const char *path, int64_t V, int64_t limit, qset *s)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    char *text = NULL;
    size_t len = 0;
    CL_TRY(cli_read_file(path, &text, &len));
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    int rc = CL_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *qs = cJSON_GetObjectItemCaseSensitive(root, "questions");
    if (!root)
        rc = cl_err(CL_ERR_FORMAT, "%s: not valid JSON", path);
    else if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "collage-retrieval-v1"))
        rc = cl_err(CL_ERR_FORMAT, "%s: format: expected \"collage-retrieval-v1\"", path);
    else if (!cJSON_IsArray(qs) || cJSON_GetArraySize(qs) < 1)
        rc = cl_err(CL_ERR_FORMAT, "%s: questions: expected a non-empty array", path);
    if (rc == CL_OK) {
        int n = cJSON_GetArraySize(qs);
        if (limit > 0 && n > limit)
            n = (int)limit;
        s->q = calloc((size_t)n, sizeof *s->q);
        if (!s->q)
            rc = cl_err(CL_ERR_NOMEM, "out of memory");
        int64_t ctx_sum = 0;
        const cJSON *o;
        cJSON_ArrayForEach(o, qs) {
            if (rc != CL_OK || s->n == n)
                break;
            rc = parse_question(o, V, path, s->n, &s->q[s->n]);
            s->n++;
            for (int d = 0; rc == CL_OK && d < s->q[s->n - 1].n_docs; d++)
                ctx_sum += s->q[s->n - 1].doc_n[d];
        }
        if (rc == CL_OK) {
            s->context_tokens = ctx_sum / s->n;
            s->n_docs = s->q[0].n_docs;
        }
    }
    cJSON_Delete(root);
    if (rc != CL_OK)
        qset_free(s);
    return rc;
}

/* The methods named by --types ("all": every concat and sw type) and --sequential. */
static int build_methods(const char *types, int sequential, int plain, method *m, int *n)
{
    *n = 0;
    if (plain) {
        snprintf(m[*n].name, sizeof m[*n].name, "plain");
        m[(*n)++].plain = 1;
    }
    char list[1024];
    if (!strcmp(types, "all"))
        snprintf(list, sizeof list, "%s", cl_compose_type_names());
    else
        snprintf(list, sizeof list, "%s", types);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        cl_compose_kv kv;
        cl_compose_ssm ssm;
        CL_TRY(cl_compose_type_parse(t, &kv, &ssm));
        if (kv == CL_COMPOSE_KV_FULL) {
            if (strcmp(types, "all"))
                return cl_err(CL_ERR_ARG, "--types: %s needs the whole context, not separately "
                              "prefilled documents", t);
            continue;
        }
        for (int s = 0; s <= (sequential && kv == CL_COMPOSE_KV_CONCAT); s++) {
            if (*n == MAX_METHODS)
                return cl_err(CL_ERR_ARG, "--types: at most %d methods", MAX_METHODS);
            method *x = &m[(*n)++];
            memset(x, 0, sizeof *x);
            snprintf(x->name, sizeof x->name, "%s%s", s ? "seq:" : "", t);
            x->sequential = s;
            x->kv = kv;
            x->ssm = ssm;
        }
    }
    return *n ? CL_OK : cl_err(CL_ERR_ARG, "--types: no method to measure");
}

/* 1 if the generated ids decode to the answer (spaces around it ignored). */
static int answered(const cl_tokenizer *tok, const cl_ids *got, const char *answer, int *ok)
{
    char *text = NULL;
    size_t len = 0;
    CL_TRY(cl_tokenizer_decode(tok, got->v, got->n, &text, &len));
    size_t a = 0, b = len;
    while (a < b && isspace((unsigned char)text[a]))
        a++;
    while (b > a && isspace((unsigned char)text[b - 1]))
        b--;
    *ok = b - a == strlen(answer) && !memcmp(text + a, answer, b - a);
    cl_free(text);
    return CL_OK;
}

typedef struct {
    cl_model *m;
    const cl_tokenizer *tok;
    cl_cache *cache;
    cl_seq **docs; /* [max docs] */
    int n_doc_seqs;
    cl_seq *out;
    cl_gen_opts go;
} runner;

static int generate_from(runner *r, cl_seq *s, const int32_t *prompt, int64_t n,
                         const char *answer, int *ok)
{
    cl_ids got = {0};
    int rc = cl_generate(r->m, s, prompt, n, &r->go, &got, NULL);
    if (rc == CL_OK)
        rc = answered(r->tok, &got, answer, ok);
    cl_ids_free(&got);
    return rc;
}

/* Answers q with every method; ok[j] per method. */
static int answer_question(runner *r, const question *q, const method *ms, int n_methods,
                           int *ok)
{
    int64_t ctx_n = 0;
    for (int d = 0; d < q->n_docs; d++)
        ctx_n += q->doc_n[d];
    int32_t *all = malloc((size_t)(ctx_n + q->n_prompt) * sizeof *all);
    if (!all)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    int64_t at = 0;
    for (int d = 0; d < q->n_docs; d++, at += q->doc_n[d - 1])
        memcpy(all + at, q->doc[d], (size_t)q->doc_n[d] * sizeof *all);
    memcpy(all + ctx_n, q->prompt, (size_t)q->n_prompt * sizeof *all);
    int rc = CL_OK, docs_ready = 0;
    for (int j = 0; rc == CL_OK && j < n_methods; j++) {
        const method *x = &ms[j];
        if (x->plain) {
            rc = cl_seq_reset(r->out);
            if (rc == CL_OK)
                rc = generate_from(r, r->out, all, ctx_n + q->n_prompt, q->answer, &ok[j]);
            continue;
        }
        cl_compose_opts co;
        cl_compose_opts_default(&co);
        co.kv = x->kv;
        co.ssm = x->ssm;
        if (x->sequential) {
            co.num_chunks = q->n_docs;
            co.sequential_positions = 1;
            cl_ids got = {0};
            rc = cl_compose_run(r->m, all, ctx_n + q->n_prompt, q->n_prompt, &co, &r->go, &got,
                                NULL, NULL);
            if (rc == CL_OK)
                rc = answered(r->tok, &got, q->answer, &ok[j]);
            cl_ids_free(&got);
            continue;
        }
        if (!docs_ready) { /* each document from the zero state, as ingest stores them */
            for (int d = 0; rc == CL_OK && d < q->n_docs; d++) {
                rc = cl_seq_reset(r->docs[d]);
                if (rc == CL_OK)
                    rc = cl_seq_feed(r->m, r->docs[d], q->doc[d], q->doc_n[d], 0,
                                     CL_LOGITS_NONE, NULL);
            }
            docs_ready = 1;
        }
        if (rc == CL_OK)
            rc = cl_seq_reset(r->out);
        if (rc == CL_OK)
            rc = cl_compose_states((const cl_seq *const *)r->docs, q->n_docs, &co, r->out, NULL);
        if (rc == CL_OK)
            rc = generate_from(r, r->out, q->prompt, q->n_prompt, q->answer, &ok[j]);
    }
    free(all);
    return rc;
}

static void tally_add(tally *t, const question *q, int ok)
{
    int bin = (int)(q->needle_depth * DEPTH_BINS);
    if (bin >= DEPTH_BINS)
        bin = DEPTH_BINS - 1;
    t->total++;
    t->ok += ok;
    t->bin_total[bin]++;
    t->bin_ok[bin] += ok;
}

static double acc(int ok, int total) { return total ? (double)ok / total : 0.0; }

static int run_sets(runner *r, qset *sets, int n_sets, const method *ms, int n_methods,
                    tally *t /* [n_sets][n_methods] */)
{
    uint64_t total = 0, done = 0;
    for (int s = 0; s < n_sets; s++)
        total += (uint64_t)sets[s].n;
    int ok[MAX_METHODS];
    for (int s = 0; s < n_sets; s++) {
        for (int i = 0; i < sets[s].n; i++) {
            const question *q = &sets[s].q[i];
            if (q->n_docs > r->n_doc_seqs) {
                cl_seq **more = realloc(r->docs, (size_t)q->n_docs * sizeof *more);
                if (!more)
                    return cl_err(CL_ERR_NOMEM, "out of memory");
                r->docs = more;
                for (; r->n_doc_seqs < q->n_docs; r->n_doc_seqs++)
                    CL_TRY(cl_seq_create(r->cache, &r->docs[r->n_doc_seqs]));
            }
            int rc = answer_question(r, q, ms, n_methods, ok);
            if (rc != CL_OK) {
                char msg[512];
                snprintf(msg, sizeof msg, "%s", cl_errmsg());
                return cl_err(rc, "%s: question %d: %s", sets[s].path, i, msg);
            }
            for (int j = 0; j < n_methods; j++)
                tally_add(&t[s * n_methods + j], q, ok[j]);
            cl_progress("questions", ++done, total);
        }
    }
    cl_progress_end("questions");
    return CL_OK;
}

static void print_table(const cl_model_info *mi, const qset *sets, int n_sets,
                        const method *ms, int n_methods, const tally *t)
{
    printf("retrieval accuracy, %s (%s), greedy %d tokens\n", mi->dir, mi->backend,
           ANSWER_TOKENS);
    printf("%-28s", "method \\ context");
    for (int s = 0; s < n_sets; s++) {
        char h[32];
        snprintf(h, sizeof h, "%lldx%d", (long long)sets[s].context_tokens, sets[s].n_docs);
        printf(" %11s", h);
    }
    printf("\n");
    for (int j = 0; j < n_methods; j++) {
        printf("%-28s", ms[j].name);
        for (int s = 0; s < n_sets; s++) {
            const tally *x = &t[s * n_methods + j];
            printf("   %5.1f%%   ", 100.0 * acc(x->ok, x->total));
        }
        printf("\n");
    }
    printf("(columns: mean context tokens x documents; %d questions in the first set)\n",
           sets[0].n);
}

static cJSON *results_json(const cl_model_info *mi, const qset *sets, int n_sets,
                           const method *ms, int n_methods, const tally *t, double secs)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", mi->dir);
    cJSON_AddStringToObject(o, "backend", mi->backend);
    cJSON_AddNumberToObject(o, "max_position_embeddings", (double)mi->max_position_embeddings);
    cJSON_AddNumberToObject(o, "answer_tokens", ANSWER_TOKENS);
    cJSON_AddNumberToObject(o, "seconds", secs);
    cJSON *arr = cJSON_AddArrayToObject(o, "sets");
    for (int s = 0; s < n_sets; s++) {
        cJSON *so = cJSON_CreateObject();
        cJSON_AddStringToObject(so, "questions_file", sets[s].path);
        cJSON_AddNumberToObject(so, "questions", sets[s].n);
        cJSON_AddNumberToObject(so, "context_tokens", (double)sets[s].context_tokens);
        cJSON_AddNumberToObject(so, "docs", sets[s].n_docs);
        cJSON *acc_o = cJSON_AddObjectToObject(so, "accuracy");
        cJSON *depth_o = cJSON_AddObjectToObject(so, "accuracy_by_depth");
        for (int j = 0; j < n_methods; j++) {
            const tally *x = &t[s * n_methods + j];
            cJSON_AddNumberToObject(acc_o, ms[j].name, acc(x->ok, x->total));
            cJSON *bins = cJSON_AddArrayToObject(depth_o, ms[j].name);
            for (int b = 0; b < DEPTH_BINS; b++)
                cJSON_AddItemToArray(bins, x->bin_total[b]
                                               ? cJSON_CreateNumber(acc(x->bin_ok[b],
                                                                        x->bin_total[b]))
                                               : cJSON_CreateNull());
        }
        cJSON_AddItemToArray(arr, so);
    }
    return o;
}

int bench_quality(int argc, char **argv)
{
    cli_model_flags mf;
    cli_model_flags_init(&mf);
    cli_multi questions = {0};
    const char *types = "concat_kv_soup_ssm,concat_kv_fuse_ssm,concat_kv_only,"
                        "concat_kv_caso_ssm";
    const char *json_out = NULL;
    int sequential = 0, no_plain = 0, json = 0;
    int64_t limit = 0;
    const cli_opt opts[] = {
        CLI_MODEL_OPTS(mf),
        {"questions", OPT_MULTI, &questions, "FILE",
         "a question set (collage-retrieval-v1 with ids; repeat for more)", 0, 0},
        {"types", OPT_STR, &types, "LIST",
         "compose types, comma-separated, or all (default: concat_kv_{soup,fuse,caso}_ssm, "
         "concat_kv_only)", 0, 0},
        {"sequential", OPT_FLAG, &sequential, NULL,
         "also each concat type with sequential positions (in-memory chunks)", 0, 0},
        {"no-plain", OPT_FLAG, &no_plain, NULL, "leave out plain prefill", 0, 0},
        {"limit", OPT_INT, &limit, "N", "questions per set (0: all)", 0, 1e9},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout", 0, 0},
        {"json-out", OPT_STR, &json_out, "F", "also write the JSON to F", 0, 0},
        {0},
    };
    const cli_spec spec = {
        "bench quality", "--model DIR --questions FILE [--questions FILE ...] [options]",
        "Retrieval accuracy of composed document states next to plain prefill of the same "
        "context, on question sets of the synthetic retrieval task (models/README.md; "
        "python -m collage_train.questions ... --ids writes them).",
        opts, 0, 0};
    int r = cli_parse(&spec, argc, argv, NULL, NULL);
    if (r)
        return r < 0 ? 0 : r;
    if (questions.n == 0) {
        free(questions.v);
        return cli_usage_error("bench quality", "--questions is required");
    }
    method ms[MAX_METHODS];
    int n_methods = 0;
    int rc = build_methods(types, sequential, !no_plain, ms, &n_methods);
    if (rc != CL_OK) {
        free(questions.v);
        return cli_fail(rc);
    }
    cl_model *m = NULL;
    if ((r = cli_load_model("bench quality", &mf, &m))) {
        free(questions.v);
        return r;
    }
    cl_model_info mi;
    cl_model_info_get(m, &mi);
    qset *sets = calloc((size_t)questions.n, sizeof *sets);
    tally *t = calloc((size_t)questions.n * MAX_METHODS, sizeof *t);
    cl_tokenizer *tok = NULL;
    runner rn = {.m = m};
    rc = sets && t ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
    int n_sets = 0;
    for (; rc == CL_OK && n_sets < questions.n; n_sets++)
        rc = load_set(questions.v[n_sets], mi.vocab_size, limit, &sets[n_sets]);
    if (rc != CL_OK)
        n_sets--; /* the failed set freed itself */
    if (rc == CL_OK)
        rc = cl_tokenizer_load_dir(mf.model, &tok);
    rn.tok = tok;
    cl_gen_opts_default(&rn.go);
    rn.go.max_new_tokens = ANSWER_TOKENS;
    rn.go.sampling.greedy = 1;
    rn.go.ignore_eos = 1;
    rn.go.prefill_chunk = mf.prefill_chunk;
    rn.go.max_context = mf.max_context;
    if (rc == CL_OK) {
        cl_cache_opts co;
        cl_cache_opts_for_model(m, &co);
        for (int j = 0; j < n_methods; j++)
            co.track_transition |= !ms[j].plain && cl_compose_needs_transition(m, ms[j].ssm);
        rc = cl_cache_create(m, &co, &rn.cache);
    }
    if (rc == CL_OK)
        rc = cl_seq_create(rn.cache, &rn.out);
    double t0 = cli_now();
    if (rc == CL_OK)
        rc = run_sets(&rn, sets, n_sets, ms, n_methods, t);
    double secs = cli_now() - t0;
    int exit_code = 0;
    if (rc == CL_OK) {
        cJSON *o = results_json(&mi, sets, n_sets, ms, n_methods, t, secs);
        if (json_out) {
            char *s = cJSON_Print(o);
            FILE *f = fopen(json_out, "w");
            if (!f || fputs(s, f) < 0 || fputc('\n', f) < 0)
                rc = cl_err(CL_ERR_IO, "%s: cannot write", json_out);
            if (f && fclose(f) && rc == CL_OK)
                rc = cl_err(CL_ERR_IO, "%s: cannot write", json_out);
            free(s);
        }
        if (rc == CL_OK && json)
            exit_code = cli_json_emit(o);
        else
            cJSON_Delete(o);
        if (rc == CL_OK && !json) {
            print_table(&mi, sets, n_sets, ms, n_methods, t);
            printf("%.1f s\n", secs);
        }
    }
    if (rc != CL_OK)
        exit_code = cli_fail(rc);
    for (int i = 0; i < rn.n_doc_seqs; i++)
        cl_seq_free(rn.docs[i]);
    free(rn.docs);
    cl_seq_free(rn.out);
    cl_cache_free(rn.cache);
    cl_tokenizer_free(tok);
    for (int s = 0; s < n_sets; s++)
        qset_free(&sets[s]);
    free(sets);
    free(t);
    free(questions.v);
    cl_model_free(m);
    return exit_code;
}
