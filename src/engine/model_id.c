#include "engine/model_id.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/status.h"

/* Total size and newest mtime of the checkpoint's files (config, safetensors, index). */
static void fingerprint(const char *dir, uint64_t *size, int64_t *mtime_ns)
{
    *size = 0;
    *mtime_ns = 0;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        size_t l = strlen(n);
        int relevant = !strcmp(n, "config.json") ||
                       (l > 12 && !strcmp(n + l - 12, ".safetensors")) ||
                       !strcmp(n, "model.safetensors.index.json");
        if (!relevant)
            continue;
        char p[PATH_MAX + 256];
        snprintf(p, sizeof p, "%s/%s", dir, n);
        struct stat st;
        if (stat(p, &st) != 0) /* follows links */
            continue;
        *size += (uint64_t)st.st_size;
        int64_t t = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        if (t > *mtime_ns)
            *mtime_ns = t;
    }
    closedir(d);
}

static void compute(const cl_model *m, cl_key *out)
{
    cl_hasher h;
    cl_hasher_init(&h);
    cl_hasher_update_framed(&h, "collage/model/v1", 16);
    const char *cj = m->cfg->canonical_json ? m->cfg->canonical_json : "";
    cl_hasher_update_framed(&h, cj, strlen(cj));
    const cl_safetensors *st = m->ck.st;
    size_t n = st ? cl_st_count(st) : 0;
    uint64_t done = 0, total = st ? cl_st_total_bytes(st) : 0;
    for (size_t i = 0; i < n; i++) { /* the table is sorted by name */
        const cl_st_tensor *t = cl_st_at(st, i);
        cl_hasher_update_framed(&h, t->name, strlen(t->name));
        int64_t meta[2 + CL_ST_MAX_DIMS] = {t->dtype, t->ndim};
        for (int d = 0; d < t->ndim; d++)
            meta[2 + d] = t->shape[d];
        cl_hasher_update_framed(&h, meta, sizeof meta);
        cl_hasher_update_framed(&h, t->data, t->nbytes);
        done += t->nbytes;
        cl_progress("hashing model", done >> 20, total >> 20);
    }
    cl_progress_end("hashing model");
    cl_hasher_final(&h, out);
}

int cl_model_id(const cl_model *m, cl_store *st, cl_key *out)
{
    char real[PATH_MAX];
    uint64_t size = 0;
    int64_t mtime = 0;
    int cached = st && m->ck.dir && realpath(m->ck.dir, real);
    if (cached) {
        fingerprint(real, &size, &mtime);
        if (cl_store_model_id_lookup(st, real, size, mtime, out) == CL_OK)
            return CL_OK;
    }
    compute(m, out);
    if (cached) {
        int rc = cl_store_model_id_remember(st, real, size, mtime, out);
        if (rc != CL_OK) /* only a cache: the id is right, remembering failed */
            cl_log_warn("%s", cl_errmsg());
    }
    return CL_OK;
}
