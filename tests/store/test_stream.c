/* test_stream - parallel verified reads: every payload byte reaches dst/sink exactly
 * once and right, for many sizes, thread counts and chunk sizes; a damaged segment or
 * segment table is never handed over (CL_ERR_CORRUPT, entry dropped); a sink error
 * stops the read; values of the old format (1) are read, streamed and verified. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <xxhash.h>

#include "testutil.h"
#include "storetest.h"
#include "store/codec.h"
#include "store/internal.h"

/* What a sink saw: per byte, how often it was handed over; whether all matched. */
typedef struct {
    pthread_mutex_t mu;
    uint8_t *want;   /* expected payload */
    uint8_t *seen;   /* count per byte */
    uint64_t bytes;
    int calls, wrong, fail_after, concurrent, active, max_active;
    uint64_t bad_lo, bad_hi; /* a range that must never be handed over */
} sink_state;

static int sink(void *user, uint64_t off, const void *data, size_t n)
{
    sink_state *s = user;
    pthread_mutex_lock(&s->mu);
    int call = ++s->calls;
    s->active++;
    if (s->active > s->max_active)
        s->max_active = s->active;
    pthread_mutex_unlock(&s->mu);
    int bad = off + n > s->bytes || memcmp(data, s->want + off, n) != 0 ||
              (off < s->bad_hi && off + n > s->bad_lo);
    struct timespec ts = {0, 200000}; /* let other workers overlap */
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&s->mu);
    s->wrong += bad;
    for (size_t i = 0; i < n && off + i < s->bytes; i++)
        s->seen[off + i]++;
    s->active--;
    pthread_mutex_unlock(&s->mu);
    if (s->fail_after && call >= s->fail_after)
        return cl_err(CL_ERR_BACKEND, "test sink: device copy %d failed", call);
    return CL_OK;
}

static void sink_init(sink_state *s, uint64_t i, uint64_t bytes)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->bytes = bytes;
    s->want = malloc(bytes + 1);
    s->seen = calloc(bytes + 1, 1);
    st_fill(s->want, bytes, i);
}

static void sink_free(sink_state *s)
{
    pthread_mutex_destroy(&s->mu);
    free(s->want);
    free(s->seen);
}

static int stream(cl_store *st, cl_store_kind kind, uint64_t i, const cl_store_stream_opts *o,
                  cl_store_value *v)
{
    cl_store_txn *t;
    assert_int_equal(cl_store_txn_begin(st, &t), CL_OK);
    cl_key k = st_key(i);
    int rc = cl_store_stream(t, kind, &k, o, v);
    if (rc == CL_OK) { /* meta points into the map until the txn ends */
        uint64_t mi = 0;
        assert_int_equal(v->info.meta_bytes, 8);
        memcpy(&mi, v->info.meta, 8);
        assert_int_equal(mi, i);
    }
    cl_store_txn_end(t);
    return rc;
}

