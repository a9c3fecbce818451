"""A few hundred malformed requests: bodies cut short, wrong types and out-of-range values
for every field, garbage bytes, deep nesting, unknown paths and methods, oversized bodies
and headers, lying lengths. Every one gets a 4xx (the JSON error names the field where
there is one) and the server keeps answering; then it still exits cleanly on SIGTERM."""
import json
import random
import socket

import srvlib
from srvlib import check

work = srvlib.scratch("server-malformed")
model = srvlib.make_model(work + "/model")
srv = srvlib.Server(model, args=["--max-body-bytes", "65536", "--api-key", "k"])
AUTH = {"Authorization": "Bearer k"}
rng = random.Random(1)
count = 0


def expect_4xx(method, path, body, headers=None, field=None, codes=range(400, 500)):
    global count
    h = dict(AUTH)
    h.update(headers or {})
    st, hd, data = srv.request(method, path, body, h)
    count += 1
    check(st in codes, "%s %s %r -> %d %r" % (method, path, body if body is None or
                                                len(body) < 200 else body[:200], st, data[:300]))
    if hd.get("content-type", "").startswith("application/json"):
        err = json.loads(data)["error"]
        check(err["message"] and err["code"] == st, "error object %r" % err)
        if field:
            check(err["param"] == field or field in err["message"],
                  "%s: error does not name %s: %r" % (body[:100], field, err))


chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
comp = {"prompt": "hi", "max_tokens": 4}
fields = {
    "temperature": [-1, 3, "x", []], "top_p": [0, 2, "x"], "top_k": [-5, 0.5, "x"],
    "min_p": [1, -0.1, "x"], "repetition_penalty": [0, 101, "x"],
    "presence_penalty": [3, -3, "x"], "frequency_penalty": [3, "x"], "seed": ["x", 0.5, []],
    "max_tokens": [0, -1, 0.5, "x", 1e12], "n": [0, 100, "x", 1.5], "stop": [5, [1], [""]],
    "stream": ["x", 1], "logprobs": ["x", 3, 30], "model": [5, "nope"],
    "stream_options": ["x", {"include_usage": True}], "num_iter": [-1, 5000, "x"],
    "documents": ["x", [], ["zz"], [5]], "compose_type": ["bogus", 5],
    "logit_bias": [{"1": 5}], "response_format": [{"type": "json_object"}, "x"],
    "echo": ["x"], "ignore_eos": ["x"], "tools": ["x", [{}], [{"type": "function"}]],
    "tool_choice": ["required", {"type": "function"}], "chat_template_kwargs": ["x", []],
}
for path, base in (("/v1/chat/completions", chat), ("/v1/completions", comp)):
    for name, values in fields.items():
        if path == "/v1/completions" and name in ("tools", "tool_choice",
                                                  "chat_template_kwargs"):
            continue
        for v in values:
            body = dict(base)
            body[name] = v
            if name == "stream_options":
                body["stream"] = False
            if path == "/v1/completions" and name == "logprobs" and v == 3:
                continue  # a valid integer there
            expect_4xx("POST", path, json.dumps(body), field=name)
    # every cut of a valid body is malformed JSON
    text = json.dumps(base)
    for cut in range(0, len(text) - 1, max(1, len(text) // 25)):
        expect_4xx("POST", path, text[:cut])
    # random garbage
    for _ in range(10 if srvlib.SANITIZED else 30):
        expect_4xx("POST", path, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))))
    # structure: wrong top-level types, deep nesting, invalid UTF-8
    for body in ("[]", "3", "null", "\"x\"", "{" * 2000 + "}" * 2000,
                 "[" * 5000, b"{\"prompt\": \"\xff\xfe\", \"messages\": 5}"):
        expect_4xx("POST", path, body)

# messages of every wrong shape
for msgs in ("x", [], [1], [{}], [{"role": 5}], [{"role": "pirate", "content": "x"}],
             [{"role": "user"}], [{"role": "user", "content": 5}],
             [{"role": "user", "content": [{"type": "image_url"}]}],
             [{"role": "user", "content": [{"type": "text"}]}],
             [{"role": "user", "content": "x", "tool_calls": "y"}],
             [{"role": "assistant", "content": None, "tool_calls": [{"function": {}}]}]):
    expect_4xx("POST", "/v1/chat/completions", json.dumps({"messages": msgs}), field="messages")
