/* safetensors.h - memory-mapped safetensors files (single file or a sharded
 * model.safetensors.index.json) with full header validation, and a writer.
 *
 * Reading never copies tensor data: each tensor points into the mapping, which
 * lives until cl_st_close(). Validation rejects a truncated header, text after
 * its JSON object, unknown dtypes, shape dims and data_offsets that are not
 * integers in [0, 2^53], byte ranges out of bounds or overlapping, a dtype x shape
 * that does not match its byte range (or overflows), and a tensor or one of its
 * keys given twice; each error names the file and the tensor.
 */
#ifndef CL_SAFETENSORS_H
#define CL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "common/dtype.h"

#define CL_ST_MAX_DIMS 8

typedef struct {
    const char *name;
    cl_dtype dtype;
    int ndim;
    int64_t shape[CL_ST_MAX_DIMS];
    const void *data; /* into the mapping; may be unaligned for F32 if the writer did so */
    size_t nbytes;
    const char *file; /* the file it came from (for messages) */
} cl_st_tensor;

typedef struct cl_safetensors cl_safetensors;

/* Opens one .safetensors file. */
int cl_st_open_file(const char *path, cl_safetensors **out);
/* Parses a safetensors image held in memory (size bytes at data, which must stay
 * valid and unchanged until cl_st_close); `name` stands for the file in messages. */
int cl_st_open_memory(const char *name, const void *data, size_t size, cl_safetensors **out);
/* Opens a model directory: model.safetensors.index.json if present, else model.safetensors. */
int cl_st_open_dir(const char *dir, cl_safetensors **out);
void cl_st_close(cl_safetensors *st);

size_t cl_st_count(const cl_safetensors *st);
const cl_st_tensor *cl_st_at(const cl_safetensors *st, size_t i);
/* NULL if absent. */
const cl_st_tensor *cl_st_find(const cl_safetensors *st, const char *name);
/* Number of elements of a tensor. */
int64_t cl_st_numel(const cl_st_tensor *t);
/* The total bytes of all tensor data. */
uint64_t cl_st_total_bytes(const cl_safetensors *st);
/* Copies a float tensor into a float32 buffer of numel elements. */
int cl_st_read_f32(const cl_st_tensor *t, float *dst);
/* Path of the first file (or index) opened, for messages. */
const char *cl_st_path(const cl_safetensors *st);

/* ---- writer ---- */
typedef struct cl_st_writer cl_st_writer;

int cl_st_writer_create(cl_st_writer **out);
/* Adds a tensor; data is copied, so the caller may free it right after. */
int cl_st_writer_add(cl_st_writer *w, const char *name, cl_dtype dtype, int ndim,
                     const int64_t *shape, const void *data);
/* Adds metadata (string key/value) to __metadata__. */
int cl_st_writer_meta(cl_st_writer *w, const char *key, const char *value);
/* Writes the file (atomically: temp + rename). Tensors are written in insertion order,
 * data aligned to 64 bytes. */
int cl_st_writer_write(cl_st_writer *w, const char *path);
void cl_st_writer_free(cl_st_writer *w);

/* Streaming writer for large checkpoints: declare all tensors (name, dtype, shape)
 * first, then fill each in declaration order through a callback that writes the
 * tensor bytes in pieces. Used by mkmodel for 8B/32B presets. */
typedef int (*cl_st_fill_fn)(void *ctx, size_t index, void *buf, size_t offset, size_t len);
int cl_st_writer_declare(cl_st_writer *w, const char *name, cl_dtype dtype, int ndim,
                         const int64_t *shape);
int cl_st_writer_stream(cl_st_writer *w, const char *path, cl_st_fill_fn fill, void *ctx);

#endif
