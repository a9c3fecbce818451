/* kv_io.h - a sequence's KV rows to and from bytes in the state layout, at bus speed.
 *
 * The state layout of n KV slots is, for each attention layer, K [n][Hkv][D] then
 * V [n][Hkv][D] (state.h). Restores arrive as a stream of bytes from any number of
 * threads (the store's verified parallel reads, or a parallel copy from host memory);
 * the pump copies them into page-locked staging chunks and, as soon as a chunk is
 * complete, the calling thread uploads it together with its row map and has the
 * backend move every row to its page in one call (no per-page work, no synchronous
 * step per block). Reading, copying and the bus transfer overlap. The same staging
 * gathers rows for a store (pages -> staging -> host memory).
 *
 * A pump belongs to one cache and is used by one thread at a time (the one that owns
 * the cache), apart from cl_kv_pump_write, which the producers call from theirs. */
#ifndef CL_KV_IO_H
#define CL_KV_IO_H

#include <stddef.h>
#include <stdint.h>

#include "engine/seq.h"

typedef struct cl_kv_pump cl_kv_pump;

/* Stream bytes [offset, offset + kv bytes of n slots) are the KV of seq's slots
 * [t0, t0 + n) in the state layout (pages must be reserved). */
typedef struct {
    uint64_t offset;
    cl_seq *seq;
    int64_t t0, n;
} cl_kv_range;

/* Stream bytes [offset, offset + bytes) are copied to host memory dst (headers, SSM
 * states: what is not KV). */
typedef struct {
    uint64_t offset, bytes;
    void *dst;
} cl_side_range;

/* Produces the stream by calling cl_kv_pump_write (from this thread or others it
 * starts); returns CL_OK or a status (message set). */
typedef int (*cl_kv_produce_fn)(void *user, cl_kv_pump *p);

/* chunk_bytes: staging chunk (0: 8 MiB, rounded to whole KV rows); n_chunks in the
 * ring (0: 16). Staging is allocated on first use and kept. */
int cl_kv_pump_create(cl_cache *c, size_t chunk_bytes, int n_chunks, cl_kv_pump **out);
void cl_kv_pump_free(cl_kv_pump *p);

/* Runs produce on a thread of its own while this thread moves every completed chunk of
 * KV bytes to the pages of its ranges (ranges sorted by offset, not overlapping) and
 * side ranges are copied as their bytes arrive. Every byte of every range must be
 * written exactly once. On failure the ranges' slots hold partial data (reset them). */
int cl_kv_pump_run(cl_kv_pump *p, const cl_kv_range *kv, int n_kv, const cl_side_range *side,
                   int n_side, cl_kv_produce_fn produce, void *user);
/* Hands over stream bytes [offset, offset + bytes); thread-safe; blocks while the
 * staging ring is full. Fails (status set) once the run has failed. */
int cl_kv_pump_write(cl_kv_pump *p, uint64_t offset, const void *data, size_t bytes);

/* Gathers slots [t0, t0 + n) of s into host (the state layout), chunk by chunk,
 * copying each out while the next is on the bus. */
int cl_kv_pump_read(cl_kv_pump *p, const cl_seq *s, int64_t t0, int64_t n, void *host);

/* A page-locked host buffer of at least `bytes`, kept by the pump (grown as needed; one
 * user at a time, like the pump): what is not KV (SSM states) moves at bus speed too. */
int cl_kv_pump_host_buffer(cl_kv_pump *p, size_t bytes, void **out);

/* The cache's own pump (made on first use, freed with the cache). */
int cl_kv_pump_of(cl_cache *c, cl_kv_pump **out);
/* KV slots [t0, t0 + n) of s from / to host memory in the state layout, through the
 * cache's pump (write reserves the pages; neither moves kv_len). */
int cl_kv_write_host(cl_seq *s, int64_t t0, int64_t n, const void *host);
int cl_kv_read_host(const cl_seq *s, int64_t t0, int64_t n, void *host);

#endif
