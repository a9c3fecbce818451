/* backend.c - picks a backend by name. */
#include "backend/backend.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

int cl_backend_cuda_available(void)
{
#ifdef COLLAGE_HAVE_CUDA
    extern int cl_cuda_device_count(void);
    return cl_cuda_device_count() > 0;
#else
    return 0;
#endif
}

int cl_backend_create(const char *name, int threads, cl_backend **out)
{
    return cl_backend_create_device(name, threads, 0, out);
}

int cl_backend_create_device(const char *name, int threads, int device, cl_backend **out)
{
    /* Every host-side BLAS call (the CPU backend's GEMMs, composition's matrix
     * PICASO on any backend) runs inside OpenMP threads of its own: OpenBLAS's
     * thread pool would only serialize those callers. */
    openblas_set_num_threads(1);
    if (!name || !strcmp(name, "auto"))
        name = cl_backend_cuda_available() ? "cuda" : "cpu";
    if (!strcmp(name, "cpu"))
        return cl_backend_cpu_create(threads, out);
    (void)device;
    if (!strcmp(name, "cuda")) {
#ifdef COLLAGE_HAVE_CUDA
        return cl_backend_cuda_create(device, out);
#else
        return cl_err(CL_ERR_UNSUPPORTED,
                      "--backend cuda: this build has no CUDA backend (configure with nvcc "
                      "present or -DCOLLAGE_CUDA=ON)");
#endif
    }
    return cl_err(CL_ERR_ARG, "--backend '%s': expected cpu, cuda or auto", name);
}

void cl_backend_destroy(cl_backend *b)
{
    if (b)
        b->ops->destroy(b);
}
