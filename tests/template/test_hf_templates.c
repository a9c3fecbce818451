/* test_hf_templates - the engine is general: small chat templates written in
 * the style of the usual Hugging Face ones (Llama-3 headers with bos_token and
 * |trim, Mistral [INST] with a merged system prompt and role alternation
 * checks, ChatML without whitespace control, Gemma's role renaming, and a
 * tool-calling template with a macro, namespace, |items, |map and
 * tojson(indent=2)) render through cl_chat_render exactly as transformers
 * renders them, and raise_exception() on a bad conversation is an error that
 * carries the template's message (other Python errors, such as concatenating
 * a dict to a string, are errors too). Expected renders: Python jinja2 3.1.6 set up
 * as transformers does, with bos_token "<s>" and eos_token "</s>". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/status.h"
#include "testutil.h"
#include "template/chat.h"

typedef struct {
    const char *tpl_name, *tpl, *conv;
    int with_tools, add_generation_prompt;
    const char *expected;      /* NULL when the template must raise */
    const char *raised;        /* raise_exception message, or "!TypeError" for other errors */
} hf_case;

/* templates */
static const char tpl_chatml[] =
    "{% for message in messages %}\n"
    "{% if loop.first and messages[0]['role'] != 'system' %}\n"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}\n"
    "{% endif %}\n"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}\n"
    "{% endfor %}\n"
    "{% if add_generation_prompt %}\n"
    "{{ '<|im_start|>assistant\\n' }}\n"
    "{% endif %}\n"
    ;
static const char tpl_gemma[] =
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}\n"
    ;
static const char tpl_llama3[] =
    "{{- bos_token }}\n"
    "{%- for message in messages %}\n"
    "    {%- if message['role'] not in ['system', 'user', 'assistant'] %}\n"
    "        {{- raise_exception('Unknown role: ' + message['role']) }}\n"
    "    {%- endif %}\n"
    "    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"
    "{%- endif %}\n"
    ;
static const char tpl_mistral[] =
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content'] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set loop_messages = messages %}\n"
    "{%- endif %}\n"
    "{{- bos_token }}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
    "        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}\n"
    "    {%- endif %}\n"
    "    {%- if message['role'] == 'user' %}\n"
    "        {%- if loop.first and system_message is defined %}\n"
    "            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n"
    "        {%- else %}\n"
    "            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n"
    "        {%- endif %}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    "        {{- ' ' + message['content'] + eos_token }}\n"
    "    {%- else %}\n"
    "        {{- raise_exception('Only user and assistant roles are supported!') }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    ;
static const char tpl_tools[] =
    "{%- macro describe(tool) -%}\n"
    "{{ tool.function.name }}: {{ tool.function.description | default('(no description)') }}\n"
    "{%- for name, spec in tool.function.parameters.properties | items %}\n"
    "\n"
    "  - {{ name }} ({{ spec.type }}){{ ' required' if name in tool.function.parameters.required }}\n"
    "{%- endfor %}\n"
    "{%- endmacro -%}\n"
    "{%- set sys = namespace(text='') %}\n"
    "{%- if messages and messages[0].role == 'system' %}\n"
    "    {%- set sys.text = messages[0].content %}\n"
    "{%- endif %}\n"
    "{%- if tools is not none and tools | length > 0 %}\n"
    "    {%- set sys.text = (sys.text ~ '\\n\\n' if sys.text else '') ~ 'Tools:\\n' %}\n"
    "    {%- for tool in tools %}\n"
    "        {%- set sys.text = sys.text ~ describe(tool) ~ '\\n' %}\n"
    "    {%- endfor %}\n"
    "    {%- set sys.text = sys.text ~ 'Schema: ' ~ (tools | map(attribute='function') | map(attribute='parameters') | list | tojson(indent=2)) %}\n"
    "{%- endif %}\n"
    "{%- if sys.text %}\n"
    "{{- '<|system|>\\n' + sys.text + '\\n' }}\n"
    "{%- endif %}\n"
    "{%- for message in messages if message.role != 'system' %}\n"
    "    {%- if message.role == 'tool' %}\n"
    "{{- '<|tool|>\\n' + message.content | string + '\\n' }}\n"
    "    {%- elif message.tool_calls %}\n"
    "{{- '<|assistant|>\\n' }}\n"
    "        {%- for call in message.tool_calls %}\n"
    "{{- call.function | tojson + ('\\n' if loop.last else ',') }}\n"
    "        {%- endfor %}\n"
    "    {%- else %}\n"
    "{{- '<|' + message.role + '|>\\n' + message.content + '\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "{{- '<|assistant|>\\n' }}\n"
    "{%- endif %}\n"
    ;
