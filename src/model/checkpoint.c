#include "model/checkpoint.h"

#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/status.h"

int cl_checkpoint_open(const char *dir, cl_checkpoint *ck)
{
    memset(ck, 0, sizeof *ck);
    if (!cl_is_dir(dir))
        return cl_err(CL_ERR_IO, "%s: not a model directory", dir);
    if (!(ck->dir = strdup(dir)))
        return cl_err(CL_ERR_NOMEM, "out of memory");
    int rc = cl_config_load(dir, &ck->cfg);
    if (rc == CL_OK)
        rc = cl_config_load_generation(dir, &ck->cfg);
    for (int64_t l = 0; rc == CL_OK && l < ck->cfg.num_layers; l++)
        if (ck->cfg.layer_types[l] == CL_LAYER_BMF)
            rc = cl_err(CL_ERR_UNSUPPORTED, "%s: layer %lld is B'MOJO-F (BMF): not yet supported",
                        ck->cfg.path, (long long)l);
    if (rc == CL_OK)
        rc = cl_st_open_dir(dir, &ck->st);
    if (rc == CL_OK)
        rc = cl_weights_bind(&ck->cfg, ck->st, &ck->w);
    if (rc != CL_OK)
        cl_checkpoint_close(ck);
    return rc;
}

void cl_checkpoint_close(cl_checkpoint *ck)
{
    cl_weights_free(&ck->w);
    cl_st_close(ck->st);
    cl_config_free(&ck->cfg);
    free(ck->dir);
    memset(ck, 0, sizeof *ck);
}
