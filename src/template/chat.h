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

#include "collage.h"

/* Public (collage.h): load_dir, from_string, load_tokens, free, and cl_chat_render
 * (messages and tools as JSON text). */

/* Sets a string variable such as "bos_token" (value NULL: unset it). */
int cl_chat_template_set_var(cl_chat_template *t, const char *name, const char *value);

/* cl_chat_render on parsed JSON: messages an array of {role, content, ...}; tools an
 * array or NULL; enable_thinking 1, 0, or -1 (unset: undefined in the template). */
int cl_chat_render_cjson(const cl_chat_template *t, const cJSON *messages, const cJSON *tools,
                         int add_generation_prompt, int enable_thinking, char **out);

#endif