/* conversations */
static const char conv_basic[] = "[{\"role\": \"user\", \"content\": \"Hello!\"}]";
static const char conv_system[] = "[{\"role\": \"system\", \"content\": \"You are terse.\"}, {\"role\": \"user\", \"content\": \"  What is 2+2? \"}, {\"role\": \"assistant\", \"content\": \"4\"}, {\"role\": \"user\", \"content\": \"And 3+3?\"}]";
static const char conv_tools[] = "[{\"role\": \"system\", \"content\": \"Use tools.\"}, {\"role\": \"user\", \"content\": \"Weather in Paris?\"}, {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}}]}, {\"role\": \"tool\", \"content\": {\"temp_c\": 21}}]";
static const char conv_badrole[] = "[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b\"}]";
static const char tools_json[] = "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Current weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"]}}, \"required\": [\"city\"]}}}]";
static const hf_case hf_cases[] = {
    {"chatml", tpl_chatml, conv_basic, 0, 1,
     "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n\n<|im_start|>user\nHello!<|im_end|>\n\n<|im_start|>assistant\n\n", NULL},
    {"chatml", tpl_chatml, conv_basic, 0, 0,
     "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n\n<|im_start|>user\nHello!<|im_end|>\n\n", NULL},
    {"chatml", tpl_chatml, conv_system, 0, 1,
     "<|im_start|>system\nYou are terse.<|im_end|>\n\n<|im_start|>user\n  What is 2+2? <|im_end|>\n\n<|im_start|>assistant\n4<|im_end|>\n\n<|im_start|>user\nAnd 3+3?<|im_end|>\n\n<|im_start|>assistant\n\n", NULL},
    {"chatml", tpl_chatml, conv_system, 0, 0,
     "<|im_start|>system\nYou are terse.<|im_end|>\n\n<|im_start|>user\n  What is 2+2? <|im_end|>\n\n<|im_start|>assistant\n4<|im_end|>\n\n<|im_start|>user\nAnd 3+3?<|im_end|>\n\n", NULL},
    {"chatml", tpl_chatml, conv_tools, 1, 1, NULL, "!TypeError"},
    {"chatml", tpl_chatml, conv_tools, 1, 0, NULL, "!TypeError"},
    {"chatml", tpl_chatml, conv_badrole, 0, 1,
     "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n\n<|im_start|>user\na<|im_end|>\n\n<|im_start|>user\nb<|im_end|>\n\n<|im_start|>assistant\n\n", NULL},
    {"chatml", tpl_chatml, conv_badrole, 0, 0,
     "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n\n<|im_start|>user\na<|im_end|>\n\n<|im_start|>user\nb<|im_end|>\n\n", NULL},
    {"gemma", tpl_gemma, conv_basic, 0, 1,
     "<s><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n", NULL},
    {"gemma", tpl_gemma, conv_basic, 0, 0,
     "<s><start_of_turn>user\nHello!<end_of_turn>\n", NULL},
    {"gemma", tpl_gemma, conv_system, 0, 1, NULL, "System role not supported"},
    {"gemma", tpl_gemma, conv_system, 0, 0, NULL, "System role not supported"},
    {"gemma", tpl_gemma, conv_tools, 1, 1, NULL, "System role not supported"},
    {"gemma", tpl_gemma, conv_tools, 1, 0, NULL, "System role not supported"},
    {"gemma", tpl_gemma, conv_badrole, 0, 1, NULL, "Conversation roles must alternate user/assistant/user/assistant/..."},
    {"gemma", tpl_gemma, conv_badrole, 0, 0, NULL, "Conversation roles must alternate user/assistant/user/assistant/..."},
    {"llama3", tpl_llama3, conv_basic, 0, 1,
     "<s><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", NULL},
    {"llama3", tpl_llama3, conv_basic, 0, 0,
     "<s><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>", NULL},
    {"llama3", tpl_llama3, conv_system, 0, 1,
     "<s><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnd 3+3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", NULL},
    {"llama3", tpl_llama3, conv_system, 0, 0,
     "<s><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnd 3+3?<|eot_id|>", NULL},
    {"llama3", tpl_llama3, conv_tools, 1, 1, NULL, "Unknown role: tool"},
    {"llama3", tpl_llama3, conv_tools, 1, 0, NULL, "Unknown role: tool"},
    {"llama3", tpl_llama3, conv_badrole, 0, 1,
     "<s><|start_header_id|>user<|end_header_id|>\n\na<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nb<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", NULL},
    {"llama3", tpl_llama3, conv_badrole, 0, 0,
     "<s><|start_header_id|>user<|end_header_id|>\n\na<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nb<|eot_id|>", NULL},
    {"mistral", tpl_mistral, conv_basic, 0, 1,
     "<s> [INST] Hello! [/INST]", NULL},
    {"mistral", tpl_mistral, conv_basic, 0, 0,
     "<s> [INST] Hello! [/INST]", NULL},
    {"mistral", tpl_mistral, conv_system, 0, 1,
     "<s> [INST] You are terse.\n\n  What is 2+2?  [/INST] 4</s> [INST] And 3+3? [/INST]", NULL},
    {"mistral", tpl_mistral, conv_system, 0, 0,
     "<s> [INST] You are terse.\n\n  What is 2+2?  [/INST] 4</s> [INST] And 3+3? [/INST]", NULL},
    {"mistral", tpl_mistral, conv_tools, 1, 1, NULL, "Conversation roles must alternate user/assistant/user/assistant/..."},
    {"mistral", tpl_mistral, conv_tools, 1, 0, NULL, "Conversation roles must alternate user/assistant/user/assistant/..."},
    {"mistral", tpl_mistral, conv_badrole, 0, 1, NULL, "Conversation roles must alternate user/assistant/user/assistant/..."},
    {"mistral", tpl_mistral, conv_badrole, 0, 0, NULL, "Conversation roles must alternate user/assistant/user/assistant/..."},
    {"tools", tpl_tools, conv_basic, 0, 1,
     "<|user|>\nHello!\n<|assistant|>\n", NULL},
    {"tools", tpl_tools, conv_basic, 0, 0,
     "<|user|>\nHello!\n", NULL},
    {"tools", tpl_tools, conv_system, 0, 1,
     "<|system|>\nYou are terse.\n<|user|>\n  What is 2+2? \n<|assistant|>\n4\n<|user|>\nAnd 3+3?\n<|assistant|>\n", NULL},
    {"tools", tpl_tools, conv_system, 0, 0,
     "<|system|>\nYou are terse.\n<|user|>\n  What is 2+2? \n<|assistant|>\n4\n<|user|>\nAnd 3+3?\n", NULL},
    {"tools", tpl_tools, conv_tools, 1, 1,
     "<|system|>\nUse tools.\n\nTools:\nget_weather: Current weather\n  - city (string) required\n  - unit (string)\nSchema: [\n  {\n    \"type\": \"object\",\n    \"properties\": {\n      \"city\": {\n        \"type\": \"string\"\n      },\n      \"unit\": {\n        \"type\": \"string\",\n        \"enum\": [\n          \"c\",\n          \"f\"\n        ]\n      }\n    },\n    \"required\": [\n      \"city\"\n    ]\n  }\n]\n<|user|>\nWeather in Paris?\n<|assistant|>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n<|tool|>\n{'temp_c': 21}\n<|assistant|>\n", NULL},
    {"tools", tpl_tools, conv_tools, 1, 0,
     "<|system|>\nUse tools.\n\nTools:\nget_weather: Current weather\n  - city (string) required\n  - unit (string)\nSchema: [\n  {\n    \"type\": \"object\",\n    \"properties\": {\n      \"city\": {\n        \"type\": \"string\"\n      },\n      \"unit\": {\n        \"type\": \"string\",\n        \"enum\": [\n          \"c\",\n          \"f\"\n        ]\n      }\n    },\n    \"required\": [\n      \"city\"\n    ]\n  }\n]\n<|user|>\nWeather in Paris?\n<|assistant|>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n<|tool|>\n{'temp_c': 21}\n", NULL},
    {"tools", tpl_tools, conv_badrole, 0, 1,
     "<|user|>\na\n<|user|>\nb\n<|assistant|>\n", NULL},
    {"tools", tpl_tools, conv_badrole, 0, 0,
     "<|user|>\na\n<|user|>\nb\n", NULL},
};

