/* chat.h - chat prompts rendered by the model's own Jinja `chat_template`
 * (tokenizer_config.json), byte for byte as transformers' apply_chat_template
 * renders them. The template is compiled once and rendered many times.
 *
 * Variables given to the template, as transformers gives them: messages, tools
 * (None when absent), documents (None), add_generation_prompt, enable_thinking
 * (only when set), and the special tokens of tokenizer_config.json (bos_token,
 * eos_token, pad_token, unk_token) that are set. */
#ifndef CL_CHAT_H
#define CL_CHAT_H

#include <cjson/cJSON.h>

typedef struct cl_chat_template cl_chat_template;

/* DIR/tokenizer_config.json "chat_template" (a string, or a list of {name,
 * template} from which "default" is taken; DIR/chat_template.jinja when the
 * key is absent), plus its bos/eos/pad/unk token strings (a string or
 * {"content": ...}). Error if there is no template or it does not compile. */
int cl_chat_template_load_dir(const char *model_dir, cl_chat_template **out);
/* Compiles `source`; name_for_errors prefixes errors (NULL: "chat template"). */
int cl_chat_template_from_string(const char *source, const char *name_for_errors,
                                 cl_chat_template **out);
/* Reads the special tokens (bos/eos/pad/unk) of DIR/tokenizer_config.json into t. */
int cl_chat_template_load_tokens(cl_chat_template *t, const char *model_dir);
/* Sets a string variable such as "bos_token" (value NULL: unset it). */
int cl_chat_template_set_var(cl_chat_template *t, const char *name, const char *value);

/* messages: JSON array of {role, content, ...}; tools: JSON array or NULL;
 * enable_thinking: 1, 0, or -1 (unset: undefined in the template). *out is
 * malloc'd and NUL-terminated. */
int cl_chat_render(const cl_chat_template *t, const cJSON *messages, const cJSON *tools,
                   int add_generation_prompt, int enable_thinking, char **out);

void cl_chat_template_free(cl_chat_template *t);

#endif
