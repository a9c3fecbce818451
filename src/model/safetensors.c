#include "model/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/status.h"

#define MAX_HEADER_BYTES (256u << 20)
/* Offsets and dims above 2^53 cannot be exact in a JSON number (a double). */
#define MAX_EXACT 9007199254740992.0

typedef struct {
    char *path;
    cl_mmap map;
    int borrowed; /* map.data belongs to the caller (cl_st_open_memory) */
} st_file;

struct cl_safetensors {
    char *path;
    st_file *files;
    size_t nfiles;
    cl_st_tensor *tensors; /* sorted by name */
    size_t ntensors;
};

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp(((const cl_st_tensor *)a)->name, ((const cl_st_tensor *)b)->name);
}

typedef struct {
    uint64_t begin, end;
    const char *name;
} range;

static int cmp_range(const void *a, const void *b)
{
    const range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : (x->end > y->end);
}

int64_t cl_st_numel(const cl_st_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

static int push_tensor(cl_safetensors *st, size_t *cap, const cl_st_tensor *t)
{
    if (st->ntensors == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        cl_st_tensor *nt = realloc(st->tensors, nc * sizeof *nt);
        if (!nt)
            return cl_err(CL_ERR_NOMEM, "out of memory (safetensors table)");
        st->tensors = nt;
        *cap = nc;
    }
    st->tensors[st->ntensors++] = *t;
    return CL_OK;
}

/* Reads element i of a header array as an integer in [0, 2^53]: a fractional,
 * negative or huge value is an error naming the file, the tensor and the field. */
static int header_uint(const cJSON *arr, int i, const char *path, const char *tensor,
                       const char *field, uint64_t *out)
{
    const cJSON *v = cJSON_GetArrayItem(arr, i);
    if (!cJSON_IsNumber(v))
        return cl_err(CL_ERR_FORMAT, "%s: tensor '%s': %s[%d]: expected an integer", path,
                      tensor, field, i);
    double d = v->valuedouble;
    if (d != floor(d)) /* also NaN and inf */
        return cl_err(CL_ERR_FORMAT, "%s: tensor '%s': %s[%d] = %.17g: expected an integer", path,
                      tensor, field, i, d);
    if (d < 0 || d > MAX_EXACT)
        return cl_err(CL_ERR_FORMAT, "%s: tensor '%s': %s[%d] = %.17g out of range [0, 2^53]",
                      path, tensor, field, i, d);
    *out = (uint64_t)d;
    return CL_OK;
}

/* A key the object has twice (readers disagree on which one counts), or NULL. Only
 * for the few keys of a tensor entry: tensor names are checked by finish(). */
static const char *repeated_key(const cJSON *obj)
{
    for (const cJSON *a = obj->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (!strcmp(a->string, b->string))
                return a->string;
    return NULL;
}

/* Parses and validates one mapped file; appends its tensors (all, or only those
 * whose name is in `only` if non-NULL: used by the sharded index). */
static int parse_file(cl_safetensors *st, size_t *cap, st_file *f)
{
    const char *path = f->path;
    const unsigned char *base = f->map.data;
    size_t size = f->map.size;
    if (size < 8)
        return cl_err(CL_ERR_FORMAT, "%s: safetensors header is truncated (file is %zu bytes)",
                      path, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | base[i];
    if (hlen > size - 8)
        return cl_err(CL_ERR_FORMAT,
                      "%s: safetensors header is truncated (header claims %llu bytes, file "
                      "has %zu after the length)",
                      path, (unsigned long long)hlen, size - 8);
    if (hlen > MAX_HEADER_BYTES)
        return cl_err(CL_ERR_FORMAT, "%s: safetensors header of %llu bytes is too large", path,
                      (unsigned long long)hlen);
    size_t first = st->ntensors;
    const char *text = (const char *)base + 8, *end = NULL;
    cJSON *h = cJSON_ParseWithLengthOpts(text, (size_t)hlen, &end, 0);
    if (!h)
        return cl_err(CL_ERR_FORMAT, "%s: safetensors header is not valid JSON (at byte %lld)",
                      path, end && end >= text ? (long long)(end - text) + 8 : -1LL);
    int rc = CL_OK;
    if (!cJSON_IsObject(h)) {
        rc = cl_err(CL_ERR_FORMAT, "%s: safetensors header is not a JSON object", path);
        goto out;
    }
    for (; end < text + hlen; end++) /* the writer pads with spaces; nothing else may follow */
        if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
            rc = cl_err(CL_ERR_FORMAT, "%s: safetensors header has text after its JSON object "
                        "(at byte %lld)", path, (long long)(end - text) + 8);
            goto out;
        }
    const unsigned char *data = base + 8 + hlen;
    uint64_t data_size = size - 8 - hlen;
    for (cJSON *e = h->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__"))
            continue;
        cl_st_tensor t = {0};
        t.name = e->string;
        t.file = path;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsObject(e) || !cJSON_IsString(dt) || !cJSON_IsArray(shape) ||
            !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2) {
            rc = cl_err(CL_ERR_FORMAT,
                        "%s: tensor '%s': header entry needs dtype, shape and data_offsets",
                        path, e->string);
            goto out;
        }
        const char *field = repeated_key(e);
        if (field) {
            rc = cl_err(CL_ERR_FORMAT, "%s: tensor '%s': key '%s' appears twice", path,
                        e->string, field);
            goto out;
        }
        int dtype = cl_dtype_from_name(dt->valuestring);
        if (dtype < 0) {
            rc = cl_err(CL_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%.64s'", path, e->string,
                        dt->valuestring);
            goto out;
        }
        t.dtype = (cl_dtype)dtype;
        int nd = cJSON_GetArraySize(shape);
        if (nd > CL_ST_MAX_DIMS) {
            rc = cl_err(CL_ERR_FORMAT, "%s: tensor '%s': %d dimensions (max %d)", path,
                        e->string, nd, CL_ST_MAX_DIMS);
            goto out;
        }
        t.ndim = nd;
        uint64_t numel = 1, esize = cl_dtype_size(t.dtype);
        for (int i = 0; i < nd; i++) {
            uint64_t dim;
            if ((rc = header_uint(shape, i, path, e->string, "shape", &dim)) != CL_OK)
                goto out;
            t.shape[i] = (int64_t)dim;
            if (dim && numel > UINT64_MAX / esize / dim) {
                rc = cl_err(CL_ERR_FORMAT, "%s: tensor '%s': shape too large (bytes overflow)",
                            path, e->string);
                goto out;
            }
            numel *= dim;
        }
        uint64_t begin, end;
        if ((rc = header_uint(offs, 0, path, e->string, "data_offsets", &begin)) != CL_OK ||
            (rc = header_uint(offs, 1, path, e->string, "data_offsets", &end)) != CL_OK)
            goto out;
        if (end < begin) {
            rc = cl_err(CL_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before "
                        "they begin", path, e->string, (unsigned long long)begin,
                        (unsigned long long)end);
            goto out;
        }
        if (end > data_size) {
            rc = cl_err(CL_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] out of bounds (data "
                        "region is %llu bytes)",
                        path, e->string, (unsigned long long)begin, (unsigned long long)end,
                        (unsigned long long)data_size);
            goto out;
        }
        uint64_t need = numel * esize;
        if (end - begin != need) {
            char shp[128];
            int o = snprintf(shp, sizeof shp, "[");
            for (int k = 0; k < nd && o < (int)sizeof shp - 24; k++)
                o += snprintf(shp + o, sizeof shp - (size_t)o, "%s%lld", k ? "," : "",
                              (long long)t.shape[k]);
            snprintf(shp + o, sizeof shp - (size_t)o, "]");
            rc = cl_err(CL_ERR_FORMAT,
                        "%s: tensor '%s': dtype %s x shape %s needs %llu bytes but its byte "
                        "range holds %llu",
                        path, e->string, cl_dtype_name(t.dtype), shp, (unsigned long long)need,
                        (unsigned long long)(end - begin));
            goto out;
        }
        t.data = data + begin;
        t.nbytes = (size_t)need;
        t.name = strdup(e->string);
        if (!t.name || push_tensor(st, cap, &t) != CL_OK) {
            free((char *)t.name);
            rc = cl_err(CL_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    /* overlap check over this file's tensors */
    size_t n = st->ntensors - first;
    if (n > 1) {
        range *r = malloc(n * sizeof *r);
        if (!r) {
            rc = cl_err(CL_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            const cl_st_tensor *t = &st->tensors[first + i];
            r[i].begin = (uint64_t)((const unsigned char *)t->data - data);
            r[i].end = r[i].begin + t->nbytes;
            r[i].name = t->name;
        }
        qsort(r, n, sizeof *r, cmp_range);
        /* sorted by start: a range overlaps an earlier one iff it starts before the
         * furthest end so far (empty ranges overlap nothing) */
        size_t far = n;
        for (size_t i = 0; i < n; i++) {
            if (r[i].end == r[i].begin)
                continue;
            if (far < n && r[i].begin < r[far].end) {
                rc = cl_err(CL_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", path,
                            r[far].name, r[i].name);
                free(r);
                goto out;
            }
            if (far == n || r[i].end > r[far].end)
                far = i;
        }
        free(r);
    }
out:
    if (rc != CL_OK) {
        for (size_t i = first; i < st->ntensors; i++)
            free((char *)st->tensors[i].name);
        st->ntensors = first;
    }
    cJSON_Delete(h);
    return rc;
}

void cl_st_close(cl_safetensors *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->ntensors; i++)
        free((char *)st->tensors[i].name);
    free(st->tensors);
    for (size_t i = 0; i < st->nfiles; i++) {
        if (!st->files[i].borrowed)
            cl_mmap_close(&st->files[i].map);
        free(st->files[i].path);
    }
    free(st->files);
    free(st->path);
    free(st);
}

/* A git checkout without symlink support stores a link as a small text file
 * holding the target path (the golden gka_iter* checkpoints arrive that way).
 * If `path` is such a file naming an existing file, writes the target to out. */
static int follow_text_link(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char buf[1024];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    int more = fgetc(f) != EOF;
    fclose(f);
    if (more || len < 1 || len >= sizeof buf - 1)
        return 0;
    buf[len] = 0;
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)buf[i] < 0x20)
            return 0;
    if (!strstr(buf, ".safetensors"))
        return 0;
    const char *slash = strrchr(path, '/');
    if (buf[0] == '/')
        snprintf(out, n, "%s", buf);
    else if (slash)
        snprintf(out, n, "%.*s/%s", (int)(slash - path), path, buf);
    else
        snprintf(out, n, "%s", buf);
    return cl_is_file(out);
}

static int add_file(cl_safetensors *st, size_t *cap, const char *path)
{
    char target[4096];
    if (follow_text_link(path, target, sizeof target))
        path = target;
    st_file *nf = realloc(st->files, (st->nfiles + 1) * sizeof *nf);
    if (!nf)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    st->files = nf;
    st_file *f = &st->files[st->nfiles];
    f->path = strdup(path);
    if (!f->path)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    if (cl_mmap_open(path, &f->map) != CL_OK) {
        free(f->path);
        return CL_ERR_IO;
    }
    st->nfiles++;
    return parse_file(st, cap, f);
}

static int finish(cl_safetensors *st, const char *what)
{
    if (st->ntensors)
        qsort(st->tensors, st->ntensors, sizeof *st->tensors, cmp_tensor_name);
    for (size_t i = 1; i < st->ntensors; i++)
        if (!strcmp(st->tensors[i].name, st->tensors[i - 1].name))
            return cl_err(CL_ERR_FORMAT, "%s: tensor '%s' appears twice", what,
                          st->tensors[i].name);
    return CL_OK;
}

int cl_st_open_file(const char *path, cl_safetensors **out)
{
    cl_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        return cl_err(CL_ERR_NOMEM, "out of memory");
    }
    size_t cap = 0;
    int rc = add_file(st, &cap, path);
    if (rc == CL_OK)
        rc = finish(st, path);
    if (rc != CL_OK) {
        cl_st_close(st);
        return rc;
    }
    *out = st;
    return CL_OK;
}

int cl_st_open_memory(const char *name, const void *data, size_t size, cl_safetensors **out)
{
    cl_safetensors *st = calloc(1, sizeof *st);
    st_file *f = calloc(1, sizeof *f);
    if (!st || !f || !(st->path = strdup(name)) || !(f->path = strdup(name))) {
        if (st)
            free(st->path);
        if (f)
            free(f->path);
        free(st);
        free(f);
        return cl_err(CL_ERR_NOMEM, "out of memory");
    }
    f->map.data = (void *)data;
    f->map.size = size;
    f->borrowed = 1;
    st->files = f;
    st->nfiles = 1;
    size_t cap = 0;
    int rc = parse_file(st, &cap, f);
    if (rc == CL_OK)
        rc = finish(st, name);
    if (rc != CL_OK) {
        cl_st_close(st);
        return rc;
    }
    *out = st;
    return CL_OK;
}

int cl_st_open_dir(const char *dir, cl_safetensors **out)
{
    char idx[4096], single[4096];
    CL_TRY(cl_path_join(idx, sizeof idx, dir, "model.safetensors.index.json"));
    CL_TRY(cl_path_join(single, sizeof single, dir, "model.safetensors"));
    if (!cl_is_file(idx)) {
        if (!cl_is_file(single))
            return cl_err(CL_ERR_IO,
                          "%s: no model.safetensors or model.safetensors.index.json in the "
                          "model directory",
                          dir);
        return cl_st_open_file(single, out);
    }
    cJSON *j;
    CL_TRY(cl_json_load(idx, &j));
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(j);
        return cl_err(CL_ERR_FORMAT, "%s: missing object 'weight_map'", idx);
    }
    cl_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(idx))) {
        free(st);
        cJSON_Delete(j);
        return cl_err(CL_ERR_NOMEM, "out of memory");
    }
    size_t cap = 0;
    int rc = CL_OK;
    for (cJSON *e = wm->child; e && rc == CL_OK; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || !e->valuestring[0]) {
            rc = cl_err(CL_ERR_FORMAT, "%s: weight_map entry '%s' is not a shard file name", idx,
                        e->string);
            break;
        }
        int seen = 0;
        for (size_t i = 0; i < st->nfiles && !seen; i++) {
            const char *b = strrchr(st->files[i].path, '/');
            seen = !strcmp(b ? b + 1 : st->files[i].path, e->valuestring);
        }
        if (seen)
            continue;
        char shard[4096];
        rc = cl_path_join(shard, sizeof shard, dir, e->valuestring);
        if (rc == CL_OK)
            rc = add_file(st, &cap, shard);
    }
    if (rc == CL_OK)
        rc = finish(st, idx);
    /* every name in the weight map must be present in the shard it names */
    for (cJSON *e = wm->child; e && rc == CL_OK; e = e->next) {
        const cl_st_tensor *t = cl_st_find(st, e->string);
        const char *b = t ? strrchr(t->file, '/') : NULL;
        if (!t || strcmp(b ? b + 1 : t->file, e->valuestring))
            rc = cl_err(CL_ERR_FORMAT, "%s: tensor '%s' is not in shard %s", idx, e->string,
                        e->valuestring);
    }
    cJSON_Delete(j);
    if (rc != CL_OK) {
        cl_st_close(st);
        return rc;
    }
    *out = st;
    return CL_OK;
}

size_t cl_st_count(const cl_safetensors *st) { return st->ntensors; }

const cl_st_tensor *cl_st_at(const cl_safetensors *st, size_t i)
{
    return i < st->ntensors ? &st->tensors[i] : NULL;
}

const cl_st_tensor *cl_st_find(const cl_safetensors *st, const char *name)
{
    cl_st_tensor key = {.name = name};
    return bsearch(&key, st->tensors, st->ntensors, sizeof key, cmp_tensor_name);
}

uint64_t cl_st_total_bytes(const cl_safetensors *st)
{
    uint64_t n = 0;
    for (size_t i = 0; i < st->ntensors; i++)
        n += st->tensors[i].nbytes;
    return n;
}

const char *cl_st_path(const cl_safetensors *st) { return st->path; }

int cl_st_read_f32(const cl_st_tensor *t, float *dst)
{
    if (!cl_dtype_is_float(t->dtype))
        return cl_err(CL_ERR_FORMAT, "%s: tensor '%s': expected a float dtype, found %s", t->file,
                      t->name, cl_dtype_name(t->dtype));
    cl_convert_to_f32(dst, t->data, t->dtype, (size_t)cl_st_numel(t));
    return CL_OK;
}
