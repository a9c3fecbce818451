/* test_bpe - the tokenizer on small hand-made tokenizer.json files: BPE merge order,
 * both merge formats, escapes, errors for malformed or unsupported files (one line
 * naming the file and key), invalid UTF-8 and unknown ids, the Oniguruma meaning of
 * \s, long inputs, and concurrent encodes. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/fileio.h"
#include "common/status.h"
#include "testutil.h"
#include "tokenizer/bpe.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/pretok.h"

/* Parts of a small tokenizer.json; NULL fields take the defaults below. */
typedef struct {
    const char *added;      /* added_tokens array */
    const char *normalizer; /* JSON value */
    const char *pre;        /* pre_tokenizer */
    const char *decoder;
    const char *model_type;
    const char *extra_vocab; /* more "token": id pairs, after the 256 byte tokens */
    const char *merges;      /* merges array */
    int skip_byte;           /* leave out the token of this byte (0: none) */
    const char *model_extra; /* more model keys */
    int merges_first;        /* write "merges" before "vocab" */
} spec;

#define QWEN_SPLIT                                                                             \
    "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "         \
    "{\"Regex\": \"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|"       \
    "\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|"     \
    "\\\\s+\"}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", "   \
    "\"add_prefix_space\": false, \"trim_offsets\": false, \"use_regex\": false}]}"

/* Writes the tokenizer to a file in a fresh directory; returns its path. */
static const char *write_tok(const char *name, const spec *s)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
#define OUT(...) (n += (size_t)snprintf(buf + n, cap - n, __VA_ARGS__), assert_true(n < cap))
    OUT("{\"version\": \"1.0\", \"added_tokens\": %s, \"normalizer\": %s, \"pre_tokenizer\": %s, "
        "\"post_processor\": null, \"decoder\": %s, \"model\": {\"type\": \"%s\", "
        "\"dropout\": null, \"unk_token\": null%s%s, %s%s%s\"vocab\": {",
        s->added ? s->added : "[]", s->normalizer ? s->normalizer : "{\"type\": \"NFC\"}",
        s->pre ? s->pre : QWEN_SPLIT,
        s->decoder ? s->decoder : "{\"type\": \"ByteLevel\"}",
        s->model_type ? s->model_type : "BPE", s->model_extra ? ", " : "",
        s->model_extra ? s->model_extra : "", s->merges_first ? "\"merges\": " : "",
        s->merges_first ? (s->merges ? s->merges : "[]") : "", s->merges_first ? ", " : "");
    for (int b = 0; b < 256; b++) {
        if (s->skip_byte && b == s->skip_byte)
            continue;
        char m[3];
        uint8_t byte = (uint8_t)b;
        size_t k = cl_bytelevel_encode(&byte, 1, m);
        m[k] = 0;
        if (b == '"' || b == '\\')
            OUT("%s\"\\%s\": %d", b ? ", " : "", m, b);
        else
            OUT("%s\"%s\": %d", b ? ", " : "", m, b);
    }
    OUT("%s%s}%s%s}}", s->extra_vocab ? ", " : "", s->extra_vocab ? s->extra_vocab : "",
        s->merges_first ? "" : ", \"merges\": ", s->merges_first ? "" : (s->merges ? s->merges : "[]"));
#undef OUT
    char *path = malloc(4200);
    snprintf(path, 4200, "%s/tokenizer.json", tu_tmpdir(name));
    assert_int_equal(cl_write_file_atomic(path, buf, n), 0);
    free(buf);
    static char slot[8][4200];
    static int si;
    char *r = slot[si++ % 8];
    strcpy(r, path);
    free(path);
    return r;
}