# prompts of every wrong shape
for p in (5, [1, -1], [1, 1.5], [["a"]], [[1], 5], "", [], {"a": 1}):
    expect_4xx("POST", "/v1/completions", json.dumps({"prompt": p}), field="prompt")
# context overflow names the limit
expect_4xx("POST", "/v1/completions", json.dumps({"prompt": "x", "max_tokens": 10 ** 6}),
           field="max_tokens")
expect_4xx("POST", "/v1/completions", json.dumps({"prompt": list(range(1, 500)) * 9}),
           field="prompt")
# tokenize / detokenize / documents
for body in ("{", "[]", "{}", '{"prompt": 5}', '{"prompt": "a", "messages": []}',
             '{"prompt": "a", "model": "nope"}'):
    expect_4xx("POST", "/tokenize", body)
for body in ("{", "{}", '{"tokens": "x"}', '{"tokens": [-1]}', '{"tokens": [99999999]}'):
    expect_4xx("POST", "/detokenize", body)
for body in ("{", "{}", '{"documents": []}', '{"documents": [5]}', '{"documents": [{}]}',
             '{"documents": [{"text": "a", "token_ids": [1]}]}',
             '{"documents": [{"token_ids": [-5]}]}', '{"documents": ["a"], "pin": "yes"}',
             '{"documents": ["a"], "prefix": 5}'):
    expect_4xx("POST", "/v1/documents", body)
# paths and methods
for method, path in (("GET", "/v1/chat/completions"), ("DELETE", "/v1/models"),
                     ("GET", "/nope"), ("POST", "/v1/documents/xyz"),
                     ("PUT", "/v1/documents/" + "0" * 32), ("GET", "/v1/models/other"),
                     ("GET", "/v1/documents/" + "0" * 32), ("POST", "/health"),
                     ("GET", "/v1/documents/" + "0" * 32 + "/pin")):
    expect_4xx(method, path, None)
# the key
expect_4xx("GET", "/v1/models", None, headers={"Authorization": "Bearer wrong"}, codes=[401])
expect_4xx("GET", "/v1/models", None, headers={"Authorization": "Basic k"}, codes=[401])
# too big: body (by Content-Length and by chunks), headers
expect_4xx("POST", "/v1/completions", "x" * 70000, codes=[413])


def raw(data, expect, wait=30):
    """expect: statuses; 0 also accepts a close without an answer, -1 still waiting after
    `wait` seconds (for the rest of a body: the idle timeout closes it later)."""
    global count
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=wait)
    cut = False  # the server answered and closed before it read everything we sent
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    except OSError:
        cut = True
    reply = b""
    try:
        while b"\r\n\r\n" not in reply:  # the status and headers are enough
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    except ConnectionResetError:
        cut = True  # its reset may discard the answer it sent before closing
    except socket.timeout:
        check(-1 in expect, "raw %r: no answer within %ds" % (data[:60], wait))
        count += 1
        s.close()
        return
    s.close()
    count += 1
    status = reply.split(b"\r\n", 1)[0]
    ok = any((b" %d " % e) in status + b" " for e in expect if e) or (0 in expect and not reply)
    # a request refused for its size may be cut off by the server mid-send
    ok = ok or (cut and not reply and any(e in (413, 431) for e in expect))
    check(ok, "raw %r -> %r" % (data[:60], reply[:200]))


raw(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(b"%x\r\n%s\r\n" % (4096, b"y" * 4096)
                                                     for _ in range(20)) + b"0\r\n\r\n", [413])
raw(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n", [413, 431])
raw(b"GARBAGE\r\n\r\n", [0, 400, 405, 501])  # libmicrohttpd may just close
# a body shorter than its Content-Length: closed, or waited for until the idle timeout
raw(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
    b"Content-Length: 5\r\n\r\n{\"a\"", [0, 400, -1], wait=3)

check(srv.json("GET", "/health")["status"] == "ok", "health after the abuse")
r = srv.json("POST", "/v1/completions", comp, headers=AUTH)
check(r["usage"]["completion_tokens"] <= 4, "serving after the abuse")
check(count >= 250, "only %d malformed requests" % count)
srv.stop()
print("ok: %d malformed requests answered 4xx, server alive" % count)
