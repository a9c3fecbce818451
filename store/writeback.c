/* writeback.c - early writeback during a large commit (see internal.h).
 *
 * A commit of gigabytes copies them into the page cache (LMDB's pwrite) and only then
 * syncs: left alone, the kernel keeps the pages dirty until that fdatasync, so the disk
 * idles during the copy and the copy waits during the sync. A helper thread asks the
 * kernel every few milliseconds to start writing whatever is dirty
 * (sync_file_range(SYNC_FILE_RANGE_WRITE): it starts writeback and waits for nothing),
 * so both run at once. LMDB's order is untouched: its fdatasync still precedes the meta
 * page, and a crash leaves what it could leave before. */
#include <fcntl.h>
#include <time.h>

#include "store/internal.h"

#define EARLY_MIN_BYTES (32ull << 20) /* smaller commits: the sync alone is short */
#define EARLY_EVERY_MS 5

static void *kick_main(void *arg)
{
    store_early_wb *k = arg;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        pthread_mutex_unlock(&k->mu);
        /* a hint: errors are the commit's fdatasync's to report */
        (void)sync_file_range(k->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        pthread_mutex_lock(&k->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += EARLY_EVERY_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (!k->stop)
            pthread_cond_timedwait(&k->cv, &k->mu, &ts);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

void store_early_wb_start(store_env *e, uint64_t bytes, store_early_wb *k)
{
    k->on = 0;
    if (bytes < EARLY_MIN_BYTES || mdb_env_get_fd(e->env, &k->fd) != 0 || k->fd < 0)
        return;
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    k->stop = 0;
    if (pthread_create(&k->thread, NULL, kick_main, k)) { /* no helper: a slower commit */
        pthread_mutex_destroy(&k->mu);
        pthread_cond_destroy(&k->cv);
        return;
    }
    k->on = 1;
}

void store_early_wb_stop(store_early_wb *k)
{
    if (!k->on)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    k->on = 0;
}
