/* model_id.h - the content hash naming a model in the store: XXH3-128 over the
 * canonical config.json and every tensor's name, dtype, shape and bytes (sorted by
 * name). Hashing an 8B checkpoint reads 16 GB, so the id is remembered in the
 * store, keyed by the checkpoint's path, total size and newest mtime. */
#ifndef CL_MODEL_ID_H
#define CL_MODEL_ID_H

#include "model/model.h"
#include "store/store.h"

/* Computes the id (or takes it from the store's cache when st is non-NULL). */
int cl_model_id(const cl_model *m, cl_store *st, cl_key *out);

#endif
