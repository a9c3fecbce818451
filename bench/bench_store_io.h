/* bench_store_io.h - the streamed-read and write-behind measurements of `collage bench
 * store` (each with its baseline measured in the same run). */
#ifndef CL_BENCH_STORE_IO_H
#define CL_BENCH_STORE_IO_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define BENCH_STREAM_MAX_THREADS 8

typedef struct {
    int threads;
    double dst_gbps;    /* cl_store_stream into a buffer: copy + check per segment */
    double sink_gbps;   /* cl_store_stream to a sink that does nothing: check only */
    double memcpy_gbps; /* the ceiling: memcpy of the same payload from the map into the
                           same buffer with as many threads */
} bench_stream_point;

typedef struct {
    size_t bytes;
    int n;
    bench_stream_point pt[BENCH_STREAM_MAX_THREADS];
} bench_stream_result;

/* Stores one value of `bytes`, reads it (page cache warm) with each thread count, best
 * of `reps`, then deletes it. */
int bench_stream(cl_store *st, size_t bytes, const int *threads, int nthreads, int reps,
                 bench_stream_result *r);

typedef struct {
    double gbps;       /* bytes / (first put .. flush returned) */
    double caller_us;  /* time spent inside cl_store_writer_put, per put */
    double commits;    /* transactions used */
    double late_gbps;  /* the same without early writeback (the pages wait for the sync) */
} bench_writer_result;

/* Puts `count` values of `bytes` (src, handed over without copies) through a writer and
 * flushes, with and without early writeback in alternating passes (best of two each);
 * deletes them after each pass. */
int bench_writer(cl_store *st, const char *what, cl_store_kind kind, const uint8_t *src,
                 size_t bytes, int count, bench_writer_result *r);

#endif