static void test_hf_templates(void **state)
{
    (void)state;
    int failures = 0;
    cJSON *tools = cJSON_Parse(tools_json);
    assert_non_null(tools);
    for (size_t i = 0; i < sizeof hf_cases / sizeof hf_cases[0]; i++) {
        const hf_case *c = &hf_cases[i];
        cl_chat_template *t;
        assert_int_equal(cl_chat_template_from_string(c->tpl, c->tpl_name, &t), CL_OK);
        assert_int_equal(cl_chat_template_set_var(t, "bos_token", "<s>"), CL_OK);
        assert_int_equal(cl_chat_template_set_var(t, "eos_token", "</s>"), CL_OK);
        cJSON *msgs = cJSON_Parse(c->conv);
        assert_non_null(msgs);
        char *out = NULL;
        int rc = cl_chat_render_cjson(t, msgs, c->with_tools ? tools : NULL, c->add_generation_prompt, -1,
                                &out);
        if (c->expected) {
            if (rc != CL_OK || strcmp(out, c->expected) != 0) {
                print_error("%s #%zu: rc %d [%s]\n  got      [%s]\n  expected [%s]\n",
                            c->tpl_name, i, rc, cl_errmsg(), out ? out : "", c->expected);
                failures++;
            }
        } else if (rc != CL_ERR_FORMAT ||
                   strncmp(cl_errmsg(), c->tpl_name, strlen(c->tpl_name)) != 0 ||
                   (c->raised[0] != '!' && (!strstr(cl_errmsg(), c->raised) ||
                                            !strstr(cl_errmsg(), "template raised an error")))) {
            print_error("%s #%zu: expected the error [%s], got rc %d [%s]\n", c->tpl_name, i,
                        c->raised, rc, cl_errmsg());
            failures++;
        }
        free(out);
        cJSON_Delete(msgs);
        cl_chat_template_free(t);
    }
    cJSON_Delete(tools);
    assert_int_equal(failures, 0);
}

