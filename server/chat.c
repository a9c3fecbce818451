/* chat.c - the chat prompt of a request: messages checked and normalized for the
 * model's template (text parts joined, "developer" as "system", assistant tool calls
 * and reasoning kept), tools checked, tool_choice and chat_template_kwargs read, then
 * rendered and tokenized (srv_chat_prompt in request.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jfield.h"
#include "request.h"

/* The text of messages[i].content: a string, or its text parts concatenated. NULL
 * content (an assistant turn with tool calls) is "". *out is added to msg. */
static int content_text(const cJSON *c, int i, cJSON *msg, srv_error *e)
{
    char param[64];
    snprintf(param, sizeof param, "messages[%d].content", i);
    if (!c || cJSON_IsNull(c))
        return cJSON_AddStringToObject(msg, "content", "") ? 0
                                                            : srv_fail(e, 500, NULL, "out of memory");
    if (cJSON_IsString(c))
        return cJSON_AddStringToObject(msg, "content", c->valuestring)
                   ? 0
                   : srv_fail(e, 500, NULL, "out of memory");
    if (!cJSON_IsArray(c))
        return srv_fail(e, 400, param, "%s: expected a string or an array of parts, got %s",
                        param, srv_json_type(c));
    size_t total = 0;
    int k = 0;
    for (const cJSON *p = c->child; p; p = p->next, k++) {
        const cJSON *type = cJSON_IsObject(p) ? jf_get(p, "type") : NULL;
        const cJSON *text = cJSON_IsObject(p) ? jf_get(p, "text") : NULL;
        if (!cJSON_IsString(type))
            return srv_fail(e, 400, param, "%s[%d].type: expected a string", param, k);
        if (strcmp(type->valuestring, "text"))
            return srv_fail(e, 400, param, "%s[%d].type: '%s' is not supported (text only)",
                            param, k, type->valuestring);
        if (!cJSON_IsString(text))
            return srv_fail(e, 400, param, "%s[%d].text: expected a string", param, k);
        total += strlen(text->valuestring);
    }
    char *buf = malloc(total + 1), *w = buf;
    if (!buf)
        return srv_fail(e, 500, NULL, "out of memory");
    for (const cJSON *p = c->child; p; p = p->next) {
        size_t l = strlen(jf_get(p, "text")->valuestring);
        memcpy(w, jf_get(p, "text")->valuestring, l);
        w += l;
    }
    *w = 0;
    cJSON *item = cJSON_AddStringToObject(msg, "content", buf);
    free(buf);
    return item ? 0 : srv_fail(e, 500, NULL, "out of memory");
}

/* An assistant turn's tool_calls, checked and copied for the template. */
static int copy_tool_calls(const cJSON *tc, int i, cJSON *msg, srv_error *e)
{
    char param[64];
    snprintf(param, sizeof param, "messages[%d].tool_calls", i);
    if (!cJSON_IsArray(tc))
        return srv_fail(e, 400, param, "%s: expected an array, got %s", param, srv_json_type(tc));
    int k = 0;
    for (const cJSON *c = tc->child; c; c = c->next, k++) {
        const cJSON *fn = cJSON_IsObject(c) ? jf_get(c, "function") : NULL;
        const cJSON *name = cJSON_IsObject(fn) ? jf_get(fn, "name") : NULL;
        const cJSON *args = cJSON_IsObject(fn) ? jf_get(fn, "arguments") : NULL;
        if (!cJSON_IsString(name))
            return srv_fail(e, 400, param, "%s[%d].function.name: expected a string", param, k);
        if (args && !cJSON_IsString(args) && !cJSON_IsObject(args))
            return srv_fail(e, 400, param,
                            "%s[%d].function.arguments: expected a JSON string or an object",
                            param, k);
    }
    cJSON *copy = cJSON_Duplicate(tc, 1);
    if (!copy || !cJSON_AddItemToObject(msg, "tool_calls", copy)) {
        cJSON_Delete(copy);
        return srv_fail(e, 500, NULL, "out of memory");
    }
    return 0;
}

