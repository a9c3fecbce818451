/* jfield.h - typed fields of a JSON request object: a missing key or null is "not
 * given"; a value of the wrong type or out of range is an srv_error naming the key
 * (HTTP 400). */
#ifndef SRV_JFIELD_H
#define SRV_JFIELD_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "request.h"

/* The value of key, NULL when absent or null. */
const cJSON *jf_get(const cJSON *o, const char *key);
/* *given (may be NULL) says whether the key was there. 0 or -1 with *e. */
int jf_num(const cJSON *o, const char *key, double lo, double hi, double *out, int *given,
           srv_error *e);
int jf_int(const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t *out, int *given,
           srv_error *e);
int jf_bool(const cJSON *o, const char *key, int *out, srv_error *e);
int jf_str(const cJSON *o, const char *key, const char **out, srv_error *e);

#endif
