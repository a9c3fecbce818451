/* collage bench tokenizer - load time of tokenizer.json and encode/decode
 * throughput on a few MB of mixed text, each against a baseline measured in the
 * same run: load vs a plain cJSON parse of the same file, encode vs the
 * pre-tokenizer regex pass alone (the floor any encoder built on it pays). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "bench.h"
#include "common/json.h"
#include "common/log.h"
#include "common/rng.h"
#include "common/status.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pretok.h"
#include "mkmodel/tiny_corpus.h"

/* Text that is not English prose, mixed into the input so the benchmark also
 * exercises NFC, multi-byte scripts, emoji, whitespace runs and added tokens. */
static const char *const other_text[] = {
    "東京の天気は晴れです。明日は雨が降るかもしれません。灯台の光が海を照らしている。\n",
    "Сегодня хорошая погода, и маяк виден издалека. Смотритель поднялся по лестнице.\n",
    "المنارة قديمة جدا، ويصعد الحارس كل مساء إلى أعلاها.\n",
    "바다는 조용하고 바람은 서쪽에서 불어온다. 등대지기는 매일 밤 기록을 남긴다.\n",
    "Der Leuchtturmwärter öffnete die Tür: „Wer ist da?“ — niemand antwortete. Äpfel, Öl, Übermaß.\n",
    "café naïve coöperate résumé e\xcc\x81l\xc3\xa8ve A\xcc\x8a \xe2\x84\xab\n",
    "😀 🚀 👨‍👩‍👧‍👦 🇯🇵 ❤️ ✨ 🎉 — emoji between words 🙂 and after them 🐙\n",
    "        indented line\n\t\ttabs\t\tand   spaces   \n\n\n\r\n  \n",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is the "
    "flash pattern?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nTwo short flashes "
    "and a long pause.<|im_end|>\n",
    "x = [0.25, 1e-3, 42, 3.14159265358979, -7, 0x7fffffff, 1_000_000]\n",
};

/* Deterministic mixed text of at least `bytes` bytes: mostly the English corpus
 * paragraphs, one non-English piece in four. */