/* messages -> the normalized array the template reads. */
static int normalize_messages(const cJSON *msgs, cJSON **out, srv_error *e)
{
    *out = NULL;
    if (!msgs)
        return srv_fail(e, 400, "messages", "messages: required");
    if (!cJSON_IsArray(msgs))
        return srv_fail(e, 400, "messages", "messages: expected an array, got %s",
                        srv_json_type(msgs));
    if (!msgs->child)
        return srv_fail(e, 400, "messages", "messages: empty (give at least one message)");
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return srv_fail(e, 500, NULL, "out of memory");
    int i = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, i++) {
        char param[64];
        snprintf(param, sizeof param, "messages[%d]", i);
        if (!cJSON_IsObject(m)) {
            cJSON_Delete(arr);
            return srv_fail(e, 400, param, "%s: expected an object, got %s", param,
                            srv_json_type(m));
        }
        const cJSON *role = jf_get(m, "role");
        if (!cJSON_IsString(role)) {
            cJSON_Delete(arr);
            return srv_fail(e, 400, param, "%s.role: expected a string, got %s", param,
                            srv_json_type(role));
        }
        const char *r = role->valuestring;
        if (!strcmp(r, "developer"))
            r = "system"; /* OpenAI's newer name for the system turn */
        if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant") &&
            strcmp(r, "tool")) {
            cJSON_Delete(arr);
            return srv_fail(e, 400, param,
                            "%s.role: '%s' is not one of system, developer, user, assistant, "
                            "tool", param, r);
        }
        cJSON *msg = cJSON_CreateObject();
        if (!msg || !cJSON_AddItemToArray(arr, msg) || !cJSON_AddStringToObject(msg, "role", r)) {
            cJSON_Delete(msg);
            cJSON_Delete(arr);
            return srv_fail(e, 500, NULL, "out of memory");
        }
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        const cJSON *tc = jf_get(m, "tool_calls");
        const cJSON *rc = jf_get(m, "reasoning_content");
        int bad = 0;
        if (!content && strcmp(r, "assistant"))
            bad = srv_fail(e, 400, param, "%s.content: required", param);
        else
            bad = content_text(content, i, msg, e);
        if (!bad && tc) {
            if (strcmp(r, "assistant"))
                bad = srv_fail(e, 400, param, "%s.tool_calls: only in assistant messages", param);
            else
                bad = copy_tool_calls(tc, i, msg, e);
        }
        if (!bad && rc) {
            if (!cJSON_IsString(rc))
                bad = srv_fail(e, 400, param, "%s.reasoning_content: expected a string", param);
            else if (!cJSON_AddStringToObject(msg, "reasoning_content", rc->valuestring))
                bad = srv_fail(e, 500, NULL, "out of memory");
        }
        const cJSON *tid = jf_get(m, "tool_call_id");
        if (!bad && tid && !cJSON_AddStringToObject(msg, "tool_call_id",
                                                    cJSON_IsString(tid) ? tid->valuestring : ""))
            bad = srv_fail(e, 500, NULL, "out of memory");
        if (bad) {
            cJSON_Delete(arr);
            return -1;
        }
    }
    *out = arr;
    return 0;
}

static int check_tools(const cJSON *tools, srv_error *e)
{
    if (!cJSON_IsArray(tools))
        return srv_fail(e, 400, "tools", "tools: expected an array, got %s", srv_json_type(tools));
    int k = 0;
    for (const cJSON *t = tools->child; t; t = t->next, k++) {
        const cJSON *type = cJSON_IsObject(t) ? jf_get(t, "type") : NULL;
        const cJSON *fn = cJSON_IsObject(t) ? jf_get(t, "function") : NULL;
        const cJSON *name = cJSON_IsObject(fn) ? jf_get(fn, "name") : NULL;
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "function"))
            return srv_fail(e, 400, "tools", "tools[%d].type: expected \"function\"", k);
        if (!cJSON_IsString(name) || !name->valuestring[0])
            return srv_fail(e, 400, "tools", "tools[%d].function.name: expected a string", k);
        const cJSON *params = jf_get(fn, "parameters");
        if (params && !cJSON_IsObject(params))
            return srv_fail(e, 400, "tools", "tools[%d].function.parameters: expected an object",
                            k);
    }
    return 0;
}

int srv_chat_prompt(const srv_model_view *v, const cJSON *o, cl_ids *out, int *tools_on,
                    srv_error *e)
{
    cJSON *msgs = NULL;
    if (normalize_messages(jf_get(o, "messages"), &msgs, e))
        return -1;
    const cJSON *tools = jf_get(o, "tools");
    int rc = tools ? check_tools(tools, e) : 0;
    /* tool_choice: "auto" (default with tools) parses calls, "none" does not; forcing a
     * call needs constrained decoding */
    const cJSON *choice = jf_get(o, "tool_choice");
    int parse_tools = tools && tools->child;
    if (!rc && choice) {
        if (cJSON_IsString(choice) && !strcmp(choice->valuestring, "none"))
            parse_tools = 0;
        else if (!(cJSON_IsString(choice) && !strcmp(choice->valuestring, "auto")))
            rc = srv_fail(e, 400, "tool_choice",
                          "tool_choice: only \"auto\" and \"none\" are supported (forcing a call "
                          "needs constrained decoding, not yet supported)");
    }
    int thinking = -1, gen_prompt = 1;
    const cJSON *kw = jf_get(o, "chat_template_kwargs");
    if (!rc && kw) {
        if (!cJSON_IsObject(kw))
            rc = srv_fail(e, 400, "chat_template_kwargs",
                          "chat_template_kwargs: expected an object, got %s", srv_json_type(kw));
        else if (jf_bool(kw, "enable_thinking", &thinking, e))
            rc = srv_fail(e, 400, "chat_template_kwargs.enable_thinking",
                          "chat_template_kwargs.enable_thinking: expected a boolean");
    }
    if (!rc)
        rc = jf_bool(o, "add_generation_prompt", &gen_prompt, e);
    char *mj = NULL, *tj = NULL, *text = NULL;
    if (!rc) {
        mj = cJSON_PrintUnformatted(msgs);
        tj = tools && tools->child ? cJSON_PrintUnformatted(tools) : NULL;
        if (!mj || (tools && tools->child && !tj))
            rc = srv_fail(e, 500, NULL, "out of memory");
    }
    if (!rc && cl_chat_render(v->tpl, mj, tj, gen_prompt, thinking, &text) != CL_OK)
        rc = srv_fail(e, 400, "messages", "messages: the chat template failed: %s", cl_errmsg());
    if (!rc && cl_tokenizer_encode(v->tok, text, strlen(text), 1, out) != CL_OK)
        rc = srv_fail(e, 400, "messages", "messages: %s", cl_errmsg());
    if (tools_on)
        *tools_on = parse_tools;
    cl_free(text);
    cJSON_free(mj);
    cJSON_free(tj);
    cJSON_Delete(msgs);
    return rc;
}