/* Token ids of the byte tokens are the byte values in these files. */
static const spec merges_spec = {
    .extra_vocab = "\"he\": 256, \"Ġt\": 257, \"Ġthe\": 258, \"ll\": 259, \"llo\": 260, "
                   "\"hello\": 261, \"Ġ\\u0120\": 262, \"\\u00c3\\u00a9\": 263",
    .merges = "[[\"h\", \"e\"], [\"Ġ\", \"t\"], [\"Ġt\", \"he\"], [\"l\", \"l\"], "
              "[\"ll\", \"o\"], [\"he\", \"llo\"], [\"Ġ\", \"Ġ\"], [\"Ã\", \"©\"]]",
    .added = "[{\"id\": 300, \"content\": \"<|end|>\", \"special\": true, \"normalized\": false},"
             " {\"id\": 301, \"content\": \"<|end|>x\", \"special\": false, \"normalized\": false},"
             " {\"id\": 302, \"content\": \"<t>\", \"special\": false, \"normalized\": false}]",
};

static void expect_ids(cl_tokenizer *t, const char *text, int parse_special, const int32_t *want,
                       size_t n)
{
    cl_ids ids = {0};
    assert_int_equal(cl_tokenizer_encode(t, text, strlen(text), parse_special, &ids), 0);
    if (ids.n != n || (n && memcmp(ids.v, want, n * sizeof *want))) {
        print_error("'%s': got", text);
        for (size_t i = 0; i < ids.n; i++)
            print_error(" %d", ids.v[i]);
        print_error("\n");
        fail();
    }
    char *dec;
    size_t len;
    assert_int_equal(cl_tokenizer_decode(t, ids.v, ids.n, &dec, &len), 0);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(dec, text, len);
    free(dec);
    cl_ids_free(&ids);
}

/* Lowest rank first; leftmost on ties; pieces follow the regex; added tokens match
 * leftmost-longest; escapes in vocabulary strings are read. */
static void test_merges(void **state)
{
    (void)state;
    cl_tokenizer *t;
    assert_int_equal(cl_tokenizer_load(write_tok("bpe_merges", &merges_spec), &t), 0);
    assert_int_equal(cl_tokenizer_vocab_size(t), 303);
    expect_ids(t, "hello the", 1, (int32_t[]){261, 258}, 2);
    expect_ids(t, "hel", 1, (int32_t[]){256, 'l'}, 2);
    expect_ids(t, "lll", 1, (int32_t[]){259, 'l'}, 2); /* leftmost pair first */
    expect_ids(t, "    x", 1, (int32_t[]){262, ' ', ' ', 'x'}, 4); /* "   ", " x" */
    expect_ids(t, "\xc3\xa9", 1, (int32_t[]){263}, 1);
    expect_ids(t, "a<|end|>b", 1, (int32_t[]){'a', 300, 'b'}, 3);
    expect_ids(t, "a<|end|>x", 1, (int32_t[]){'a', 301}, 2); /* longest wins */
    expect_ids(t, "<t><|end|", 1, (int32_t[]){302, '<', '|', 'e', 'n', 'd', '|'}, 7);
    expect_ids(t, "a<|end|>", 0, (int32_t[]){'a', '<', '|', 'e', 'n', 'd', '|', '>'}, 8);
    expect_ids(t, "", 1, NULL, 0);
    assert_int_equal(cl_tokenizer_find(t, "<|end|>"), 300);
    assert_int_equal(cl_tokenizer_find(t, " the"), 258);
    assert_int_equal(cl_tokenizer_find(t, "\xc3\xa9"), 263);
    assert_int_equal(cl_tokenizer_find(t, ""), -1);
    assert_true(cl_tokenizer_is_special(t, 300));
    assert_false(cl_tokenizer_is_special(t, 301));
    assert_true(cl_tokenizer_is_added(t, 301));
    cl_tokenizer_free(t);

    /* The older merges format ("a b" strings) gives the same tokenizer. */
    spec old = merges_spec;
    old.merges = "[\"h e\", \"Ġ t\", \"Ġt he\", \"l l\", \"ll o\", \"he llo\", \"Ġ Ġ\", \"Ã ©\"]";
    assert_int_equal(cl_tokenizer_load(write_tok("bpe_old_merges", &old), &t), 0);
    expect_ids(t, "hello the", 1, (int32_t[]){261, 258}, 2);
    cl_tokenizer_free(t);

    /* Merges written before the vocabulary are read once it is known. */
    spec reordered = merges_spec;
    reordered.merges_first = 1;
    assert_int_equal(cl_tokenizer_load(write_tok("bpe_merges_first", &reordered), &t), 0);
    expect_ids(t, "hello the", 1, (int32_t[]){261, 258}, 2);
    cl_tokenizer_free(t);
}