/* Sizes around the 1 MiB segment, thread counts, chunk sizes, dst and/or sink. */
static void test_stream_covers_payload(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("stream_cover");
    cl_store *st = st_open(dir, 0, 0, 0);
    const size_t sizes[] = {0, 1, 4095, MIB - 1, MIB, MIB + 1, 5 * MIB + 12345, 9 * MIB};
    const int nsizes = (int)(sizeof sizes / sizeof sizes[0]);
    for (int i = 0; i < nsizes; i++)
        assert_int_equal(st_put(st, CL_STORE_SNAP, (uint64_t)i, sizes[i], 0), CL_OK);
    const int threads[] = {1, 3, 8};
    const size_t chunks[] = {0, 3 * MIB - 5, 64 * MIB};
    uint8_t *dst = malloc(9 * MIB + 64);
    for (int i = 0; i < nsizes; i++)
        for (int ti = 0; ti < 3; ti++)
            for (int ci = 0; ci < 3; ci++)
                for (int mode = 0; mode < 3; mode++) { /* sink, dst, both */
                    sink_state s;
                    sink_init(&s, (uint64_t)i, sizes[i]);
                    cl_store_stream_opts o = {0};
                    o.threads = threads[ti];
                    o.chunk_bytes = chunks[ci];
                    if (mode != 1) {
                        o.sink = sink;
                        o.user = &s;
                    }
                    if (mode != 0) {
                        o.dst = dst;
                        o.dst_bytes = sizes[i];
                        memset(dst, 0xEE, sizes[i] + 64);
                    }
                    cl_store_value v;
                    assert_int_equal(stream(st, CL_STORE_SNAP, (uint64_t)i, &o, &v), CL_OK);
                    assert_int_equal(v.payload_bytes, sizes[i]);
                    assert_int_equal(v.info.tokens, i);
                    assert_int_equal(s.wrong, 0);
                    if (mode != 1)
                        for (size_t b = 0; b < sizes[i]; b++)
                            if (s.seen[b] != 1)
                                fail_msg("size %zu threads %d chunk %zu: byte %zu handed over "
                                         "%d times", sizes[i], threads[ti], chunks[ci], b,
                                         s.seen[b]);
                    if (mode != 0) {
                        assert_memory_equal(dst, s.want, sizes[i]);
                        assert_int_equal(dst[sizes[i]], 0xEE); /* nothing past the end */
                    }
                    /* chunk count: whole segments per call */
                    if (mode != 1 && sizes[i]) {
                        size_t per = chunks[ci] > MIB ? (chunks[ci] + MIB - 1) / MIB * MIB : MIB;
                        assert_int_equal(s.calls, (int)((sizes[i] + per - 1) / per));
                    }
                    sink_free(&s);
                }
    /* concurrency: 8 threads, 9 chunks, slow sink -> calls overlap */
    sink_state s;
    sink_init(&s, (uint64_t)nsizes - 1, sizes[nsizes - 1]);
    cl_store_stream_opts o = {0};
    o.threads = 8;
    o.sink = sink;
    o.user = &s;
    cl_store_value v;
    assert_int_equal(stream(st, CL_STORE_SNAP, (uint64_t)nsizes - 1, &o, &v), CL_OK);
    assert_true(s.max_active > 1);
    sink_free(&s);
    /* dst too small, no target, absent key */
    o = (cl_store_stream_opts){0};
    o.dst = dst;
    o.dst_bytes = MIB;
    assert_int_equal(stream(st, CL_STORE_SNAP, 5, &o, &v), CL_ERR_RANGE);
    assert_non_null(strstr(cl_errmsg(), "does not fit"));
    o.dst = NULL;
    assert_int_equal(stream(st, CL_STORE_SNAP, 5, &o, &v), CL_ERR_ARG);
    o.dst = dst;
    o.dst_bytes = 9 * MIB;
    assert_int_equal(stream(st, CL_STORE_SNAP, 999, &o, &v), CL_ERR_NOTFOUND);
    free(dst);
    cl_store_close(st);
}

/* A flipped byte in segment 3 of 6: the stream fails CORRUPT; no sink call covers the
 * bad segment; the entry is gone after the transaction. A flipped segment table
 * fails before anything is handed over. */
