/* collage template - render a conversation with a model's chat template.
 * The case file is one JSON object: messages, optional tools,
 * add_generation_prompt and enable_thinking (other keys are ignored). The
 * rendered text goes to stdout byte for byte, with nothing appended. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "common/fileio.h"
#include "common/json.h"
#include "common/status.h"
#include "tokenizer/chat.h"
#include "verbs.h"

static int read_case(const char *path, cJSON **doc, const cJSON **messages, const cJSON **tools,
                     int *add_gen, int *thinking)
{
    CL_TRY(cl_json_load(path, doc));
    if (!cJSON_IsObject(*doc))
        return cl_err(CL_ERR_FORMAT, "%s: expected a JSON object", path);
    *messages = cJSON_GetObjectItemCaseSensitive(*doc, "messages");
    if (!cJSON_IsArray(*messages))
        return cl_err(CL_ERR_FORMAT, "%s: key 'messages': expected an array", path);
    *tools = cJSON_GetObjectItemCaseSensitive(*doc, "tools");
    if (*tools && !cJSON_IsArray(*tools) && !cJSON_IsNull(*tools))
        return cl_err(CL_ERR_FORMAT, "%s: key 'tools': expected an array", path);
    if (*tools && cJSON_IsNull(*tools))
        *tools = NULL;
    CL_TRY(cl_json_bool(*doc, "add_generation_prompt", path, 0, add_gen));
    CL_TRY(cl_json_bool(*doc, "enable_thinking", path, -1, thinking));
    return CL_OK;
}

static int load_template(const char *model, const char *template_file, cl_chat_template **out)
{
    if (!template_file)
        return cl_chat_template_load_dir(model, out);
    char *src;
    size_t len;
    CL_TRY(cl_read_file(template_file, &src, &len));
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
        {"model", OPT_STR, &model, "DIR", "model directory (tokenizer_config.json with chat_template)"},
        {"input", OPT_STR, &input, "CASE.json",
         "{\"messages\": [...], \"tools\"?: [...], \"add_generation_prompt\"?: bool, "
         "\"enable_thinking\"?: bool}"},
        {"template", OPT_STR, &template_file, "FILE",
         "use this Jinja file instead of the model's chat_template"},
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
    cJSON *doc = NULL;
    const cJSON *messages = NULL, *tools = NULL;
    int add_gen = 0, thinking = -1;
    cl_chat_template *t = NULL;
    char *text = NULL;
    rc = read_case(input, &doc, &messages, &tools, &add_gen, &thinking);
    if (rc == CL_OK)
        rc = load_template(model, template_file, &t);
    if (rc == CL_OK)
        rc = cl_chat_render(t, messages, tools, add_gen, thinking, &text);
    if (rc == CL_OK) {
        size_t n = strlen(text);
        if (fwrite(text, 1, n, stdout) != n || fflush(stdout) != 0)
            rc = cl_err(CL_ERR_IO, "stdout: write failed");
    }
    free(text);
    cl_chat_template_free(t);
    cJSON_Delete(doc);
    return rc == CL_OK ? 0 : cli_fail(rc);
}
