/* jinja.h - a Jinja2 template engine large enough for Hugging Face chat
 * templates, configured as transformers configures jinja2: trim_blocks,
 * lstrip_blocks, `tojson` = json.dumps(ensure_ascii=False), raise_exception().
 *
 * A template is compiled once (lexed and parsed to an AST) and rendered many
 * times; rendering never modifies it, so one template may be rendered from
 * several threads at once. Errors name the template and line, e.g.
 * "chat template line 12: filter 'xyz' is not supported". */
#ifndef CL_JINJA_H
#define CL_JINJA_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct cl_jinja cl_jinja;

/* Compiles `len` bytes of `source`. `name` prefixes error messages. Unknown
 * filters, tests and tags are compile-time errors (CL_ERR_UNSUPPORTED), syntax
 * errors are CL_ERR_FORMAT. */
int cl_jinja_compile(const char *source, size_t len, const char *name, cl_jinja **out);

/* Renders with the members of the JSON object `vars` as variables (NULL: none);
 * a name absent from `vars` is undefined, a JSON null is None. The globals
 * range, namespace, dict, raise_exception and strftime_now are available.
 * *out is malloc'd and NUL-terminated; *out_len (if not NULL) is its length. */
int cl_jinja_render(const cl_jinja *t, const cJSON *vars, char **out, size_t *out_len);

void cl_jinja_free(cl_jinja *t);

#endif
