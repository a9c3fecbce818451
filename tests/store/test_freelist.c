/* test_freelist - verify walks LMDB's free list against the trees: on a healthy store
 * every page is accounted for; a free-list record made to list a live document page
 * (which, unchecked, makes the next write overwrite that document) is reported, the
 * store is marked damaged and refuses writes in every process, nothing is lost;
 * random single-bit flips in free-list records are either reported or harmless (a
 * later write loses no document); recover rebuilds the store with its entries, pins
 * and size cap, and refuses while the store is in use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "storetest.h"
#include "store/internal.h"
#include "store/pagewalk.h"

#define NDOCS 5
#define DOC_BYTES (300 * 1024)

typedef struct {
    uint64_t txnid, off, count;
} free_rec;

typedef struct {
    free_rec rec[256];
    int nrec;
    uint64_t doc_pgno[NDOCS + 1], doc_pages[NDOCS + 1];
} found_pages;

static void on_free_record(void *user, uint64_t txnid, uint64_t off, uint64_t count)
{
    found_pages *f = user;
    if (f->nrec < 256)
        f->rec[f->nrec++] = (free_rec){txnid, off, count};
}

static void on_overflow(void *user, const char *tree, const void *key, size_t klen,
                        uint64_t pgno, uint64_t npages)
{
    found_pages *f = user;
    if (strcmp(tree, "table 'docs'") || klen != 16)
        return;
    for (uint64_t i = 1; i <= NDOCS; i++) {
        cl_key k = st_key(i);
        if (!memcmp(k.b, key, 16)) {
            f->doc_pgno[i] = pgno;
            f->doc_pages[i] = npages;
        }
    }
}

/* Walks the store's pages (the store closed in this process). */
static walk_result walk_store(const char *dir, found_pages *f)
{
    cl_store *st = st_open(dir, 0, 0, 0);
    cl_store_txn *t;
    assert_int_equal(cl_store_txn_begin(st, &t), CL_OK);
    walk_result r;
    memset(&r, 0, sizeof r);
    if (f) {
        memset(f, 0, sizeof *f);
        r.on_free_record = on_free_record;
        r.on_overflow = on_overflow;
        r.user = f;
    }
    assert_int_equal(walk_check(st->e->env, t->txn, &r), 0);
    cl_store_txn_end(t);
    cl_store_close(st);
    return r;
}

/* Documents 1..NDOCS (document 1 pinned), then churn that leaves free-list records. */
static const char *make_store(const char *name)
{
    const char *dir = tu_tmpdir(name);
    cl_store *st = st_open(dir, 0, 0, 0);
    for (uint64_t i = 1; i <= NDOCS; i++)
        assert_int_equal(st_put(st, CL_STORE_DOC, i, DOC_BYTES, i == 1 ? CL_STORE_PUT_PIN : 0),
                         CL_OK);
    /* 12 commits of 5 values each, then 6 commits of deletions */
    uint8_t *p = malloc(40000);
    for (uint64_t i = 100; i < 160; i += 5) {
        cl_store_batch *b;
        assert_int_equal(cl_store_batch_begin(st, &b), CL_OK);
        for (uint64_t j = i; j < i + 5; j++) {
            cl_key k = st_key(j);
            st_fill(p, 20000 + 100 * j, j);
            cl_store_piece pc = {p, 20000 + 100 * j};
            assert_int_equal(cl_store_batch_put(b, CL_STORE_KV, &k, NULL, &pc, 1, CL_STORE_PUT_COPY),
                             CL_OK);
        }
        assert_int_equal(cl_store_batch_commit(b), CL_OK);
    }
    free(p);
    for (uint64_t i = 100; i < 160; i += 10) {
        cl_store_batch *b;
        assert_int_equal(cl_store_batch_begin(st, &b), CL_OK);
        for (uint64_t j = i; j < i + 10; j++) {
            cl_key k = st_key(j);
            assert_int_equal(cl_store_batch_del(b, CL_STORE_KV, &k), CL_OK);
        }
        assert_int_equal(cl_store_batch_commit(b), CL_OK);
    }
    assert_int_equal(cl_store_set_max_bytes(st, 1ull << 40), CL_OK);
    assert_int_equal(st_put(st, CL_STORE_SNAP, 7, 5000, 0), CL_OK);
    cl_store_close(st);
    return dir;
}

