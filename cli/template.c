/* collage template - render a conversation with a model's chat template.
 * The case file is one JSON object: messages, optional tools,
 * add_generation_prompt and enable_thinking (other keys are ignored). The
 * rendered text goes to stdout byte for byte, with nothing appended. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli_ctx.h"
#include "collage.h"
#include "verbs.h"

/* An optional boolean key of the case file (absent: def). */
static int case_bool(const cJSON *doc, const char *key, const char *path, int def, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return CL_OK;
    }
    if (!cJSON_IsBool(v))
        return cl_err(CL_ERR_FORMAT, "%s: key '%s': expected true or false", path, key);
    *out = cJSON_IsTrue(v);
    return CL_OK;
}

/* The case file: messages and tools as JSON text, the two switches. */
static int read_case(const char *path, char **messages, char **tools, int *add_gen,
                     int *thinking)
{
    char *text;
    CL_TRY(cli_read_file(path, &text, NULL));
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithOpts(text, &end, 1);
    int rc = CL_OK;
    if (!doc) { /* where the parser stopped, as line and column */
        int line = 1, col = 1;
        for (const char *p = text; end && p < end && *p; p++, col++)
            if (*p == '\n') {
                line++;
                col = 0;
            }
        rc = cl_err(CL_ERR_FORMAT, "%s: malformed JSON at line %d, column %d", path, line, col);
    }
    free(text);
    if (!doc)
        return rc;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "messages");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "tools");
    if (!cJSON_IsObject(doc))
        rc = cl_err(CL_ERR_FORMAT, "%s: expected a JSON object", path);
    else if (!cJSON_IsArray(m))
        rc = cl_err(CL_ERR_FORMAT, "%s: key 'messages': expected an array", path);
    else if (t && !cJSON_IsArray(t) && !cJSON_IsNull(t))
        rc = cl_err(CL_ERR_FORMAT, "%s: key 'tools': expected an array", path);
    if (rc == CL_OK)
        rc = case_bool(doc, "add_generation_prompt", path, 0, add_gen);
    if (rc == CL_OK)
        rc = case_bool(doc, "enable_thinking", path, -1, thinking);
    if (rc == CL_OK) {
        *messages = cJSON_PrintUnformatted(m);
        *tools = t && cJSON_IsArray(t) ? cJSON_PrintUnformatted(t) : NULL;
        if (!*messages || (t && cJSON_IsArray(t) && !*tools))
            rc = cl_err(CL_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(doc);
    return rc;
}

static int load_template(const char *model, const char *template_file, cl_chat_template **out)
{
    if (!template_file)
        return cl_chat_template_load_dir(model, out);
    char *src;
    size_t len;
    CL_TRY(cli_read_file(template_file, &src, &len));
    int rc = strlen(src) == len ? cl_chat_template_from_string(src, template_file, out)
                                : cl_err(CL_ERR_FORMAT, "%s: contains a NUL byte", template_file);
    free(src);
    if (rc == CL_OK && model) {
        /* special tokens still come from the model directory */
        rc = cl_chat_template_load_tokens(*out, model);
        if (rc != CL_OK) {
            cl_chat_template_free(*out);
            *out = NULL;
        }
    }
    return rc;
}

int cmd_template(int argc, char **argv)
{
    const char *model = NULL, *input = NULL, *template_file = NULL;
    cli_opt opts[] = {
        {"model", OPT_STR, &model, "DIR", "model directory (tokenizer_config.json with chat_template)",
         0, 0},
        {"input", OPT_STR, &input, "CASE.json",
         "{\"messages\": [...], \"tools\"?: [...], \"add_generation_prompt\"?: bool, "
         "\"enable_thinking\"?: bool}",
         0, 0},
        {"template", OPT_STR, &template_file, "FILE",
         "use this Jinja file instead of the model's chat_template", 0, 0},
        {0},
    };
    cli_spec spec = {"template", "--model DIR --input CASE.json [--template FILE]",
                     "Renders the conversation in CASE.json with the model's chat template (the\n"
                     "Jinja `chat_template` of DIR/tokenizer_config.json, as transformers'\n"
                     "apply_chat_template does) and prints the prompt byte for byte.",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!model && !template_file)
        return cli_usage_error("template", "--model is required");
    if (!input)
        return cli_usage_error("template", "--input is required");
    char *messages = NULL, *tools = NULL;
    int add_gen = 0, thinking = -1;
    cl_chat_template *t = NULL;
    char *text = NULL;
    rc = read_case(input, &messages, &tools, &add_gen, &thinking);
    if (rc == CL_OK)
        rc = load_template(model, template_file, &t);
    if (rc == CL_OK)
        rc = cl_chat_render(t, messages, tools, add_gen, thinking, &text);
    if (rc == CL_OK) {
        size_t n = strlen(text);
        if (fwrite(text, 1, n, stdout) != n || fflush(stdout) != 0)
            rc = cl_err(CL_ERR_IO, "stdout: write failed");
    }
    cl_free(text);
    cl_chat_template_free(t);
    free(messages);
    free(tools);
    return rc == CL_OK ? 0 : cli_fail(rc);
}
