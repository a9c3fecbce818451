"""The official `openai` Python client against every endpoint of `collage serve` (tiny
model, loopback): chat and completions, streamed and whole, n, logprobs, stop strings,
seeds, usage with cached tokens, reasoning (qwen3 parser) and tool calls (hermes parser)
streamed and whole, documents composed into chat, the API key, and the endpoints the
client has no method for (tokenize, detokenize, health, metrics, documents) through
its raw requests."""
import json
import sys

import openai

import srvlib
from srvlib import check

work = srvlib.scratch("server-openai")
model = srvlib.make_model(work + "/model")
srv = srvlib.Server(model, store=work + "/store", args=["--test-hooks", "--api-key", "sekrit",
                                                        "--served-model-name", "tiny",
                                                        "--gpu-tier", "16M", "--host-tier", "16M"])
client = openai.OpenAI(base_url="http://127.0.0.1:%d/v1" % srv.port, api_key="sekrit",
                       max_retries=0, timeout=120)
AUTH = {"Authorization": "Bearer sekrit"}
user = [{"role": "user", "content": "Where is the lighthouse?"}]

# ---- models, auth ---------------------------------------------------------------------
ids = [m.id for m in client.models.list().data]
check(ids == ["tiny"], "models: %r" % ids)
check(client.models.retrieve("tiny").id == "tiny", "models.retrieve")
try:
    openai.OpenAI(base_url=client.base_url, api_key="wrong", max_retries=0).models.list()
    srvlib.fail("a wrong key was accepted")
except openai.AuthenticationError as e:
    check(e.status_code == 401, "wrong key: %d" % e.status_code)
status, _, _ = srv.request("GET", "/v1/models")
check(status == 401, "no key: %d" % status)

# ---- chat: whole, streamed, n, seeds, logprobs, stop ----------------------------------
r = client.chat.completions.create(model="tiny", messages=user, max_tokens=12, seed=7,
                                   temperature=0.8)
c = r.choices[0]
check(r.object == "chat.completion" and c.message.role == "assistant", "chat shape")
check(c.finish_reason in ("length", "stop"), "finish_reason %r" % c.finish_reason)
check(r.usage.completion_tokens <= 12 and r.usage.prompt_tokens > 0, "usage %r" % r.usage)
check(r.usage.prompt_tokens_details is not None and
      r.usage.prompt_tokens_details.cached_tokens is not None, "usage lacks cached_tokens")
again = client.chat.completions.create(model="tiny", messages=user, max_tokens=12, seed=7,
                                       temperature=0.8)
check(again.choices[0].message.content == c.message.content, "same seed, other text")
check(again.usage.prompt_tokens_details.cached_tokens > 0,
      "second identical prompt restored nothing: %r" % again.usage)

chunks = list(client.chat.completions.create(model="tiny", messages=user, max_tokens=12,
                                             seed=7, temperature=0.8, stream=True,
                                             stream_options={"include_usage": True}))
text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
text += "".join(ch.choices[0].delta.reasoning_content or ""
                for ch in chunks if ch.choices and hasattr(ch.choices[0].delta,
                                                           "reasoning_content"))
check(chunks[0].choices[0].delta.role == "assistant", "first chunk carries the role")
check(chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0,
      "include_usage: no usage chunk")
check(chunks[-1].usage.prompt_tokens_details.cached_tokens >= 0, "stream usage cached_tokens")
finals = [ch.choices[0].finish_reason for ch in chunks if ch.choices and
          ch.choices[0].finish_reason]
check(len(finals) == 1, "one finish_reason per choice: %r" % finals)

r = client.chat.completions.create(model="tiny", messages=user, max_tokens=6, n=3, seed=1)
check(sorted(ch.index for ch in r.choices) == [0, 1, 2], "n=3 indices")
check(all(ch.finish_reason for ch in r.choices) and 3 <= r.usage.completion_tokens <= 18,
      "n=3 usage %r" % r.usage)

# (ignore_eos: five tokens whatever the random tiny model draws)
r = client.chat.completions.create(model="tiny", messages=user, max_tokens=5, logprobs=True,
                                   top_logprobs=3, seed=3, extra_body={"ignore_eos": True})
lp = r.choices[0].logprobs.content
check(len(lp) == r.usage.completion_tokens == 5, "one logprob entry per token: %d vs %d"
      % (len(lp), r.usage.completion_tokens))
