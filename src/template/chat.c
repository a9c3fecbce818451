/* chat.c - loads a model's chat template and renders conversations with it
 * through the Jinja engine (jinja.h), passing the variables transformers'
 * apply_chat_template passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/status.h"
#include "template/chat.h"
#include "template/jinja.h"

struct cl_chat_template {
    cl_jinja *tpl;
    cJSON *vars; /* extra string variables (special tokens) */
};

int cl_chat_template_from_string(const char *source, const char *name_for_errors,
                                 cl_chat_template **out)
{
    *out = NULL;
    const char *name = name_for_errors ? name_for_errors : "chat template";
    cl_chat_template *t = calloc(1, sizeof *t);
    if (!t || !(t->vars = cJSON_CreateObject())) {
        free(t);
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", name);
    }
    int rc = cl_jinja_compile(source, strlen(source), name, &t->tpl);
    if (rc != CL_OK) {
        cl_chat_template_free(t);
        return rc;
    }
    *out = t;
    return CL_OK;
}

int cl_chat_template_set_var(cl_chat_template *t, const char *name, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(t->vars, name);
    if (value && !cJSON_AddStringToObject(t->vars, name, value))
        return cl_err(CL_ERR_NOMEM, "chat template: out of memory");
    return CL_OK;
}

/* A special token entry: "text", {"content": "text", ...} or null/absent. */
static int token_string(const cJSON *cfg, const char *key, const char *file, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return CL_OK;
    if (cJSON_IsObject(v))
        v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (!cJSON_IsString(v))
        return cl_err(CL_ERR_FORMAT, "%s: key '%s': expected a string or {\"content\": string}",
                      file, key);
    *out = v->valuestring;
    return CL_OK;
}

static int set_tokens(cl_chat_template *t, const cJSON *cfg, const char *path)
{
    static const char *const tokens[] = {"bos_token", "eos_token", "pad_token", "unk_token"};
    for (int i = 0; i < 4; i++) {
        const char *v;
        CL_TRY(token_string(cfg, tokens[i], path, &v));
        CL_TRY(cl_chat_template_set_var(t, tokens[i], v));
    }
    return CL_OK;
}

int cl_chat_template_load_tokens(cl_chat_template *t, const char *model_dir)
{
    char path[4096];
    cJSON *cfg;
    CL_TRY(cl_path_join(path, sizeof path, model_dir, "tokenizer_config.json"));
    CL_TRY(cl_json_load(path, &cfg));
    int rc = set_tokens(t, cfg, path);
    cJSON_Delete(cfg);
    return rc;
}

static int pick_template(const cJSON *ct, const char *file, const char **out)
{
    if (cJSON_IsString(ct)) {
        *out = ct->valuestring;
        return CL_OK;
    }
    if (!cJSON_IsArray(ct))
        return cl_err(CL_ERR_FORMAT, "%s: key 'chat_template': expected a string or a list", file);
    for (const cJSON *e = ct->child; e; e = e->next) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *tp = cJSON_GetObjectItemCaseSensitive(e, "template");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, "default")) {
            if (!cJSON_IsString(tp))
                return cl_err(CL_ERR_FORMAT, "%s: chat_template 'default': 'template' is not a string",
                              file);
            *out = tp->valuestring;
            return CL_OK;
        }
    }
    return cl_err(CL_ERR_NOTFOUND, "%s: chat_template has no template named 'default'", file);
}

