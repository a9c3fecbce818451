/* json.h - cJSON helpers: parse a file with a located error, typed lookups that
 * name the file and key when a value has the wrong type. */
#ifndef CL_JSON_H
#define CL_JSON_H

#include <cjson/cJSON.h>
#include <stdint.h>

/* Parses the JSON file at `path`. Error: "<path>: malformed JSON at line L, column C". */
int cl_json_load(const char *path, cJSON **out);
/* Parses a buffer; `what` names it in errors. */
int cl_json_parse(const char *what, const char *text, size_t len, cJSON **out);

/* Typed getters. A missing key (or JSON null) leaves *out at `def` and returns CL_OK;
 * a key of the wrong type is CL_ERR_FORMAT "<file>: key '<key>': expected ...". */
int cl_json_int(const cJSON *obj, const char *key, const char *file, int64_t def, int64_t *out);
int cl_json_num(const cJSON *obj, const char *key, const char *file, double def, double *out);
int cl_json_bool(const cJSON *obj, const char *key, const char *file, int def, int *out);
/* *out points into the cJSON tree (valid while it lives), or is `def`. */
int cl_json_str(const cJSON *obj, const char *key, const char *file, const char *def,
                const char **out);
/* 1 if the key is present and not null. */
int cl_json_has(const cJSON *obj, const char *key);

/* Appends a JSON-escaped, quoted string to a FILE*. */
void cl_json_fputs(void *file, const char *s);

#endif
