/* test_crash - a writer process killed with SIGKILL at random moments (50 trials on one
 * store, including during its creation) leaves a store that `collage store verify`
 * finds clean, whose every listed entry is readable and right, and which holds the
 * last batch the writer reported committed. The same with write-behind (25 trials on
 * another store, killed while its thread commits groups): every put reported done is
 * there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fileio.h"
#include "testutil.h"
#include "storetest.h"

#define TRIALS 50
#define WB_TRIALS 25

static cl_store_kind kind_of(uint64_t seq) { return (cl_store_kind)(1 + seq % 3); }
static size_t size_of(uint64_t seq) { return (size_t)(1024 + (seq * 2654435761u) % (600 * 1024)); }
static size_t wb_size_of(uint64_t seq) { return (size_t)(1024 + (seq * 2654435761u) % (200 * 1024)); }

/* Writes batches of 1-4 values forever (deleting, pinning and reading some older
 * ones), reporting each committed batch (first seq, count) on fd. */
static void writer(const char *dir, uint64_t seq, int fd)
{
    cl_store *st = st_open(dir, 16 * MIB, 4 * MIB, 0);
    uint8_t *buf = malloc(600 * 1024 + 1024);
    unsigned r = (unsigned)seq;
    for (;;) {
        r = r * 1103515245u + 12345u;
        uint64_t k = 1 + (r >> 16) % 4;
        cl_store_batch *b;
        if (cl_store_batch_begin(st, &b))
            _exit(3);
        uint64_t metas[4];
        for (uint64_t j = 0; j < k; j++) {
            uint64_t s = seq + j;
            size_t n = size_of(s);
            st_fill(buf, n, s);
            metas[j] = s;
            cl_store_info info = {0};
            info.tokens = (int64_t)s;
            info.meta = &metas[j];
            info.meta_bytes = 8;
            cl_store_piece pcs[2] = {{buf, n / 3}, {buf + n / 3, n - n / 3}};
            cl_key key = st_key(s);
            if (cl_store_batch_put(b, kind_of(s), &key, &info, pcs, 2, CL_STORE_PUT_COPY))
                _exit(4);
        }
        if (seq % 4 == 0 && seq >= 20) {
            cl_key old = st_key(seq - 20);
            cl_store_batch_del(b, kind_of(seq - 20), &old);
        }
        if (seq % 7 == 0 && seq >= 10) {
            cl_key old = st_key(seq - 10);
            cl_store_batch_pin(b, kind_of(seq - 10), &old, (seq / 7) % 2);
        }
        if (cl_store_batch_commit(b)) {
            print_message("writer: %s\n", cl_errmsg());
            _exit(5);
        }
        uint64_t rep[2] = {seq, k};
        if (write(fd, rep, sizeof rep) != sizeof rep)
            _exit(6);
        if (seq >= 3)
            st_check(st, kind_of(seq - 3), seq - 3); /* reads leave use records */
        seq += k;
    }
}

typedef struct {
    cl_store_kind kind[4096];
    cl_key key[4096];
    int n;
} listing;

static int collect(void *user, const cl_store_entry *e)
{
    listing *l = user;
    if (l->n < 4096) {
        l->kind[l->n] = e->kind;
        l->key[l->n] = e->key;
        l->n++;
    }
    return 0;
}

/* Reads an entry and checks it against the value its meta (seq) says it is. */
static void check_entry(cl_store *st, cl_store_kind kind, const cl_key *key, int trial,
                        size_t (*size_fn)(uint64_t))
{
    cl_store_txn *t;
    assert_int_equal(cl_store_txn_begin(st, &t), CL_OK);
    cl_store_value v;
    int rc = cl_store_get(t, kind, key, &v);
    if (rc != CL_OK)
        fail_msg("trial %d: listed entry not readable: %s", trial, cl_errmsg());
    uint64_t seq;
    assert_int_equal(v.info.meta_bytes, 8);
    memcpy(&seq, v.info.meta, 8);
    cl_key want = st_key(seq);
    assert_true(cl_key_eq(&want, key));
    assert_int_equal(kind, kind_of(seq));
    assert_int_equal(v.payload_bytes, size_fn(seq));
    uint8_t *p = malloc(v.payload_bytes);
    st_fill(p, v.payload_bytes, seq);
    assert_true(memcmp(p, v.payload, v.payload_bytes) == 0);
    free(p);
    cl_store_txn_end(t);
}

/* After a kill: verify (CLI) is clean, every listed entry is right, and seq
 * [first, first + n) is readable. */
