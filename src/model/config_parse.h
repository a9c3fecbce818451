/* config_parse.h - internals shared by config.c, config_types.c and config_util.c
 * (not a public contract: use config.h). Every function returns a status and
 * names the file and key at fault. */
#ifndef CL_CONFIG_PARSE_H
#define CL_CONFIG_PARSE_H

#include <cjson/cJSON.h>

#include "model/config.h"

/* An integer key in [lo, hi]; missing or null -> def. Errors name the key as
 * "<sub>.<key>" (sub may be NULL), the value and the allowed range. */
int cfg_int(const cJSON *obj, const char *sub, const char *key, const char *file, int64_t def,
            int64_t lo, int64_t hi, int64_t *out);
/* A finite float key in (0, max]; missing or null -> def. Errors as cfg_int. */
int cfg_pos_float(const cJSON *obj, const char *sub, const char *key, const char *file,
                  double def, double max, double *out);

/* A key that appears twice in an object, at any depth, is an error naming it (readers
 * disagree on which one counts). */
int cfg_check_duplicates(const cJSON *v, const char *prefix, const char *file);

int cfg_add_unknown(cl_config *cfg, const char *prefix, const char *key);
/* Adds the keys of obj not in the NULL-terminated `known` list as "<prefix>.<key>". */
int cfg_collect_unknown(cl_config *cfg, const cJSON *obj, const char *prefix,
                        const char *const *known);
/* A per-type dict's derived value must equal the top-level one (absent: fine). */
int cfg_check_derived(const cJSON *sub, const char *subname, const char *key, int64_t want,
                      const char *file);
/* A boolean key that asks for math the engine lacks unless it has supported_value:
 * a 'not yet supported' error naming the key (the issue note lists these keys). */
int cfg_unsupported_bool(const cJSON *sub, const char *subname, const char *key, int def,
                         int supported_value, const char *file, int *out);
int cfg_reject_kv_rank(const cJSON *sub, const char *subname, const char *file);
int cfg_parse_dtype(const char *s, const char *file, const char *key, cl_dtype *out);
/* An id or a list of ids, each in [0, vocab_size); appended to ids (distinct, up to max). */
int cfg_parse_token_ids(const cJSON *root, const char *key, const char *file, int64_t vocab_size,
                        int64_t *ids, int *n, int max);
/* JSON with sorted object keys, numbers as %.17g (malloc'd). */
int cfg_canonical_json(const cJSON *root, char **out);

int cfg_parse_gka(cl_config *cfg, const cJSON *root, const char *file);
int cfg_parse_gdn(cl_config *cfg, const cJSON *root, const char *file);
int cfg_parse_m2(cl_config *cfg, const cJSON *root, const char *file);
int cfg_parse_swa(cl_config *cfg, const cJSON *root, const char *file);
int cfg_parse_bmf(cl_config *cfg, const cJSON *root, const char *file);

#endif