static void poke_u64(const char *dir, uint64_t off, uint64_t v)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &v, 8, (off_t)off), 8);
    close(fd);
}

static uint64_t peek_u64(const char *dir, uint64_t off)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    uint64_t v = 0;
    assert_int_equal(pread(fd, &v, 8, (off_t)off), 8);
    close(fd);
    return v;
}

static void copy_store(const char *from, const char *to)
{
    assert_int_equal(tu_runf(NULL, "rm -rf '%s' && mkdir -p '%s' && cp '%s/data.mdb' '%s/'", to,
                             to, from, to),
                     0);
}

static int docs_intact(cl_store *st)
{
    for (uint64_t i = 1; i <= NDOCS; i++)
        if (st_check(st, CL_STORE_DOC, i) != CL_OK)
            return 0;
    return 1;
}

/* Makes the first page LMDB will hand out (the last, smallest page of the oldest
 * record) the first page of document 3; returns the record. */
static const free_rec *list_doc_page_free(const char *dir, const found_pages *f)
{
    const free_rec *oldest = NULL;
    for (int i = 0; i < f->nrec; i++)
        if (f->rec[i].count && (!oldest || f->rec[i].txnid < oldest->txnid))
            oldest = &f->rec[i];
    assert_non_null(oldest);
    uint64_t last = oldest->off + 8 * oldest->count;
    assert_true(oldest->count == 1 || peek_u64(dir, last - 8) > f->doc_pgno[3]); /* order kept */
    poke_u64(dir, last, f->doc_pgno[3]);
    return oldest;
}

static void test_healthy_store_accounted(void **state)
{
    (void)state;
    const char *dir = make_store("fl_healthy");
    found_pages f;
    walk_result r = walk_store(dir, &f);
    print_message("pages 0..%llu: %llu tree, %llu overflow, %llu free in %llu records\n",
                  (unsigned long long)r.last_pgno, (unsigned long long)r.tree_pages,
                  (unsigned long long)r.overflow_pages, (unsigned long long)r.free_pages,
                  (unsigned long long)r.free_records);
    assert_false(walk_damaged(&r));
    assert_int_equal(r.unaccounted, 0);
    assert_true(r.free_records > 0 && r.free_pages > 10);
    assert_int_equal(r.tree_pages + r.overflow_pages + r.free_pages, r.last_pgno - 1);
    for (uint64_t i = 1; i <= NDOCS; i++)
        assert_int_equal(f.doc_pages[i], (DOC_BYTES + 128 + 64 + 64 + 16 - 1) / r.page_bytes + 1);
    cl_store *st = st_open(dir, 0, 0, 0);
    cl_store_verify_result vr;
    assert_int_equal(cl_store_verify(st, NULL, NULL, NULL, &vr), CL_OK);
    assert_int_equal(vr.page_problems, 0);
    assert_false(vr.damaged);
    assert_int_equal(vr.pages, r.last_pgno + 1);
    assert_int_equal(vr.free_pages, r.free_pages);
    assert_int_equal(vr.checked, NDOCS + 1);
    cl_store_close(st);
}

