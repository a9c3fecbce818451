/* fileio.h - whole-file reads, atomic writes, read-only memory maps. */
#ifndef CL_FILEIO_H
#define CL_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Reads all of `path` into a malloc'd buffer (NUL-terminated; *len excludes the NUL). */
int cl_read_file(const char *path, char **out, size_t *len);
/* Reads all of a stream (stdin) into a malloc'd NUL-terminated buffer. */
int cl_read_stream(void *file, char **out, size_t *len);
/* Writes `len` bytes to `path` via a temp file + fsync + rename: readers never see a
 * partial file. Any failure removes the temp file and leaves `path` as it was. */
int cl_write_file_atomic(const char *path, const void *data, size_t len);

/* The same in pieces, for large files: open creates PATH.tmp.<pid>; writes go to
 * it; commit fsyncs, closes and renames it over PATH; abort removes it. Both end
 * the cl_afile (commit also on failure, removing the temp file). A write over the
 * file-size limit (RLIMIT_FSIZE) or the disk's space is CL_ERR_FULL naming PATH:
 * SIGXFSZ is held off in the writing thread instead of killing the process.
 * After a failed write every later write and the commit return that failure. */
typedef struct cl_afile cl_afile;
int cl_afile_open(const char *path, cl_afile **out);
int cl_afile_write(cl_afile *f, const void *data, size_t len);
int cl_afile_commit(cl_afile *f);
void cl_afile_abort(cl_afile *f);

typedef struct {
    void *data;
    size_t size;
} cl_mmap;

/* Maps `path` read-only. An empty file maps to data=NULL, size=0. */
int cl_mmap_open(const char *path, cl_mmap *m);
void cl_mmap_close(cl_mmap *m);

/* mkdir -p with the given mode. */
int cl_mkdir_p(const char *path, unsigned mode);
/* 1 if path is an existing directory / regular file. */
int cl_is_dir(const char *path);
int cl_is_file(const char *path);
/* Joins a and b with '/' into out (size n); error if it does not fit. */
int cl_path_join(char *out, size_t n, const char *a, const char *b);

#endif
