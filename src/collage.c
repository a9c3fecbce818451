/* collage.c - the odds and ends of the public API (collage.h) that belong to no
 * module: the version, freeing what the library handed over, the CUDA probe. */
#include <stdlib.h>

#include "backend/backend.h"
#include "collage.h"

const char *cl_version(void) { return COLLAGE_VERSION; }

void cl_free(void *p) { free(p); }

int cl_cuda_available(void) { return cl_backend_cuda_available(); }