/* The audit's case: a free-list record lists a live page of document 3. */
static void test_free_page_in_use(void **state)
{
    (void)state;
    const char *dir = make_store("fl_inuse");
    found_pages f;
    walk_store(dir, &f);
    assert_true(f.doc_pgno[3] > 0);
    list_doc_page_free(dir, &f);

    /* unchecked, the next writes overwrite document 3 (what verify must prevent) */
    char control[4200];
    snprintf(control, sizeof control, "%s-control", dir);
    copy_store(dir, control);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* LMDB may also abort: a process of its own */
        cl_store *cs = st_open(control, 0, 0, 0);
        for (uint64_t i = 200; i < 204; i++)
            st_put(cs, CL_STORE_KV, i, 3000, 0);
        cl_store_close(cs);
        cl_store_opts ro = {0}; /* look without writing more into the mess */
        ro.flags = CL_STORE_RDONLY;
        if (cl_store_open(control, &ro, &cs))
            _exit(2);
        _exit(st_check(cs, CL_STORE_DOC, 3) == CL_OK ? 1 : 0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    print_message("unchecked write: %s\n", WIFEXITED(status) && WEXITSTATUS(status) == 0
                                                 ? "document 3 overwritten"
                                                 : WIFEXITED(status) ? "document 3 intact"
                                                                     : "LMDB aborted");
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    cl_store *st;

    /* verify reports it, marks the store, changes nothing */
    st = st_open(dir, 0, 0, 0);
    cl_store_verify_result vr;
    assert_int_equal(cl_store_verify(st, NULL, NULL, NULL, &vr), CL_OK);
    assert_true(vr.page_problems > 0);
    assert_true(vr.damaged);
    assert_false(vr.values_skipped);
    assert_int_equal(vr.bad, 0);
    assert_int_equal(vr.removed, 0);
    char want[64];
    snprintf(want, sizeof want, "page %llu is listed free", (unsigned long long)f.doc_pgno[3]);
    int seen = 0;
    for (int i = 0; i < vr.notes; i++)
        seen |= strstr(vr.note[i], want) != NULL;
    if (!seen)
        fail_msg("no note says '%s' (first: %s)", want, vr.note[0]);
    /* this handle refuses writes now */
    assert_int_equal(st_put(st, CL_STORE_KV, 300, 3000, 0), CL_ERR_ARG);
    assert_non_null(strstr(cl_errmsg(), "damaged"));
    assert_non_null(strstr(cl_errmsg(), "collage store recover"));
    assert_non_null(strstr(cl_errmsg(), dir));
    cl_store_writer *w;
    assert_int_equal(cl_store_writer_open(st, NULL, &w), CL_OK); /* opened before: commits refuse */
    cl_key k = st_key(301);
    uint8_t b[100] = {0};
    cl_store_piece pc = {b, sizeof b};
    uint64_t t;
    assert_int_equal(cl_store_writer_put(w, CL_STORE_KV, &k, NULL, &pc, 1, 0, NULL, NULL, &t),
                     CL_OK);
    assert_int_equal(cl_store_writer_wait(w, t), CL_ERR_ARG);
    assert_non_null(strstr(cl_errmsg(), "damaged"));
    assert_int_equal(cl_store_writer_close(w), CL_ERR_ARG);
    assert_true(docs_intact(st));
    cl_store_close(st);

    /* other processes: the marker file */
    char *out = NULL;
    char hex[33];
    cl_key k2 = st_key(2);
    int rc = tu_runf(&out, "'%s' store rm --store '%s' %s 2>&1", tu_bin(), dir, cl_key_hex(&k2, hex));
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "damaged"));
    free(out);
    rc = tu_runf(&out, "'%s' store verify --store '%s' --json 2>/dev/null", tu_bin(), dir);
    assert_int_equal(rc, 1);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "damaged")));
    assert_true(cJSON_GetObjectItem(j, "page_problems")->valueint > 0);
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(j, "page_notes")) > 0);
    assert_non_null(cJSON_GetObjectItem(j, "not_checked"));
    cJSON_Delete(j);
    free(out);
    rc = tu_runf(&out, "'%s' store verify --store '%s' 2>&1 >/dev/null", tu_bin(), dir);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "collage store recover"));
    free(out);
    st = st_open(dir, 0, 0, 0);
    assert_non_null(cl_store_readonly(st));
    assert_true(docs_intact(st));
    cl_store_close(st);

    /* recover: the entries, the pin, the cap; a fresh free list; writable again */
    cl_store_recover_result rr;
    assert_int_equal(cl_store_recover(dir, &rr), CL_OK);
    assert_int_equal(rr.copied, NDOCS + 1);
    assert_int_equal(rr.skipped, 0);
    assert_true(cl_is_dir(rr.old_dir));
    st = st_open(dir, 0, 0, 0);
    assert_null(cl_store_readonly(st));
    assert_true(docs_intact(st));
    assert_int_equal(st_check(st, CL_STORE_SNAP, 7), CL_OK);
    cl_store_stats s;
    assert_int_equal(cl_store_stat(st, &s), CL_OK);
    assert_int_equal(s.total_count, NDOCS + 1);
    assert_int_equal(s.pinned_count, 1);
    assert_int_equal(s.saved_max_bytes, 1ull << 40);
    assert_int_equal(cl_store_verify(st, NULL, NULL, NULL, &vr), CL_OK);
    assert_false(vr.damaged);
    assert_int_equal(vr.page_problems + vr.bad + vr.index_fixed, 0);
    assert_int_equal(st_put(st, CL_STORE_KV, 300, 3000, 0), CL_OK);
    assert_true(docs_intact(st));
    cl_store_close(st);
    assert_int_equal(tu_runf(NULL, "rm -rf '%s' '%s'", rr.old_dir, control), 0);
}