static void test_stream_damaged_segment(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("stream_damage");
    cl_store *st = st_open(dir, 0, 0, 0);
    const size_t bytes = 6 * MIB;
    assert_int_equal(st_put(st, CL_STORE_KV, 1, bytes, 0), CL_OK);
    assert_int_equal(st_put(st, CL_STORE_KV, 2, bytes, 0), CL_OK);
    cl_store_close(st);
    uint8_t *p = malloc(bytes);
    st_fill(p, bytes, 1);
    assert_int_equal(st_flip_in_file(dir, p + 3 * MIB + 1000, 64), 1);
    free(p);

    for (int threads = 1; threads <= 4; threads += 3) {
        st = st_open(dir, 0, 0, 0);
        sink_state s;
        sink_init(&s, 1, bytes);
        s.bad_lo = 3 * MIB;
        s.bad_hi = 4 * MIB;
        cl_store_stream_opts o = {0};
        o.threads = threads;
        o.sink = sink;
        o.user = &s;
        cl_store_value v;
        if (threads == 1) { /* read-only handle first: reported, not dropped */
            cl_store_close(st);
            cl_store_opts ro = {0};
            ro.flags = CL_STORE_RDONLY;
            assert_int_equal(cl_store_open(dir, &ro, &st), CL_OK);
        }
        assert_int_equal(stream(st, CL_STORE_KV, 1, &o, &v), CL_ERR_CORRUPT);
        assert_non_null(strstr(cl_errmsg(), "payload checksum mismatch (segment 3 of 6)"));
        assert_non_null(strstr(cl_errmsg(), dir));
        assert_int_equal(s.wrong, 0);
        if (threads == 1)
            assert_int_equal(s.calls, 3); /* in order: segments 0-2, then the bad one */
        sink_free(&s);
        assert_int_equal(st_has(st, CL_STORE_KV, 1), threads == 1); /* dropped unless RO */
        cl_store_close(st);
    }
    st = st_open(dir, 0, 0, 0);
    assert_int_equal(st_check(st, CL_STORE_KV, 2), CL_OK);
    /* segment table of value 2: its checksums are the XXH3-64 of each 1 MiB segment */
    cl_store_txn *t;
    assert_int_equal(cl_store_txn_begin(st, &t), CL_OK);
    cl_key k2 = st_key(2);
    MDB_val mv;
    assert_int_equal(read_lookup(t, CL_STORE_KV, &k2, &mv), CL_OK);
    codec_header h;
    assert_null(codec_check(mv.mv_data, mv.mv_size, CL_STORE_KV, &k2, 1, &h));
    assert_int_equal(h.version, 2);
    assert_int_equal(codec_nseg(&h), 6);
    uint8_t table[48];
    memcpy(table, codec_table_ptr(mv.mv_data, &h), sizeof table);
    const uint8_t *payload = codec_payload_ptr(mv.mv_data, &h);
    for (uint64_t i = 0; i < 6; i++)
        assert_true(codec_seg_xxh(table, i) == XXH3_64bits(payload + i * MIB, MIB));
    cl_store_txn_end(t);
    cl_store_close(st);
    assert_int_equal(st_flip_in_file(dir, table + 8, 32), 1);
    st = st_open(dir, 0, 0, 0);
    sink_state s;
    sink_init(&s, 2, bytes);
    cl_store_stream_opts o = {0};
    o.threads = 4;
    o.sink = sink;
    o.user = &s;
    cl_store_value v;
    assert_int_equal(stream(st, CL_STORE_KV, 2, &o, &v), CL_ERR_CORRUPT);
    assert_non_null(strstr(cl_errmsg(), "segment table checksum"));
    assert_int_equal(s.calls, 0);
    sink_free(&s);
    assert_int_equal(st_has(st, CL_STORE_KV, 2), 0);
    cl_store_close(st);
}

/* A sink that fails stops the stream with its own status and message. */
static void test_stream_sink_error(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("stream_sinkerr");
    cl_store *st = st_open(dir, 0, 0, 0);
    const size_t bytes = 40 * MIB;
    assert_int_equal(st_put(st, CL_STORE_DOC, 7, bytes, 0), CL_OK);
    for (int threads = 1; threads <= 6; threads += 5) {
        sink_state s;
        sink_init(&s, 7, bytes);
        s.fail_after = 2;
        cl_store_stream_opts o = {0};
        o.threads = threads;
        o.sink = sink;
        o.user = &s;
        cl_store_value v;
        assert_int_equal(stream(st, CL_STORE_DOC, 7, &o, &v), CL_ERR_BACKEND);
        assert_non_null(strstr(cl_errmsg(), "test sink: device copy"));
        assert_true(s.calls < 40); /* stopped early */
        assert_int_equal(s.wrong, 0);
        sink_free(&s);
    }
    assert_int_equal(st_check(st, CL_STORE_DOC, 7), CL_OK); /* not the value's fault */
    cl_store_close(st);
}