/* NFC is applied to text but not to added tokens; NUL bytes are ordinary text. */
static void test_normalization(void **state)
{
    (void)state;
    cl_tokenizer *t;
    assert_int_equal(cl_tokenizer_load(write_tok("bpe_nfc", &merges_spec), &t), 0);
    cl_ids ids = {0};
    assert_int_equal(cl_tokenizer_encode(t, "e\xcc\x81", 3, 1, &ids), 0); /* e + U+0301 */
    assert_int_equal(ids.n, 1);
    assert_int_equal(ids.v[0], 263); /* é, composed */
    ids.n = 0;
    assert_int_equal(cl_tokenizer_encode(t, "a\0b", 3, 1, &ids), 0);
    assert_int_equal(ids.n, 3);
    assert_int_equal(ids.v[1], 0);
    cl_ids_free(&ids);
    cl_tokenizer_free(t);
    spec raw = merges_spec;
    raw.normalizer = "null";
    assert_int_equal(cl_tokenizer_load(write_tok("bpe_nonorm", &raw), &t), 0);
    assert_int_equal(cl_tokenizer_encode(t, "e\xcc\x81", 3, 1, &ids), 0);
    assert_int_equal(ids.n, 3); /* e, 0xCC, 0x81 */
    cl_ids_free(&ids);
    cl_tokenizer_free(t);
}

static void expect_load_error(const char *name, const spec *s, int status, const char *needle)
{
    cl_tokenizer *t = (cl_tokenizer *)1;
    const char *path = write_tok(name, s);
    int rc = cl_tokenizer_load(path, &t);
    if (rc != status || !strstr(cl_errmsg(), needle) || !strstr(cl_errmsg(), path))
        fail_msg("%s: got %d '%s', expected %d with '%s'", name, rc, cl_errmsg(), status, needle);
    assert_null(t);
    assert_null(strchr(cl_errmsg(), '\n'));
}

static void test_unsupported(void **state)
{
    (void)state;
    spec s = merges_spec;
    s.model_type = "WordPiece";
    expect_load_error("bpe_wordpiece", &s, CL_ERR_UNSUPPORTED, "model type 'WordPiece' is not yet supported");
    s = merges_spec;
    s.normalizer = "{\"type\": \"NFKC\"}";
    expect_load_error("bpe_nfkc", &s, CL_ERR_UNSUPPORTED, "normalizer type 'NFKC'");
    s = merges_spec;
    s.pre = "{\"type\": \"Metaspace\", \"replacement\": \"_\"}";
    expect_load_error("bpe_metaspace", &s, CL_ERR_UNSUPPORTED, "not yet supported");
    s = merges_spec;
    s.pre = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
            "{\"Regex\": \"x\"}, \"behavior\": \"Removed\", \"invert\": false}, "
            "{\"type\": \"ByteLevel\", \"use_regex\": false}]}";
    expect_load_error("bpe_removed", &s, CL_ERR_UNSUPPORTED, "behavior 'Removed'");
    s = merges_spec;
    s.decoder = "{\"type\": \"WordPiece\"}";
    expect_load_error("bpe_decoder", &s, CL_ERR_UNSUPPORTED, "decoder type 'WordPiece'");
    s = merges_spec;
    s.added = "[{\"id\": 300, \"content\": \"<m>\", \"lstrip\": true}]";
    expect_load_error("bpe_lstrip", &s, CL_ERR_UNSUPPORTED, "added_tokens[0]");
    s = merges_spec;
    s.model_extra = "\"continuing_subword_prefix\": \"##\"";
    expect_load_error("bpe_prefix", &s, CL_ERR_UNSUPPORTED, "continuing_subword_prefix");
}