/* Random single-bit flips anywhere in the free-list records' data: reported (then no
 * write happens), or harmless (then writes go on and no document is lost). */
static void test_flipped_bits(void **state)
{
    (void)state;
    const char *dir = make_store("fl_flip");
    found_pages f;
    walk_store(dir, &f);
    char scratch[4200];
    snprintf(scratch, sizeof scratch, "%s-scratch", dir);
    unsigned r = 12345u;
    int reported = 0, harmless = 0;
    for (int trial = 0; trial < 40; trial++) {
        copy_store(dir, scratch);
        r = r * 1103515245u + 12345u;
        const free_rec *rec = &f.rec[(r >> 8) % (unsigned)f.nrec];
        r = r * 1103515245u + 12345u;
        uint64_t byte = (r >> 8) % (8 * (rec->count + 1));
        if (trial < 4) /* a few on the count's low byte */
            byte = 0;
        uint64_t word = rec->off + byte / 8 * 8;
        uint64_t v = peek_u64(scratch, word) ^ (1ull << (8 * (byte % 8) + (r >> 20) % 8));
        poke_u64(scratch, word, v);

        cl_store *st = st_open(scratch, 0, 0, 0);
        cl_store_verify_result vr;
        assert_int_equal(cl_store_verify(st, NULL, NULL, NULL, &vr), CL_OK);
        if (vr.damaged) {
            reported++;
            assert_true(vr.page_problems > 0 && vr.notes > 0);
        } else {
            /* a page dropped from the list: lost space, nothing else */
            harmless++;
            assert_true(vr.pages_unaccounted > 0);
        }
        cl_store_batch *b;
        uint8_t *p = calloc(1, 40000);
        assert_int_equal(cl_store_batch_begin(st, &b), CL_OK);
        for (uint64_t i = 400; i < 420; i++) {
            cl_key k = st_key(i);
            cl_store_piece pc = {p, 1000 + 3000 * (i % 7)};
            assert_int_equal(cl_store_batch_put(b, CL_STORE_KV, &k, NULL, &pc, 1, 0), CL_OK);
        }
        assert_int_equal(cl_store_batch_commit(b), vr.damaged ? CL_ERR_ARG : CL_OK);
        free(p);
        if (!docs_intact(st))
            fail_msg("trial %d (record of txn %llu, byte %llu): a document was lost", trial,
                     (unsigned long long)rec->txnid, (unsigned long long)byte);
        cl_store_close(st);
    }
    print_message("40 flips: %d reported, %d harmless (pages dropped from the list)\n", reported,
                  harmless);
    assert_true(reported > 20);
    assert_int_equal(tu_runf(NULL, "rm -rf '%s'", scratch), 0);
}

/* recover refuses while the store is open, here or in another process. */
static void test_recover_in_use(void **state)
{
    (void)state;
    const char *dir = make_store("fl_busy");
    cl_store *st = st_open(dir, 0, 0, 0);
    cl_store_recover_result rr;
    assert_int_equal(cl_store_recover(dir, &rr), CL_ERR_ARG);
    assert_non_null(strstr(cl_errmsg(), "open in this process"));
    cl_store_close(st);
    int go[2], ready[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(go[1]);
        close(ready[0]);
        cl_store *cs = st_open(dir, 0, 0, 0);
        char c = 1;
        if (write(ready[1], &c, 1) != 1)
            _exit(2);
        if (read(go[0], &c, 1) < 0) /* until the parent closes its end */
            _exit(3);
        cl_store_close(cs);
        _exit(0);
    }
    close(go[0]);
    close(ready[1]);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(cl_store_recover(dir, &rr), CL_ERR_ARG);
    assert_non_null(strstr(cl_errmsg(), "in use by another process"));
    close(go[1]);
    close(ready[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(cl_store_recover(dir, &rr), CL_OK); /* a healthy store: a clean copy */
    assert_int_equal(rr.copied, NDOCS + 1);
    st = st_open(dir, 0, 0, 0);
    assert_true(docs_intact(st));
    cl_store_close(st);
    assert_int_equal(tu_runf(NULL, "rm -rf '%s'", rr.old_dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthy_store_accounted),
        cmocka_unit_test(test_free_page_in_use),
        cmocka_unit_test(test_flipped_bits),
        cmocka_unit_test(test_recover_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