/* Values written in format 1 (one payload checksum) are still read by get, read, load,
 * stream and verify; a damaged one is caught before anything is handed over. */
static void test_format1_values(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("stream_v1");
    cl_store *st = st_open(dir, 0, 0, 0);
    const size_t bytes = 3 * MIB + 7;
    for (uint64_t i = 1; i <= 3; i++)
        assert_int_equal(st_put(st, CL_STORE_KV, i, bytes, STORE_PUT_V1), CL_OK);
    assert_int_equal(st_put(st, CL_STORE_KV, 4, bytes, 0), CL_OK);
    cl_store_stats s0;
    assert_int_equal(cl_store_stat(st, &s0), CL_OK);
    assert_int_equal(s0.bytes[CL_STORE_KV], 3 * (128 + 64 + bytes) + (128 + 64 + 64 + bytes));
    for (uint64_t i = 1; i <= 4; i++)
        assert_int_equal(st_check(st, CL_STORE_KV, i), CL_OK);
    uint8_t *dst = malloc(bytes);
    sink_state s;
    sink_init(&s, 1, bytes);
    cl_store_stream_opts o = {0};
    o.threads = 3;
    o.sink = sink;
    o.user = &s;
    o.dst = dst;
    o.dst_bytes = bytes;
    cl_store_value v;
    assert_int_equal(stream(st, CL_STORE_KV, 1, &o, &v), CL_OK);
    assert_memory_equal(dst, s.want, bytes);
    for (size_t b = 0; b < bytes; b++)
        assert_int_equal(s.seen[b], 1);
    sink_free(&s);
    cl_key k2 = st_key(2);
    memset(dst, 0, bytes);
    assert_int_equal(cl_store_read(st, CL_STORE_KV, &k2, dst, bytes, &v), CL_OK);
    void *buf;
    assert_int_equal(cl_store_load(st, CL_STORE_KV, &k2, &v, &buf), CL_OK);
    assert_memory_equal(v.payload, dst, bytes);
    free(buf);
    cl_store_verify_result r;
    assert_int_equal(cl_store_verify(st, NULL, NULL, NULL, &r), CL_OK);
    assert_int_equal(r.checked, 4);
    assert_int_equal(r.bad, 0);
    cl_store_close(st);

    /* damage the end of value 3 (format 1): nothing handed over, verify finds it */
    uint8_t *p = malloc(bytes);
    st_fill(p, bytes, 3);
    assert_int_equal(st_flip_in_file(dir, p + bytes - 100, 64), 1);
    free(p);
    st = st_open(dir, 0, 0, 0);
    sink_init(&s, 3, bytes);
    o.dst = NULL;
    o.user = &s;
    assert_int_equal(stream(st, CL_STORE_KV, 3, &o, &v), CL_ERR_CORRUPT);
    assert_non_null(strstr(cl_errmsg(), "payload checksum mismatch"));
    assert_int_equal(s.calls, 0);
    sink_free(&s);
    cl_store_close(st);
    p = malloc(bytes);
    st_fill(p, bytes, 2);
    assert_int_equal(st_flip_in_file(dir, p + 1000, 64), 1);
    free(p);
    st = st_open(dir, 0, 0, 0);
    assert_int_equal(cl_store_verify(st, NULL, NULL, NULL, &r), CL_OK);
    assert_int_equal(r.checked, 3);
    assert_int_equal(r.bad, 1);
    assert_int_equal(r.removed, 1);
    assert_int_equal(st_check(st, CL_STORE_KV, 1), CL_OK);
    assert_int_equal(st_check(st, CL_STORE_KV, 4), CL_OK);
    free(dst);
    cl_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_covers_payload),
        cmocka_unit_test(test_stream_damaged_segment),
        cmocka_unit_test(test_stream_sink_error),
        cmocka_unit_test(test_format1_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
