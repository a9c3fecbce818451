"""Reuse across requests and restarts: the next turn of a conversation resumes from the
stored state of the previous one (cached_tokens covers the earlier turn), and after a
SIGTERM and a new process on the same store the first request resumes from the store
(cached_tokens > 0, a store-tier hit) with output identical to the first process's.
Documents ingested before the restart are still there."""
import srvlib
from srvlib import check

work = srvlib.scratch("server-restart")
model = srvlib.make_model(work + "/model")
store = work + "/store"
turn1 = [{"role": "user", "content": "Where did the boy find the box?"}]
req = {"messages": turn1, "temperature": 0, "max_tokens": 16, "ignore_eos": True}

srv = srvlib.Server(model, store=store, args=["--test-hooks"])
r1 = srv.json("POST", "/v1/chat/completions", req)
check(r1["usage"]["prompt_tokens_details"]["cached_tokens"] == 0, "a fresh store had a hit")
answer = r1["choices"][0]["message"]["content"] or ""
# a conversation whose answer (forced: known text, then the end of the turn) comes back
# in the next turn's prompt: that turn restores everything up to it
said = "The box was on the beach."
forced = said + "<|im_end|>"
t1 = srv.json("POST", "/v1/chat/completions", {
    "messages": turn1, "max_tokens": len(srvlib.tokens(srv, forced)),
    "collage_force_text": forced})
n1 = t1["usage"]["prompt_tokens"]
check(t1["choices"][0]["message"]["content"] == said, "forced answer %r" % t1["choices"])
turn2 = turn1 + [{"role": "assistant", "content": said},
                 {"role": "user", "content": "And then?"}]
r2 = srv.json("POST", "/v1/chat/completions", {"messages": turn2, "max_tokens": 4})
cached2 = r2["usage"]["prompt_tokens_details"]["cached_tokens"]
check(cached2 >= n1 + len(srvlib.tokens(srv, said)),
      "turn 2 restored %d tokens; turn 1 had %d + its answer" % (cached2, n1))
doc = srv.json("POST", "/v1/documents", {"documents": ["The keeper climbed the steps."]},
               expect=201)["data"][0]["id"]
srv.stop()

srv = srvlib.Server(model, store=store)
again = srv.json("POST", "/v1/chat/completions", req)
check(again["usage"]["prompt_tokens_details"]["cached_tokens"] > 0,
      "after the restart nothing was restored: %r" % again["usage"])
check((again["choices"][0]["message"]["content"] or "") == answer,
      "different output after the restart: %r vs %r" % (again["choices"][0]["message"], answer))
m = srv.metrics()
check(m['collage_tier_hits_total{tier="store"}'] >= 1, "no store-tier hit counted")
check(doc in [d["id"] for d in srv.json("GET", "/v1/documents")["data"]],
      "the document is gone after the restart")
srv.stop()
print("ok: turn 2 restored %d of %d tokens; restart resumed from the store" %
      (cached2, r2["usage"]["prompt_tokens"]))