static void check_store(const char *dir, int trial, uint64_t first, uint64_t n,
                        size_t (*size_fn)(uint64_t))
{
    char data[4200];
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    if (!cl_is_file(data))
        return; /* killed before LMDB created its file */
    char *out = NULL;
    int rc = tu_runf(&out, "'%s' store verify --store '%s' --json", tu_bin(), dir);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    if (rc != 0 || !j || !cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")))
        fail_msg("trial %d: verify exit %d: %s", trial, rc, out ? out : "(no output)");
    cJSON_Delete(j);
    free(out);

    cl_store *st = st_open(dir, 0, 0, 0);
    listing *l = calloc(1, sizeof *l);
    assert_int_equal(cl_store_list(st, 0, collect, l), CL_OK);
    for (int i = 0; i < l->n; i++)
        check_entry(st, l->kind[i], &l->key[i], trial, size_fn);
    free(l);
    for (uint64_t s = first; s < first + n; s++)
        if (st_check(st, kind_of(s), s) != CL_OK)
            fail_msg("trial %d: committed value %llu lost", trial, (unsigned long long)s);
    cl_store_close(st);
}

static void test_sigkill_writer(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("crash");
    unsigned r = 20240601u;
    int killed_with_data = 0;
    for (int trial = 0; trial < TRIALS; trial++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            writer(dir, (uint64_t)trial * 100000, fds[1]);
            _exit(7);
        }
        close(fds[1]);
        r = r * 1103515245u + 12345u;
        uint64_t rep[2], last[2] = {0, 0};
        int have_last = 0;
        /* Every 5th trial (the first one creates the store) dies 0-20 ms after fork,
         * maybe while opening; the others once the first batch is in, 0-30 ms later
         * (so a slow machine or a sanitizer build still kills mid-writing). */
        long delay_us = (long)((r >> 8) % 20000);
        if (trial % 5) {
            if (read(fds[0], rep, sizeof rep) == sizeof rep) {
                memcpy(last, rep, sizeof rep);
                have_last = 1;
            }
            delay_us = (long)((r >> 8) % 30000);
        }
        struct timespec ts = {0, delay_us * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status))
            fail_msg("trial %d: writer exited by itself (code %d)", trial, WEXITSTATUS(status));
        while (read(fds[0], rep, sizeof rep) == sizeof rep) {
            memcpy(last, rep, sizeof rep);
            have_last = 1;
        }
        close(fds[0]);
        killed_with_data += have_last;

        check_store(dir, trial, have_last ? last[0] : 0, have_last ? last[1] : 0, size_of);
    }
    assert_true(killed_with_data > TRIALS / 2);
}


/* ---- write-behind -------------------------------------------------------------------- */

static int report_fd;

typedef struct {
    uint64_t seq;
    uint8_t *buf; /* handed over (zero-copy), freed when done */
} wb_put;

static void wb_done(void *user, uint64_t ticket, int status, const char *message)
{
    (void)ticket;
    wb_put *p = user;
    if (status != CL_OK) {
        print_message("write-behind: %s\n", message);
        _exit(8);
    }
    uint64_t rep[2] = {p->seq, 1};
    if (write(report_fd, rep, sizeof rep) != sizeof rep)
        _exit(6);
    free(p->buf);
    free(p);
}

/* Queues values forever (every third one handed over without a copy), small groups
 * committed every few ms; reports each put when its callback says done. */
static void wb_writer(const char *dir, uint64_t seq, int fd)
{
    report_fd = fd;
    cl_store *st = st_open(dir, 0, 4 * MIB, 0);
    cl_store_writer_opts o = {0};
    o.commit_bytes = 1 * MIB;
    o.commit_ms = 3;
    o.queue_bytes = 4 * MIB;
    cl_store_writer *w;
    if (cl_store_writer_open(st, &o, &w))
        _exit(3);
    uint8_t *tmp = malloc(200 * 1024 + 1024);
    for (;; seq++) {
        size_t n = wb_size_of(seq);
        wb_put *p = calloc(1, sizeof *p);
        p->seq = seq;
        uint8_t *data = tmp;
        if (seq % 3 == 0)
            data = p->buf = malloc(n);
        st_fill(data, n, seq);
        cl_store_info info = {0};
        info.tokens = (int64_t)seq;
        info.meta = &seq;
        info.meta_bytes = 8;
        cl_store_piece pc = {data, n};
        cl_key key = st_key(seq);
        if (cl_store_writer_put(w, kind_of(seq), &key, &info, &pc, 1,
                                p->buf ? 0 : CL_STORE_PUT_COPY, wb_done, p, NULL))
            _exit(4);
        if (seq % 16 == 0 && seq >= 40)
            st_check(st, kind_of(seq - 40), seq - 40); /* reads meanwhile */
    }
}

static void test_sigkill_writeback(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("crash_wb");
    unsigned r = 20240915u;
    int killed_with_data = 0;
    uint64_t *seen = malloc(sizeof(uint64_t) * 200000), total_seen = 0;
    for (int trial = 0; trial < WB_TRIALS; trial++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            wb_writer(dir, (uint64_t)trial * 100000 + 1, fds[1]);
            _exit(7);
        }
        close(fds[1]);
        r = r * 1103515245u + 12345u;
        size_t nseen = 0;
        uint64_t rep[2];
        if (trial % 5 && read(fds[0], rep, sizeof rep) == sizeof rep)
            seen[nseen++] = rep[0];
        struct timespec ts = {0, (long)((r >> 8) % 30000) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status))
            fail_msg("trial %d: writer exited by itself (code %d)", trial, WEXITSTATUS(status));
        while (read(fds[0], rep, sizeof rep) == sizeof rep && nseen < 200000)
            seen[nseen++] = rep[0];
        close(fds[0]);
        killed_with_data += nseen > 0;
        total_seen += nseen;
        check_store(dir, trial, 0, 0, wb_size_of);
        cl_store *st = st_open(dir, 0, 0, 0);
        for (size_t i = 0; i < nseen; i++)
            if (st_check(st, kind_of(seen[i]), seen[i]) != CL_OK)
                fail_msg("trial %d: put %llu was reported done but is not readable", trial,
                         (unsigned long long)seen[i]);
        cl_store_close(st);
    }
    free(seen);
    print_message("write-behind: %d of %d trials killed after puts were reported done, %llu "
                  "puts checked\n", killed_with_data, WB_TRIALS, (unsigned long long)total_seen);
    assert_true(killed_with_data > WB_TRIALS / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_writer),
        cmocka_unit_test(test_sigkill_writeback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
