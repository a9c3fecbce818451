#include "bench_models.h"

#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "bench_tp.h"
#include "mkmodel/model_random.h"

int bench_parse_list(const char *s, int64_t *out, int max)
{
    int n = 0;
    while (s && *s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || (*end && *end != ',') || n == max)
            return -1;
        out[n++] = v;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

int bench_each_model(const char *presets, const char *backend, int64_t layers,
                     const int64_t *iters, int n_iters, bench_model_fn fn, void *user)
{
    return bench_each_model_tp(presets, backend, layers, 0, 0, iters, n_iters, fn, user);
}

/* The model of one preset: made in backend memory (tp 0), or loaded over tp ranks from
 * a host-memory checkpoint (bench_tp.h; *im is then the image, freed after the model). */
static int make_model(const cl_random_model_opts *mo, int tp, cl_model **m, bench_image **im)
{
    *im = NULL;
    if (tp <= 0)
        return cl_model_create_random(mo, m);
    CL_TRY(bench_image_create(mo, im));
    int rc = bench_image_model(*im, mo->backend, mo->threads, tp, -1, m);
    if (rc != CL_OK) {
        bench_image_free(*im);
        *im = NULL;
    }
    return rc;
}

int bench_each_model_tp(const char *presets, const char *backend, int64_t layers, int tp,
                        int threads, const int64_t *iters, int n_iters, bench_model_fn fn,
                        void *user)
{
    char *plist = strdup(presets);
    if (!plist)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    int rc = CL_OK;
    for (char *save = NULL, *p = strtok_r(plist, ",", &save); p && rc == CL_OK;
         p = strtok_r(NULL, ",", &save)) {
        cl_random_model_opts mo;
        cl_random_model_opts_default(&mo);
        mo.preset = p;
        mo.backend = backend;
        mo.dtype = "bfloat16";
        mo.layers = layers;
        mo.seed = 1;
        mo.threads = threads;
        cl_model *m = NULL;
        bench_image *im = NULL;
        if ((rc = make_model(&mo, tp, &m, &im)) != CL_OK)
            break;
        int gka = 0;
        for (int64_t l = 0; l < m->cfg->num_layers; l++)
            gka |= m->cfg->layer_types[l] == CL_LAYER_GKA;
        for (int it = 0; it < (gka ? n_iters : 1) && rc == CL_OK; it++) {
            if (gka)
                bench_tp_set_num_iter(m, iters[it]);
            rc = fn(user, m, p, gka ? iters[it] : 0, it);
        }
        cl_model_free(m);
        bench_image_free(im);
    }
    free(plist);
    return rc;
}