check(all(len(e.top_logprobs) == 3 and e.logprob <= 0 for e in lp), "top_logprobs")
chunks = list(client.chat.completions.create(model="tiny", messages=user, max_tokens=5,
                                             logprobs=True, top_logprobs=2, seed=3,
                                             stream=True, extra_body={"ignore_eos": True}))
n_lp = sum(len(ch.choices[0].logprobs.content) for ch in chunks
           if ch.choices and ch.choices[0].logprobs)
check(n_lp == 5, "streamed logprobs: %d entries" % n_lp)

# GKA solver iterations per request (a request of its own iteration count)
r = client.chat.completions.create(model="tiny", messages=user, max_tokens=4, seed=3,
                                   extra_body={"num_iter": 5})
check(r.usage.completion_tokens == 4 or r.choices[0].finish_reason == "stop", "num_iter")
chunks = list(client.chat.completions.create(model="tiny", messages=user, max_tokens=4, n=2,
                                             stream=True, extra_body={"num_iter": 0}))
check(len([c for c in chunks if c.choices and c.choices[0].finish_reason]) == 2,
      "num_iter streamed")

# stop strings: the forced text contains "STOP"; the answer ends before it
forced = "alpha beta STOP gamma"
n = len(srvlib.tokens(srv, forced))
r = client.chat.completions.create(model="tiny", messages=user, max_tokens=n, stop=["STOP"],
                                   extra_body={"collage_force_text": forced})
check(r.choices[0].message.content == "alpha beta ", "stop: %r" % r.choices[0].message.content)
check(r.choices[0].finish_reason == "stop", "stop: finish_reason %r" % r.choices[0].finish_reason)

# ---- reasoning: <think> ... </think> as reasoning_content -----------------------------
forced = "<think>\nplan the trip</think>\n\nThe lighthouse is north."
n = len(srvlib.tokens(srv, forced))
r = client.chat.completions.create(model="tiny", messages=user, max_tokens=n,
                                   extra_body={"collage_force_text": forced})
m = r.choices[0].message
check(m.reasoning_content == "\nplan the trip", "reasoning_content %r" % m.reasoning_content)
check(m.content == "\n\nThe lighthouse is north.", "content %r" % m.content)
chunks = list(client.chat.completions.create(model="tiny", messages=user, max_tokens=n,
                                             stream=True,
                                             extra_body={"collage_force_text": forced}))
rs = "".join(getattr(ch.choices[0].delta, "reasoning_content", None) or "" for ch in chunks)
ct = "".join(ch.choices[0].delta.content or "" for ch in chunks)
check(rs == "\nplan the trip" and ct == "\n\nThe lighthouse is north.",
      "streamed reasoning %r / content %r" % (rs, ct))
r = client.chat.completions.create(model="tiny", messages=user, max_tokens=4,
                                   extra_body={"chat_template_kwargs": {"enable_thinking": False}})
check(r.usage.prompt_tokens > len(srvlib.tokens(srv, "<|im_start|>user\nWhere is the lighthouse?"
                                                "<|im_end|>\n<|im_start|>assistant\n")),
      "enable_thinking=false adds the empty think block to the prompt")

# ---- tools: Hermes <tool_call> as tool_calls ------------------------------------------
tools = [{"type": "function", "function": {
    "name": "get_weather", "description": "weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
forced = ("Let me check.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
          "{\"city\": \"Paris\"}}\n</tool_call>")
n = len(srvlib.tokens(srv, forced))
r = client.chat.completions.create(model="tiny", messages=user, tools=tools, max_tokens=n,
                                   extra_body={"collage_force_text": forced})
c = r.choices[0]
check(c.finish_reason == "tool_calls", "tools finish_reason %r" % c.finish_reason)
check(c.message.content == "Let me check.", "content before the call %r" % c.message.content)
check(len(c.message.tool_calls) == 1, "one tool call")
tc = c.message.tool_calls[0]
check(tc.function.name == "get_weather" and json.loads(tc.function.arguments) ==
      {"city": "Paris"}, "tool call %r" % tc)
check(tc.id.startswith("chatcmpl-tool-"), "tool call id %r" % tc.id)
chunks = list(client.chat.completions.create(model="tiny", messages=user, tools=tools,
                                             max_tokens=n, stream=True,
                                             extra_body={"collage_force_text": forced}))
name, args, content = None, "", ""
for ch in chunks:
    d = ch.choices[0].delta
    content += d.content or ""
    for t in d.tool_calls or []:
        check(t.index == 0, "tool index")
        if t.function.name:
            name = t.function.name
        args += t.function.arguments or ""
check(name == "get_weather" and json.loads(args) == {"city": "Paris"},
      "streamed call %r %r" % (name, args))
check(content == "Let me check.", "streamed content %r" % content)
check(chunks[-1].choices[0].finish_reason == "tool_calls", "streamed finish_reason")
# a follow-up turn with the call and its result renders through the template
r = client.chat.completions.create(model="tiny", max_tokens=4, tools=tools, messages=user + [
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": tc.id, "type": "function", "function": {"name": "get_weather",
                                                       "arguments": tc.function.arguments}}]},
    {"role": "tool", "tool_call_id": tc.id, "content": "sunny"}])
