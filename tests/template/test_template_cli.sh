#!/usr/bin/env bash
# test_template_cli - `collage template`: prints the render byte for byte with
# nothing appended; reads chat_template as a string or a {name, template} list
# and special tokens as strings or {"content": ...}; errors are one line on
# stderr with exit 1 (missing file, malformed JSON, template syntax error,
# unsupported filter, raise_exception) and usage errors exit 2. Needs no ../shared.
. "$(dirname "$0")/../cli/lib.sh"
T=$(scratch template_cli)

# config DIR TEMPLATE_JSON_VALUE [EXTRA_JSON_MEMBERS]
config() {
  mkdir -p "$1"
  printf '{"chat_template": %s, "eos_token": "<|im_end|>"%s}\n' "$2" "${3:-}" > "$1/tokenizer_config.json"
}

cat > "$T/case.json" <<'JSON'
{"name": "x", "messages": [{"role": "user", "content": "Hi \u00e9"}, {"role": "assistant", "content": "Yo"}],
 "add_generation_prompt": true, "enable_thinking": false, "rendered": "ignored", "ids": [1]}
JSON

# A ChatML-style template, given as a plain string.
config "$T/m1" '"{%- for m in messages %}{{ bos_token ~ \"<|\" + m.role + \"|>\" + m.content + eos_token }}\n{% endfor %}{%- if add_generation_prompt %}<|assistant|>{% if enable_thinking is false %}<think></think>{% endif %}{% endif %}"' \
  ', "bos_token": {"content": "<s>", "lstrip": false}'
"$BIN" template --model "$T/m1" --input "$T/case.json" > "$T/out1" || fail "render m1"
printf '<s><|user|>Hi \xc3\xa9<|im_end|>\n<s><|assistant|>Yo<|im_end|>\n<|assistant|><think></think>' > "$T/exp1"
cmp "$T/out1" "$T/exp1" || fail "m1 output differs: $(od -c "$T/out1" | head -5)"

# chat_template as a list of named templates: "default" is used.
config "$T/m2" '[{"name": "tool_use", "template": "TOOLS"}, {"name": "default", "template": "{{ messages|length }}|{{ bos_token is defined }}"}]'
out=$("$BIN" template --model "$T/m2" --input "$T/case.json") || fail "render m2"
[ "$out" = "2|False" ] || fail "m2: got '$out'"

# --template FILE overrides the model's template.
printf '{{ messages[0].content|upper }}\n' > "$T/t.jinja"
out=$("$BIN" template --model "$T/m2" --template "$T/t.jinja" --input "$T/case.json") || fail "--template"
[ "$out" = "HI É" ] || fail "--template: got '$out'"

# --help and usage errors
"$BIN" template --help | grep -q -- "--input" || fail "--help"
expect_fail 2 "model" "$BIN" template --input "$T/case.json"
expect_fail 2 "input" "$BIN" template --model "$T/m1"
expect_fail 2 "bogus" "$BIN" template --model "$T/m1" --input "$T/case.json" --bogus

# runtime errors: one line, exit 1
expect_fail 1 "^collage: $T/nope/tokenizer_config.json: " "$BIN" template --model "$T/nope" --input "$T/case.json"
expect_fail 1 "^collage: $T/missing.json: " "$BIN" template --model "$T/m1" --input "$T/missing.json"
printf '{"messages": [' > "$T/bad.json"
expect_fail 1 "^collage: $T/bad.json: malformed JSON" "$BIN" template --model "$T/m1" --input "$T/bad.json"
printf '{"msgs": []}' > "$T/nomsg.json"
expect_fail 1 "key 'messages'" "$BIN" template --model "$T/m1" --input "$T/nomsg.json"
mkdir -p "$T/m3" && printf '{"eos_token": "x"}' > "$T/m3/tokenizer_config.json"
expect_fail 1 "no 'chat_template'" "$BIN" template --model "$T/m3" --input "$T/case.json"
config "$T/m4" '"line one\n{% for m in messages %}{{ m.content }"'
expect_fail 1 "^collage: $T/m4/tokenizer_config.json: chat template line 2: " \
  "$BIN" template --model "$T/m4" --input "$T/case.json"
config "$T/m5" '"\n\n{{ messages|xyz }}"'
expect_fail 1 "^collage: $T/m5/tokenizer_config.json: chat template line 3: filter 'xyz' is not supported$" \
  "$BIN" template --model "$T/m5" --input "$T/case.json"
config "$T/m6" '"{% for m in messages %}{% if m.role == \"assistant\" %}{{ raise_exception(\"no assistant turns, please\") }}{% endif %}{% endfor %}"'
expect_fail 1 "chat template line 1: template raised an error: no assistant turns, please$" \
  "$BIN" template --model "$T/m6" --input "$T/case.json"
config "$T/m7" '"{% include \"x\" %}"'
expect_fail 1 "tag 'include' is not supported" "$BIN" template --model "$T/m7" --input "$T/case.json"

rm -rf "$T"
echo "template cli: ok"
