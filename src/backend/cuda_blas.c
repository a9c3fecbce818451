#include "backend/cuda_blas.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/status.h"

#ifndef COLLAGE_CUBLAS_SONAME
#define COLLAGE_CUBLAS_SONAME "libcublas.so"
#endif
#ifndef COLLAGE_CUDA_LIBDIR
#define COLLAGE_CUDA_LIBDIR ""
#endif

static cuda_blas_api api;
static int loaded;          /* 1 ok, -1 failed */
static char load_error[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *open_one(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h && !load_error[0])
        snprintf(load_error, sizeof load_error, "%s", dlerror());
    return h;
}

static void *open_lib(void)
{
    const char *env = getenv("COLLAGE_CUBLAS");
    if (env && *env)
        return open_one(env);
    void *h = open_one(COLLAGE_CUBLAS_SONAME);
    char path[PATH_MAX + 64];
    if (!h && COLLAGE_CUDA_LIBDIR[0]) {
        snprintf(path, sizeof path, "%s/%s", COLLAGE_CUDA_LIBDIR, COLLAGE_CUBLAS_SONAME);
        h = open_one(path);
    }
    if (!h) { /* a bundle: lib/ beside the executable's directory */
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = 0;
            char *slash = strrchr(exe, '/');
            if (slash)
                *slash = 0;
            snprintf(path, sizeof path, "%s/lib/%s", exe, COLLAGE_CUBLAS_SONAME);
            h = open_one(path);
        }
    }
    return h;
}

#define SYM(field, name)                                                                   \
    do {                                                                                   \
        *(void **)&api.field = dlsym(h, name);                                             \
        if (!api.field) {                                                                  \
            snprintf(load_error, sizeof load_error, "%s: no symbol %s",                   \
                     COLLAGE_CUBLAS_SONAME, name);                                         \
            return;                                                                        \
        }                                                                                  \
    } while (0)

static void load(void)
{
    loaded = -1;
    void *h = open_lib();
    if (!h)
        return;
    SYM(create, "cublasCreate_v2");
    SYM(destroy, "cublasDestroy_v2");
    SYM(set_stream, "cublasSetStream_v2");
    SYM(set_workspace, "cublasSetWorkspace_v2");
    SYM(set_math_mode, "cublasSetMathMode");
    SYM(status_string, "cublasGetStatusString");
    SYM(gemm_ex, "cublasGemmEx");
    SYM(gemm_strided_batched_ex, "cublasGemmStridedBatchedEx");
    SYM(saxpy, "cublasSaxpy_v2");
    loaded = 1; /* the library stays loaded for the life of the process */
}

const cuda_blas_api *cuda_blas(void)
{
    pthread_once(&once, load);
    if (loaded == 1)
        return &api;
    cl_err(CL_ERR_BACKEND, "cuda: cannot load cuBLAS (%s): %s (set COLLAGE_CUBLAS to its path)",
           COLLAGE_CUBLAS_SONAME, load_error[0] ? load_error : "unknown error");
    return NULL;
}

const char *cuda_blas_status(cublasStatus_t s)
{
    return loaded == 1 ? api.status_string(s) : "(cuBLAS not loaded)";
}