check(r.choices[0].finish_reason in ("length", "stop"), "tool result turn")
r = client.chat.completions.create(model="tiny", messages=user, tools=tools, max_tokens=n,
                                   tool_choice="none",
                                   extra_body={"collage_force_text": forced})
check(not r.choices[0].message.tool_calls and "<tool_call>" in r.choices[0].message.content,
      "tool_choice none leaves the text")

# ---- completions: whole, streamed, echo, batch, logprobs ------------------------------
r = client.completions.create(model="tiny", prompt="Once upon a time", max_tokens=8, seed=2)
check(r.object == "text_completion" and r.usage.completion_tokens <= 8, "completion")
check(r.usage.prompt_tokens_details.cached_tokens >= 0, "completion usage cached_tokens")
chunks = list(client.completions.create(model="tiny", prompt="Once upon a time", max_tokens=8,
                                        seed=2, stream=True))
check("".join(ch.choices[0].text for ch in chunks) == r.choices[0].text,
      "streamed completion differs from the whole one")
r = client.completions.create(model="tiny", prompt="Once", max_tokens=3, echo=True)
check(r.choices[0].text.startswith("Once"), "echo")
r = client.completions.create(model="tiny", prompt=["one", "two"], max_tokens=3, n=2)
check(sorted(ch.index for ch in r.choices) == [0, 1, 2, 3], "batch x n")
toks = srvlib.tokens(srv, "Once upon")
r = client.completions.create(model="tiny", prompt=toks, max_tokens=4, logprobs=2)
lp = r.choices[0].logprobs
check(len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset),
      "completion logprobs arrays")
# the end token counts in completion_tokens (as in vLLM); it has no text or logprob entry
ended = None
for s in range(40):
    r = client.completions.create(model="tiny", prompt="Question:", max_tokens=4, seed=s,
                                  logprobs=1)
    if r.choices[0].finish_reason == "stop":
        ended = r
        break
check(ended is not None, "no seed in 0..39 ended on the end token")
check(ended.usage.completion_tokens == len(ended.choices[0].logprobs.tokens) + 1,
      "end token not counted: %r %r" % (ended.usage, ended.choices[0].logprobs.tokens))

# ---- errors through the client --------------------------------------------------------
for bad, field in [({"temperature": 5}, "temperature"), ({"top_p": 0}, "top_p"),
                   ({"n": 0}, "n"), ({"max_tokens": 100000}, "max_tokens")]:
    try:
        client.chat.completions.create(model="tiny", messages=user, **bad)
        srvlib.fail("accepted %r" % bad)
    except openai.BadRequestError as e:
        check(field in str(e), "error for %r does not name %s: %s" % (bad, field, e))
try:
    client.chat.completions.create(model="nope", messages=user)
    srvlib.fail("unknown model accepted")
except openai.BadRequestError as e:
    check("model" in str(e), "unknown model: %s" % e)

# ---- documents: ingest, list, get, pin, compose into chat, delete ---------------------
docs = client.post("/documents", cast_to=object, body={
    "documents": [{"text": "The keeper wrote in a green book.", "name": "a"},
                  "The boy found a wooden box on the beach."],
    "prefix": "<|im_start|>system\nAnswer from the documents.<|im_end|>\n"})
check(len(docs["data"]) == 2 and all(len(d["id"]) == 32 for d in docs["data"]), "ingest %r"
      % docs)
