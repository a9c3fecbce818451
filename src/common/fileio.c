#include "common/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/status.h"

int cl_read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cl_err(CL_ERR_IO, "%s: %s", path, strerror(errno));
    int rc = cl_read_stream(f, out, len);
    fclose(f);
    if (rc != CL_OK)
        return cl_err_prefix(rc, "%s", path);
    return CL_OK;
}

int cl_read_stream(void *file, char **out, size_t *len)
{
    FILE *f = file;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        return cl_err(CL_ERR_NOMEM, "out of memory reading input");
    for (;;) {
        if (n == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                return cl_err(CL_ERR_NOMEM, "out of memory reading input");
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                free(buf);
                return cl_err(CL_ERR_IO, "read error: %s", strerror(errno));
            }
            break;
        }
    }
    buf[n] = 0;
    *out = buf;
    if (len)
        *len = n;
    return CL_OK;
}

int cl_write_file_atomic(const char *path, const void *data, size_t len)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return cl_err(e == ENOSPC ? CL_ERR_FULL : CL_ERR_IO, "%s: %s", path, strerror(e));
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            free(tmp);
            return cl_err(e == ENOSPC || e == EFBIG ? CL_ERR_FULL : CL_ERR_IO, "%s: %s", path,
                          strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return cl_err(CL_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return cl_err(CL_ERR_IO, "%s: %s", path, strerror(e));
    }
    free(tmp);
    return CL_OK;
}

int cl_mmap_open(const char *path, cl_mmap *m)
{
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return cl_err(CL_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return cl_err(CL_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return cl_err(CL_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return cl_err(CL_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
        }
        m->data = p;
        m->size = (size_t)st.st_size;
    }
    close(fd);
    return CL_OK;
}

void cl_mmap_close(cl_mmap *m)
{
    if (m->data)
        munmap(m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

int cl_mkdir_p(const char *path, unsigned mode)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return cl_err(CL_ERR_ARG, "%s: bad directory path", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
                return cl_err(CL_ERR_IO, "%s: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    if (!cl_is_dir(path))
        return cl_err(CL_ERR_IO, "%s: not a directory", path);
    return CL_OK;
}

int cl_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int cl_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int cl_path_join(char *out, size_t n, const char *a, const char *b)
{
    int w = snprintf(out, n, "%s/%s", a, b);
    if (w < 0 || (size_t)w >= n)
        return cl_err(CL_ERR_ARG, "%s/%s: path too long", a, b);
    return CL_OK;
}