int cl_chat_template_load_dir(const char *model_dir, cl_chat_template **out)
{
    *out = NULL;
    char path[4096], jpath[4096], name[4200];
    CL_TRY(cl_path_join(path, sizeof path, model_dir, "tokenizer_config.json"));
    CL_TRY(cl_path_join(jpath, sizeof jpath, model_dir, "chat_template.jinja"));
    cJSON *cfg = NULL;
    char *jinja_src = NULL;
    int rc = cl_json_load(path, &cfg);
    if (rc != CL_OK)
        return rc;
    const char *src = NULL;
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    snprintf(name, sizeof name, "%s: chat template", path);
    if (ct && !cJSON_IsNull(ct)) {
        rc = pick_template(ct, path, &src);
    } else if (cl_is_file(jpath)) {
        size_t len;
        rc = cl_read_file(jpath, &jinja_src, &len);
        src = jinja_src;
        snprintf(name, sizeof name, "%s", jpath);
        if (rc == CL_OK && strlen(jinja_src) != len)
            rc = cl_err(CL_ERR_FORMAT, "%s: contains a NUL byte", jpath);
    } else {
        rc = cl_err(CL_ERR_NOTFOUND, "%s: no 'chat_template' (and no chat_template.jinja)", path);
    }
    cl_chat_template *t = NULL;
    if (rc == CL_OK)
        rc = cl_chat_template_from_string(src, name, &t);
    if (rc == CL_OK)
        rc = set_tokens(t, cfg, path);
    cJSON_Delete(cfg);
    free(jinja_src);
    if (rc != CL_OK) {
        cl_chat_template_free(t);
        return rc;
    }
    *out = t;
    return CL_OK;
}

int cl_chat_render_cjson(const cl_chat_template *t, const cJSON *messages, const cJSON *tools,
                         int add_generation_prompt, int enable_thinking, char **out)
{
    *out = NULL;
    if (!cJSON_IsArray(messages))
        return cl_err(CL_ERR_FORMAT, "chat: 'messages' must be a JSON array");
    if (tools && !cJSON_IsArray(tools) && !cJSON_IsNull(tools))
        return cl_err(CL_ERR_FORMAT, "chat: 'tools' must be a JSON array");
    cJSON *vars = cJSON_Duplicate(t->vars, 1);
    int ok = vars != NULL;
    /* references: the caller's trees are read in place, never copied or freed */
    ok = ok && cJSON_AddItemReferenceToObject(vars, "messages", (cJSON *)messages);
    if (ok && tools && cJSON_IsArray(tools))
        ok = cJSON_AddItemReferenceToObject(vars, "tools", (cJSON *)tools);
    else if (ok)
        ok = cJSON_AddNullToObject(vars, "tools") != NULL;
    ok = ok && cJSON_AddNullToObject(vars, "documents");
    ok = ok && cJSON_AddBoolToObject(vars, "add_generation_prompt", add_generation_prompt != 0);
    if (ok && enable_thinking >= 0)
        ok = cJSON_AddBoolToObject(vars, "enable_thinking", enable_thinking != 0) != NULL;
    int rc = ok ? cl_jinja_render(t->tpl, vars, out, NULL)
                : cl_err(CL_ERR_NOMEM, "chat template: out of memory");
    cJSON_Delete(vars);
    return rc;
}

void cl_chat_template_free(cl_chat_template *t)
{
    if (!t)
        return;
    cl_jinja_free(t->tpl);
    cJSON_Delete(t->vars);
    free(t);
}

int cl_chat_render(const cl_chat_template *t, const char *messages_json, const char *tools_json,
                   int add_generation_prompt, int enable_thinking, char **out)
{
    *out = NULL;
    if (!messages_json)
        return cl_err(CL_ERR_ARG, "chat: no messages given");
    cJSON *msgs = cJSON_Parse(messages_json), *tools = NULL;
    if (!msgs)
        return cl_err(CL_ERR_FORMAT, "chat: messages: not valid JSON");
    if (tools_json && !(tools = cJSON_Parse(tools_json))) {
        cJSON_Delete(msgs);
        return cl_err(CL_ERR_FORMAT, "chat: tools: not valid JSON");
    }
    if (tools && cJSON_IsNull(tools)) {
        cJSON_Delete(tools);
        tools = NULL;
    }
    int rc = tools && !cJSON_IsArray(tools)
                 ? cl_err(CL_ERR_FORMAT, "chat: 'tools' must be a JSON array")
                 : cl_chat_render_cjson(t, msgs, tools, add_generation_prompt, enable_thinking,
                                        out);
    cJSON_Delete(msgs);
    cJSON_Delete(tools);
    return rc;
}
