#include "bench_models.h"

#include <stdlib.h>
#include <string.h>

#include "common/status.h"
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
        cl_model *m = NULL;
        if ((rc = cl_model_create_random(&mo, &m)) != CL_OK)
            break;
        int gka = 0;
        for (int64_t l = 0; l < m->cfg->num_layers; l++)
            gka |= m->cfg->layer_types[l] == CL_LAYER_GKA;
        for (int it = 0; it < (gka ? n_iters : 1) && rc == CL_OK; it++) {
            if (gka)
                m->gka_num_iter = iters[it];
            rc = fn(user, m, p, gka ? iters[it] : 0, it);
        }
        cl_model_free(m);
    }
    free(plist);
    return rc;
}
