#include "common/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
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

/* ---- atomic writes ----------------------------------------------------------
 * Over RLIMIT_FSIZE the kernel raises SIGXFSZ, whose default action kills the
 * process (leaving the temp file behind), and only then fails the write with
 * EFBIG. Each write() therefore runs with SIGXFSZ blocked in the calling thread
 * (the signal is sent to the writing thread); a SIGXFSZ it caused is taken off
 * the pending set before the mask is restored. Nothing process-wide changes, so
 * a library caller's own handling of the signal is left alone. */

struct cl_afile {
    char *path, *tmp;
    int fd;
    int rc; /* first failure (CL_OK while none) */
};

static int write_error(const char *path, int e)
{
    if (e == EFBIG)
        return cl_err(CL_ERR_FULL, "%s: write failed: %s (file size limit?)", path, strerror(e));
    if (e == ENOSPC || e == EDQUOT)
        return cl_err(CL_ERR_FULL, "%s: write failed: %s", path, strerror(e));
    return cl_err(CL_ERR_IO, "%s: write failed: %s", path, strerror(e));
}

/* write() that reports EFBIG instead of letting SIGXFSZ kill the process. */
static ssize_t write_nosigxfsz(int fd, const void *buf, size_t len)
{
    sigset_t xfsz, old, pending;
    sigemptyset(&xfsz);
    sigaddset(&xfsz, SIGXFSZ);
    int was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGXFSZ);
    int masked = pthread_sigmask(SIG_BLOCK, &xfsz, &old) == 0;
    ssize_t w = write(fd, buf, len);
    int e = errno;
    if (masked) {
        if (w < 0 && e == EFBIG && !was_pending) {
            struct timespec zero = {0, 0};
            while (sigtimedwait(&xfsz, NULL, &zero) < 0 && errno == EINTR)
                ;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    errno = e;
    return w;
}

int cl_afile_open(const char *path, cl_afile **out)
{
    *out = NULL;
    cl_afile *f = calloc(1, sizeof *f);
    size_t plen = strlen(path);
    if (!f || !(f->path = strdup(path)) || !(f->tmp = malloc(plen + 32))) {
        if (f)
            free(f->path);
        free(f);
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(f->tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int e = errno;
        free(f->tmp);
        free(f->path);
        free(f);
        return cl_err(e == ENOSPC || e == EDQUOT ? CL_ERR_FULL : CL_ERR_IO, "%s: %s", path,
                      strerror(e));
    }
    *out = f;
    return CL_OK;
}

int cl_afile_write(cl_afile *f, const void *data, size_t len)
{
    if (f->rc != CL_OK)
        return f->rc;
    const char *p = data;
    while (len > 0) {
        ssize_t w = write_nosigxfsz(f->fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return f->rc = write_error(f->path, errno);
        }
        p += w;
        len -= (size_t)w;
    }
    return CL_OK;
}

static void afile_free(cl_afile *f)
{
    free(f->tmp);
    free(f->path);
    free(f);
}

void cl_afile_abort(cl_afile *f)
{
    if (!f)
        return;
    close(f->fd);
    unlink(f->tmp);
    afile_free(f);
}

int cl_afile_commit(cl_afile *f)
{
    int rc = f->rc;
    if (rc == CL_OK && fsync(f->fd) != 0)
        rc = write_error(f->path, errno);
    if (close(f->fd) != 0 && rc == CL_OK)
        rc = write_error(f->path, errno);
    if (rc == CL_OK && rename(f->tmp, f->path) != 0)
        rc = cl_err(CL_ERR_IO, "%s: %s", f->path, strerror(errno));
    if (rc != CL_OK)
        unlink(f->tmp);
    afile_free(f);
    return rc;
}

int cl_write_file_atomic(const char *path, const void *data, size_t len)
{
    cl_afile *f;
    CL_TRY(cl_afile_open(path, &f));
    int rc = cl_afile_write(f, data, len);
    if (rc != CL_OK) {
        cl_afile_abort(f);
        return rc;
    }
    return cl_afile_commit(f);
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