/* Variables: bos_token set then unset is undefined again; tools NULL is None,
 * enable_thinking -1 is undefined and 0/1 are booleans. */
static void test_variables(void **state)
{
    (void)state;
    const char *src = "[{{ bos_token is defined }}|{{ tools is none }}|{{ enable_thinking is defined }}"
                      "|{{ enable_thinking }}|{{ add_generation_prompt }}|{{ documents is none }}"
                      "|{{ messages|length }}]";
    cl_chat_template *t;
    assert_int_equal(cl_chat_template_from_string(src, NULL, &t), CL_OK);
    cJSON *msgs = cJSON_Parse("[{\"role\": \"user\", \"content\": \"x\"}]");
    char *out;
    assert_int_equal(cl_chat_template_set_var(t, "bos_token", "<s>"), CL_OK);
    assert_int_equal(cl_chat_render_cjson(t, msgs, NULL, 1, -1, &out), CL_OK);
    assert_string_equal(out, "[True|True|False||True|True|1]");
    free(out);
    assert_int_equal(cl_chat_template_set_var(t, "bos_token", NULL), CL_OK);
    assert_int_equal(cl_chat_render_cjson(t, msgs, NULL, 0, 0, &out), CL_OK);
    assert_string_equal(out, "[False|True|True|False|False|True|1]");
    free(out);
    assert_int_equal(cl_chat_render_cjson(t, msgs, NULL, 0, 1, &out), CL_OK);
    assert_string_equal(out, "[False|True|True|True|False|True|1]");
    free(out);
    /* messages must be an array */
    cJSON *obj = cJSON_Parse("{\"role\": \"user\"}");
    out = NULL;
    assert_int_equal(cl_chat_render_cjson(t, obj, NULL, 0, -1, &out), CL_ERR_FORMAT);
    assert_null(out);
    cJSON_Delete(obj);
    cJSON_Delete(msgs);
    cl_chat_template_free(t);
    /* a syntax error names the template as given */
    assert_int_equal(cl_chat_template_from_string("{% if %}", "my template", &t), CL_ERR_FORMAT);
    assert_null(t);
    assert_string_equal(cl_errmsg(), "my template line 1: expected an expression, got '%}'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hf_templates),
        cmocka_unit_test(test_variables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