static void test_malformed(void **state)
{
    (void)state;
    spec s = merges_spec;
    s.pre = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
            "{\"Regex\": \"(unclosed\"}, \"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\"}]}";
    expect_load_error("bpe_regex", &s, CL_ERR_FORMAT, "bad regex");
    s = merges_spec;
    s.merges = "[[\"h\", \"e\"], [\"q\", \"zz\"]]";
    expect_load_error("bpe_merge_unknown", &s, CL_ERR_FORMAT, "model.merges[1]: 'zz'");
    s = merges_spec;
    s.merges = "[[\"h\", \"q\"]]";
    expect_load_error("bpe_merge_result", &s, CL_ERR_FORMAT, "merged token 'hq'");
    s = merges_spec;
    s.merges = "[\"h e\", \"lonely\"]";
    expect_load_error("bpe_merge_string", &s, CL_ERR_FORMAT, "model.merges[1]");
    s = merges_spec;
    s.skip_byte = 'q';
    expect_load_error("bpe_nobyte", &s, CL_ERR_FORMAT, "no token for byte 0x71");
    s = merges_spec;
    s.extra_vocab = "\"x1\": -3";
    expect_load_error("bpe_negid", &s, CL_ERR_FORMAT, "id -3 out of range");
    s = merges_spec;
    s.extra_vocab = "\"x1\": 65";
    expect_load_error("bpe_dupid", &s, CL_ERR_FORMAT, "id 65 appears twice");
    s = merges_spec;
    s.extra_vocab = "\"x\\q\": 300";
    expect_load_error("bpe_escape", &s, CL_ERR_FORMAT, "bad escape");
    s = merges_spec;
    s.extra_vocab = "\"\\ud800\": 300";
    expect_load_error("bpe_surrogate", &s, CL_ERR_FORMAT, "surrogate");
    s = merges_spec;
    s.added = "[{\"id\": 300, \"content\": 5}]";
    expect_load_error("bpe_added_type", &s, CL_ERR_FORMAT, "added_tokens[0]: key 'content'");

    /* Broken files: truncated, empty, not an object, no model, trailing text. */
    const char *path = write_tok("bpe_trunc", &merges_spec);
    char *text;
    size_t len;
    assert_int_equal(cl_read_file(path, &text, &len), 0);
    const struct {
        const char *name, *content, *needle;
    } cases[] = {
        {"truncated", NULL, "malformed JSON at line 1, column"},
        {"empty", "", "empty file"},
        {"array", "[1, 2]", "expected an object"},
        {"nomodel", "{\"version\": \"1.0\"}", "no 'model' section"},
        {"trailing", "{\"model\": {}} x", "text after the top-level object"},
        {"comma", "{\"model\": {},}", "trailing comma"},
        {"novocab", "{\"model\": {\"type\": \"BPE\"}, \"pre_tokenizer\": {\"type\": "
                    "\"ByteLevel\"}, \"decoder\": {\"type\": \"ByteLevel\"}}",
         "model.vocab is missing"},
        /* merges without a vocabulary (they used to be read against no table) */
        {"novocab_merges", "{\"model\": {\"type\": \"BPE\", \"merges\": [[\"a\", \"b\"]]}}",
         "model.vocab is missing"},
        {"novocab_merges_str", "{\"model\": {\"merges\": [\"a b\"], \"type\": \"BPE\"}}",
         "model.vocab is missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *content = cases[i].content ? cases[i].content : text;
        size_t n = cases[i].content ? strlen(content) : len / 2;
        assert_int_equal(cl_write_file_atomic(path, content, n), 0);
        cl_tokenizer *t;
        int rc = cl_tokenizer_load(path, &t);
        if (rc != CL_ERR_FORMAT || !strstr(cl_errmsg(), cases[i].needle))
            fail_msg("%s: got %d '%s'", cases[i].name, rc, cl_errmsg());
    }
    free(text);
    cl_tokenizer *t;
    assert_int_equal(cl_tokenizer_load("/nonexistent/tokenizer.json", &t), CL_ERR_IO);
    assert_non_null(strstr(cl_errmsg(), "/nonexistent/tokenizer.json"));
    assert_int_equal(cl_tokenizer_load_dir("/nonexistent", &t), CL_ERR_IO);
}

static void test_bad_input(void **state)
{
    (void)state;
    cl_tokenizer *t;
    assert_int_equal(cl_tokenizer_load(write_tok("bpe_input", &merges_spec), &t), 0);
    cl_ids ids = {0};
    const struct {
        const char *text;
        size_t bad;
    } bad[] = {
        {"ab\xff", 2},         {"\xc0\x80", 0},     {"x\xed\xa0\x80", 1}, /* surrogate */
        {"\xf4\x90\x80\x80", 0}, {"\xe2\x82", 0},     {"ok \x80", 3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(cl_tokenizer_encode(t, bad[i].text, strlen(bad[i].text), 1, &ids),
                         CL_ERR_FORMAT);
        char want[64];
        snprintf(want, sizeof want, "invalid UTF-8 at byte %zu", bad[i].bad);
        assert_non_null(strstr(cl_errmsg(), want));
    }
    assert_int_equal(cl_tokenizer_encode(t, "\xf0\x9f\x98\x80", 4, 1, &ids), 0);
    assert_int_equal(ids.n, 4);
    int32_t unknown[] = {65, 280};
    char *out;
    size_t len;
    assert_int_equal(cl_tokenizer_decode(t, unknown, 2, &out, &len), CL_ERR_RANGE);
    assert_non_null(strstr(cl_errmsg(), "token id 280"));
    unknown[1] = -1;
    assert_int_equal(cl_tokenizer_decode(t, unknown, 2, &out, &len), CL_ERR_RANGE);
    unknown[1] = 303;
    assert_int_equal(cl_tokenizer_decode(t, unknown, 2, &out, &len), CL_ERR_RANGE);
    assert_int_equal(cl_tokenizer_decode(t, unknown, 0, &out, &len), 0);
    assert_int_equal(len, 0);
    free(out);
    cl_ids_free(&ids);
    cl_tokenizer_free(t);
}

static void test_bytelevel(void **state)
{
    (void)state;
    int seen[0x200] = {0};
    for (int b = 0; b < 256; b++) {
        uint32_t cp = cl_bytelevel_char((uint8_t)b);
        assert_true(cp < 0x200 && cp > 0x20);
        assert_false(seen[cp]++);
        assert_int_equal(cl_bytelevel_byte(cp), b);
    }
    assert_int_equal(cl_bytelevel_char(' '), 0x120);
    assert_int_equal(cl_bytelevel_char('\n'), 0x10A);
    assert_int_equal(cl_bytelevel_char('A'), 'A');
    assert_int_equal(cl_bytelevel_char(0xAD), 0x143);
    assert_int_equal(cl_bytelevel_byte(0x144), -1);
    assert_int_equal(cl_bytelevel_byte(' '), -1);
    uint8_t raw[4];
    assert_int_equal(cl_bytelevel_decode("\xe2\x82\xac", 3, raw), -1); /* € is not a map char */
}

typedef struct {
    char chunks[8][32];
    int n;
} chunk_list;

static int collect(void *ctx, const char *chunk, size_t len)
{
    chunk_list *c = ctx;
    assert_true(c->n < 8 && len < 32);
    memcpy(c->chunks[c->n], chunk, len);
    c->chunks[c->n++][len] = 0;
    return 0;
}

/* \s means Unicode White_Space as in Oniguruma (HF): U+180E is not a space for HF,
 * though PCRE2's own \s matches it; (?i:'s) also matches the long s U+017F. The
 * expected chunks are HF tokenizers' pre_tokenize_str output. */
static void test_regex_semantics(void **state)
{
    (void)state;
    cl_pretok *p;
    assert_int_equal(cl_pretok_create(cl_pretok_qwen2_pattern, "test", &p), 0);
    const struct {
        const char *text;
        int n;
        const char *want[4];
    } cases[] = {
        {"a\xe1\xa0\x8e\xe1\xa0\x8e" "b", 3, {"a", "\xe1\xa0\x8e\xe1\xa0\x8e", "b"}},
        {"x \xe1\xa0\x8e\xe1\xa0\x8e", 2, {"x", " \xe1\xa0\x8e\xe1\xa0\x8e"}},
        {"I'\xc5\xbf ok", 3, {"I", "'\xc5\xbf", " ok"}},
        {"x\xc2\x85\xc2\x85y", 3, {"x", "\xc2\x85", "\xc2\x85y"}},
        {"12 ab", 3, {"1", "2", " ab"}},
        {"  \n\n  x", 3, {"  \n\n", " ", " x"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        chunk_list c = {0};
        assert_int_equal(cl_pretok_split(p, cases[i].text, strlen(cases[i].text), collect, &c), 0);
        assert_int_equal(c.n, cases[i].n);
        for (int k = 0; k < c.n; k++)
            assert_string_equal(c.chunks[k], cases[i].want[k]);
    }
    cl_pretok_free(p);
    assert_int_equal(cl_pretok_create("(unclosed", "the pattern", &p), CL_ERR_FORMAT);
    assert_non_null(strstr(cl_errmsg(), "the pattern: bad regex at offset"));
}

/* Long runs are linear-ish and round-trip (no regex stack or heap limits hit). */
static void test_long_runs(void **state)
{
    (void)state;
    cl_tokenizer *t;
    assert_int_equal(cl_tokenizer_load(write_tok("bpe_long", &merges_spec), &t), 0);
    size_t n = 200000;
    char *text = malloc(n + 1);
    const char fill[] = {'l', ' ', '\n', '!', 'e'};
    for (size_t f = 0; f < sizeof fill; f++) {
        memset(text, fill[f], n);
        text[n] = 0;
        cl_ids ids = {0};
        assert_int_equal(cl_tokenizer_encode(t, text, n, 1, &ids), 0);
        char *dec;
        size_t len;
        assert_int_equal(cl_tokenizer_decode(t, ids.v, ids.n, &dec, &len), 0);
        assert_int_equal(len, n);
        assert_memory_equal(dec, text, n);
        if (fill[f] == 'l')
            assert_int_equal(ids.n, n / 2); /* all "ll" */
        free(dec);
        cl_ids_free(&ids);
    }
    free(text);
    cl_tokenizer_free(t);
}

typedef struct {
    const cl_tokenizer *t;
    const char *text;
    cl_ids ids;
    int rc;
} job;

static void *encode_job(void *arg)
{
    job *j = arg;
    for (int r = 0; r < 20 && !j->rc; r++) {
        j->ids.n = 0;
        j->rc = cl_tokenizer_encode(j->t, j->text, strlen(j->text), 1, &j->ids);
    }
    return NULL;
}

/* Several threads may encode with one tokenizer; the cache is shared safely. */
static void test_threads(void **state)
{
    (void)state;
    cl_tokenizer *t;
    assert_int_equal(cl_tokenizer_load(write_tok("bpe_threads", &merges_spec), &t), 0);
    const char *text = "hello the hello<|end|> lll the  hel \xc3\xa9 hello the end";
    cl_ids want = {0};
    assert_int_equal(cl_tokenizer_encode(t, text, strlen(text), 1, &want), 0);
    job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){t, text, {0}, 0};
        assert_int_equal(pthread_create(&th[i], NULL, encode_job, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].rc, 0);
        assert_int_equal(jobs[i].ids.n, want.n);
        assert_memory_equal(jobs[i].ids.v, want.v, want.n * sizeof *want.v);
        cl_ids_free(&jobs[i].ids);
    }
    cl_ids_free(&want);
    cl_tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merges),      cmocka_unit_test(test_normalization),
        cmocka_unit_test(test_unsupported), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_bad_input),   cmocka_unit_test(test_bytelevel),
        cmocka_unit_test(test_regex_semantics), cmocka_unit_test(test_long_runs),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