id0, id1 = docs["data"][0]["id"], docs["data"][1]["id"]
listed = client.get("/documents", cast_to=object)
check({id0, id1} <= {d["id"] for d in listed["data"]}, "list")
got = client.get("/documents/" + id0, cast_to=object)
check(got["name"] == "a" and got["tokens"] > 0, "get %r" % got)
pinned = client.post("/documents/%s/pin" % id0, cast_to=object, body={})
check(pinned["pinned"] is True, "pin")
check(client.get("/documents/" + id0, cast_to=object)["pinned"] is True, "get shows the pin")
check(client.post("/documents/%s/unpin" % id0, cast_to=object, body={})["pinned"] is False,
      "unpin")
check(client.get("/documents/" + id0, cast_to=object)["pinned"] is False, "get after unpin")
again = client.post("/documents", cast_to=object, body={
    "documents": [{"text": "The keeper wrote in a green book.", "name": "a"}],
    "prefix": "<|im_start|>system\nAnswer from the documents.<|im_end|>\n"})
check(again["data"][0]["cached"] is True and again["data"][0]["id"] == id0, "re-ingest cached")
for ct in ("concat_kv_soup_ssm", "concat_kv_fuse_ssm", "sw_caso_ssm"):
    r = client.chat.completions.create(model="tiny", messages=user, max_tokens=5, seed=5,
                                       extra_body={"documents": [id0, id1], "compose_type": ct})
    check(r.usage.prompt_tokens_details.cached_tokens > 0, "documents count as cached: %r"
          % r.usage)
    check(r.usage.prompt_tokens > r.usage.prompt_tokens_details.cached_tokens, "doc usage")
chunks = list(client.chat.completions.create(model="tiny", messages=user, max_tokens=5, n=2,
                                             stream=True, extra_body={"documents": [id1, id0]}))
check(len([ch for ch in chunks if ch.choices and ch.choices[0].finish_reason]) == 2,
      "documents streamed with n=2")
# seeded: unseeded sampling on the random tiny model picks the end token first now and then
r = client.completions.create(model="tiny", prompt="Question:", max_tokens=4, seed=0,
                              extra_body={"documents": [id0]})
check(r.usage.completion_tokens == 4 and r.choices[0].finish_reason == "length",
      "completion over documents: %r %r" % (r.usage, r.choices[0].finish_reason))
try:
    client.chat.completions.create(model="tiny", messages=user,
                                   extra_body={"documents": ["0" * 32]})
    srvlib.fail("an unknown document was accepted")
except openai.NotFoundError:
    pass
deleted = client.delete("/documents/" + id1, cast_to=object)
check(deleted["deleted"] is True, "delete")
try:
    client.get("/documents/" + id1, cast_to=object)
    srvlib.fail("a deleted document is still there")
except openai.NotFoundError:
    pass

# ---- endpoints outside /v1 (no key needed, as vLLM) -----------------------------------
tk = srv.json("POST", "/tokenize", {"prompt": "Hello world"})
check(tk["count"] == len(tk["tokens"]) and tk["max_model_len"] > 0, "tokenize %r" % tk)
dt = srv.json("POST", "/detokenize", {"tokens": tk["tokens"]})
check(dt["prompt"] == "Hello world", "detokenize %r" % dt)
tk = srv.json("POST", "/tokenize", {"messages": user, "return_token_strs": True})
check(len(tk["token_strs"]) == tk["count"], "tokenize messages")
check(srv.json("GET", "/health")["status"] == "ok", "health")
m = srv.metrics()
for name in ("collage_requests_running", "collage_requests_waiting", "collage_kv_pages_free",
             "collage_state_slots_free", "collage_time_to_first_token_seconds_count",
             "collage_inter_token_latency_seconds_count", "collage_prefix_cached_tokens_total",
             "collage_store_bytes", 'collage_tier_hits_total{tier="store"}',
             "collage_generation_tokens_total"):
    check(name in m, "metrics lack " + name)
check(m["collage_prefix_cache_hits_total"] > 0, "no prefix cache hit counted")
check(m["collage_store_skipped_total"] == 0, "a small store was skipped as busy: %r"
      % m["collage_store_skipped_total"])
# documents composed again and again come from the hot tiers (--gpu-tier/--host-tier)
check(m['collage_tier_hits_total{tier="gpu"}'] + m['collage_tier_hits_total{tier="host"}'] > 0,
      "no hot-tier hit: %r" % {k: v for k, v in m.items() if "tier" in k})
check(m['collage_tier_bytes{tier="gpu"}'] > 0, "the gpu tier holds nothing")
check(m["collage_generation_tokens_total"] > 50, "generation tokens not counted")

srv.stop()
print("ok: openai client against every endpoint")