static char *make_input(size_t bytes, size_t *len)
{
    size_t cap = bytes + 8192, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        return NULL;
    uint64_t key = cl_rng_key(1, "bench-tokenizer");
    for (uint64_t i = 0; n < bytes; i++) {
        uint64_t r = cl_mix64(key ^ i);
        const char *piece = r % 4 == 0 ? other_text[(r >> 8) % (sizeof other_text / sizeof *other_text)]
                                       : cl_tiny_corpus[(r >> 8) % cl_tiny_corpus_count];
        size_t k = strlen(piece);
        if (n + k > cap)
            break;
        memcpy(buf + n, piece, k);
        n += k;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static int count_chunk(void *ctx, const char *chunk, size_t len)
{
    (void)chunk;
    (void)len;
    ++*(size_t *)ctx;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *default_path(char *buf, size_t n)
{
    const char *env = getenv("COLLAGE_SHARED");
    snprintf(buf, n, "%s/assets/qwen3-tokenizer/tokenizer.json", env ? env : "../shared");
    return buf;
}

typedef struct {
    double load_ms, load_median_ms, cjson_ms;
    size_t file_bytes, input_bytes, tokens, chunks;
    double encode_cold_s, encode_s, regex_s, decode_s;
} results;

static int measure(const char *path, int repeat, size_t input_bytes, results *r)
{
    memset(r, 0, sizeof *r);
    double *loads = calloc((size_t)repeat, sizeof *loads);
    if (!loads)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    cl_tokenizer *t = NULL;
    int rc = CL_OK;
    for (int i = 0; i < repeat && rc == CL_OK; i++) {
        cl_tokenizer_free(t);
        t = NULL;
        double t0 = cl_now();
        rc = cl_tokenizer_load(path, &t);
        loads[i] = (cl_now() - t0) * 1e3;
    }
    if (rc != CL_OK) {
        free(loads);
        return rc;
    }
    qsort(loads, (size_t)repeat, sizeof *loads, cmp_double);
    r->load_ms = loads[0];
    r->load_median_ms = loads[repeat / 2];
    free(loads);
    cl_log_info("bench tokenizer: loaded %s in %.1f ms", path, r->load_ms);

    /* baseline: what a whole-tree JSON parse of the same file costs */
    r->cjson_ms = 1e30;
    for (int i = 0; i < repeat && rc == CL_OK; i++) {
        cJSON *j = NULL;
        double t0 = cl_now();
        rc = cl_json_load(path, &j);
        double ms = (cl_now() - t0) * 1e3;
        cJSON_Delete(j);
        if (ms < r->cjson_ms)
            r->cjson_ms = ms;
    }
    size_t len = 0;
    char *text = rc == CL_OK ? make_input(input_bytes, &len) : NULL;
    if (rc == CL_OK && !text)
        rc = cl_err(CL_ERR_NOMEM, "out of memory");
    r->input_bytes = len;
    cl_pretok *pt = NULL;
    if (rc == CL_OK)
        rc = cl_pretok_create(cl_pretok_qwen2_pattern, "bench", &pt);
    cl_ids ids = {0};
    char *dec = NULL;
    r->encode_s = r->regex_s = r->decode_s = 1e30;
    for (int i = 0; i < repeat && rc == CL_OK; i++) {
        cl_log_info("bench tokenizer: pass %d of %d over %.1f MB", i + 1, repeat, len / 1e6);
        ids.n = 0;
        double t0 = cl_now();
        rc = cl_tokenizer_encode(t, text, len, 1, &ids);
        double s = cl_now() - t0;
        if (i == 0)
            r->encode_cold_s = s; /* the word cache starts empty */
        if (s < r->encode_s)
            r->encode_s = s;
        r->tokens = ids.n;
        r->chunks = 0;
        t0 = cl_now();
        if (rc == CL_OK)
            rc = cl_pretok_split(pt, text, len, count_chunk, &r->chunks);
        s = cl_now() - t0;
        if (s < r->regex_s)
            r->regex_s = s;
        size_t dlen = 0;
        free(dec);
        dec = NULL;
        t0 = cl_now();
        if (rc == CL_OK)
            rc = cl_tokenizer_decode(t, ids.v, ids.n, &dec, &dlen);
        s = cl_now() - t0;
        if (s < r->decode_s)
            r->decode_s = s;
    }
    struct stat st;
    if (stat(path, &st) == 0)
        r->file_bytes = (size_t)st.st_size;
    free(dec);
    cl_ids_free(&ids);
    cl_pretok_free(pt);
    free(text);
    cl_tokenizer_free(t);
    return rc;
}

int bench_tokenizer(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    int64_t repeat = 3;
    double mb = 4;
    cli_opt opts[] = {
        {"tokenizer", OPT_STR, &path, "FILE",
         "tokenizer.json (default: $COLLAGE_SHARED or ../shared, "
         "assets/qwen3-tokenizer/tokenizer.json)", 0, 0},
        {"mb", OPT_FLOAT, &mb, "N", "size of the mixed input text in MB (default 4)", 0, 0},
        {"repeat", OPT_INT, &repeat, "N", "runs of each measurement; the best is kept (default 3)", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout", 0, 0},
        {0},
    };
    cli_spec spec = {"bench tokenizer", "[--tokenizer FILE] [--mb N] [--repeat N] [--json]",
                     "Measures tokenizer.json load time (against a plain cJSON parse of the same\n"
                     "file) and encode/decode throughput on mixed text (English prose, code,\n"
                     "numbers, other scripts, emoji, whitespace runs, chat markup), against the\n"
                     "pre-tokenizer regex pass alone.",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (repeat < 1 || repeat > 100)
        return cli_usage_error("bench tokenizer", "--repeat must be in 1..100");
    if (!(mb > 0 && mb <= 1024))
        return cli_usage_error("bench tokenizer", "--mb must be in (0, 1024]");
    char buf[4200];
    if (!path)
        path = default_path(buf, sizeof buf);
    results r;
    rc = measure(path, (int)repeat, (size_t)(mb * 1e6), &r);
    if (rc != CL_OK)
        return cli_fail(rc);
    double mbytes = r.input_bytes / 1e6;
    double enc = mbytes / r.encode_s, cold = mbytes / r.encode_cold_s;
    double regex = mbytes / r.regex_s, dec = mbytes / r.decode_s;
    if (json) {
        printf("{\"tokenizer\":");
        cl_json_fputs(stdout, path);
        printf(",\"file_bytes\":%zu,\"load_ms\":%.2f,\"load_median_ms\":%.2f,"
               "\"cjson_parse_ms\":%.2f,\"load_speedup_vs_cjson\":%.2f,"
               "\"input_bytes\":%zu,\"tokens\":%zu,\"bytes_per_token\":%.3f,"
               "\"encode_mb_s\":%.2f,\"encode_cold_mb_s\":%.2f,\"encode_tokens_s\":%.0f,"
               "\"regex_mb_s\":%.2f,\"encode_vs_regex\":%.3f,\"decode_mb_s\":%.1f,"
               "\"repeat\":%d}\n",
               r.file_bytes, r.load_ms, r.load_median_ms, r.cjson_ms, r.cjson_ms / r.load_ms,
               r.input_bytes, r.tokens, (double)r.input_bytes / (double)r.tokens, enc, cold,
               (double)r.tokens / r.encode_s, regex, enc / regex, dec, (int)repeat);
        return 0;
    }
    printf("tokenizer        %s (%.1f MB)\n", path, r.file_bytes / 1e6);
    printf("load             %8.1f ms   (median %.1f ms of %d)\n", r.load_ms, r.load_median_ms,
           (int)repeat);
    printf("  baseline       %8.1f ms   cJSON parse alone: load is %.2fx faster\n", r.cjson_ms,
           r.cjson_ms / r.load_ms);
    printf("input            %.2f MB mixed text, %zu tokens (%.2f bytes/token)\n", mbytes,
           r.tokens, (double)r.input_bytes / (double)r.tokens);
    printf("encode           %8.2f MB/s (%.0f tokens/s; first pass, empty cache: %.2f MB/s)\n",
           enc, (double)r.tokens / r.encode_s, cold);
    printf("  baseline       %8.2f MB/s regex pre-tokenizer alone (%zu chunks): encode is "
           "%.2fx its speed\n",
           regex, r.chunks, enc / regex);
    printf("decode           %8.1f MB/s\n", dec);
    return 0;
}
