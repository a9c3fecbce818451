#!/usr/bin/env bash
# bench-serve.sh - `collage serve` on the GPU, driven over HTTP by plain-python clients
# (tests/server/serve_load.py and bench_serve.py: no openai package needed):
#   1. decode throughput through HTTP at the memory-full batch and a 16K context
#      (prompts of CONTEXT - GEN random tokens, GEN tokens each, ignore_eos), next to
#      `collage bench decode` at the same batch and context (target: HTTP >= 90%);
#   2. TTFT of a 32K prompt whose first 31.5K tokens are stored (sent before);
#   3. TTFT of a query composed over 4 stored (hot) documents.
# Results: /tmp/collage-serve-out/{serve.json,summary.txt} (and $OUT when set).
#
#   scripts/gpu/bundle.sh                                   # here, no GPU needed
#   device run: carry [".device"], command "scripts/gpu/bench-serve.sh"
#   CPU=1 scripts/gpu/bench-serve.sh                        # a small CPU rehearsal
#
# Environment: PRESET (gdn-8b), CONTEXT (16384), GEN (2048), BATCH (default: bench
# decode's memory-full batch, capped by what the server's cache holds), TOKENIZER_DIR
# (a Qwen3 tokenizer.json + tokenizer_config.json for the 8B presets, which mkmodel
# writes without one; default $COLLAGE_SHARED/assets/qwen3-tokenizer), MODEL_DIR (reuse a
# checkpoint), PORT (default 0: any free port), OUT_DIR (/tmp/collage-serve-out), STEPS
# (default "decode ttft docs": a subset runs only those, e.g. to stay within a time limit).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=${OUT_DIR:-/tmp/collage-serve-out}
mkdir -p "$out"
if [ "${CPU:-0}" = 1 ]; then
  CL_BIN=${CL_BIN:-$root/build/collage}
  PRESET=${PRESET:-tiny-gdn} CONTEXT=${CONTEXT:-1024} GEN=${GEN:-64} BATCH=${BATCH:-8}
  TTFT_PREFIX=${TTFT_PREFIX:-960} TTFT_TOTAL=${TTFT_TOTAL:-1000} DOC_TOKENS=${DOC_TOKENS:-128}
  VOCAB=500 BACKEND=cpu
  export COLLAGE_TMP=${COLLAGE_TMP:-/tmp/collage-serve-tmp}
else
  source scripts/gpu/env.sh || exit 1
  PRESET=${PRESET:-gdn-8b} CONTEXT=${CONTEXT:-16384} GEN=${GEN:-2048}
  TTFT_PREFIX=${TTFT_PREFIX:-31744} TTFT_TOTAL=${TTFT_TOTAL:-32768} DOC_TOKENS=${DOC_TOKENS:-4096}
  VOCAB=151643 BACKEND=cuda
fi
PY=${PY:-python3}
tmp=${COLLAGE_TMP:-/tmp}/bench-serve
mkdir -p "$tmp"
model=${MODEL_DIR:-$tmp/$PRESET}
log() { echo "== $*" | tee -a "$out/summary.txt"; }
: > "$out/summary.txt"
rm -f "$out/load.json" "$out/ttft.json" "$out/docs.json" "$out/serve.json" "$out/progress.txt"

# ---- the model (random weights) and a tokenizer ---------------------------------------
if [ ! -f "$model/config.json" ]; then
  log "writing $PRESET to $model"
  "$CL_BIN" mkmodel --preset "$PRESET" --out "$model" >> "$out/mkmodel.log" 2>&1 ||
    { echo "mkmodel failed: $(tail -3 "$out/mkmodel.log")"; exit 1; }
fi
if [ ! -f "$model/tokenizer.json" ]; then
  tokdir=${TOKENIZER_DIR:-}
  for d in "$root/.device/qwen3-tokenizer" "${COLLAGE_SHARED:-$root/../shared}/assets/qwen3-tokenizer"; do
    [ -z "$tokdir" ] && [ -f "$d/tokenizer.json" ] && tokdir=$d
  done
  if [ ! -f "$tokdir/tokenizer.json" ]; then
    echo "bench-serve: $PRESET has no tokenizer: copy ../shared/assets/qwen3-tokenizer to" \
         ".device/ (carried) or set TOKENIZER_DIR to a Qwen3 tokenizer.json + tokenizer_config.json"
    exit 1
  fi
  cp "$tokdir/tokenizer.json" "$tokdir/tokenizer_config.json" "$model/"
  [ -f "$tokdir/chat_template.jinja" ] && cp "$tokdir/chat_template.jinja" "$model/"
fi

STEPS=${STEPS:-decode ttft docs}
want() { case " $STEPS " in *" $1 "*) return 0 ;; esac; return 1; }
status=0

# ---- bench decode at the memory-full batch (the reference figure) ----------------------
decode_tps=
if want decode && [ "$BACKEND" = cuda ]; then
  "$CL_BIN" bench decode --preset "$PRESET" --contexts "$CONTEXT" ${BATCH:+--batch $BATCH} \
    --json-out "$out/decode.json" > "$out/decode.txt" 2> "$out/decode.err" ||
    { echo "bench decode failed: $(tail -3 "$out/decode.err")"; exit 1; }
  read -r bench_batch decode_tps < <($PY -c "
import json; r=[x for x in json.load(open('$out/decode.json'))['results'] if x['context']==$CONTEXT]
r=max(r, key=lambda x: x['batch']); print(r['batch'], r['tokens_per_s'])")
  BATCH=${BATCH:-$bench_batch}
fi

# ---- the server ------------------------------------------------------------------------
# start_server MAX_SEQS [STORE_ARGS]: STORE_ARGS default --store (a fresh store)
start_server() {
  rm -rf "$tmp/store" "$out/serve.out" # (a stale "listening on" line would name the old port)
  "$CL_BIN" serve --model "$model" --backend "$BACKEND" --port "${PORT:-0}" \
    ${2:---store $tmp/store} --max-seqs "$1" --max-batch-tokens "${BATCH_TOKENS:-8192}" \
    --max-queue 4096 > "$out/serve.out" 2> "$out/serve.err" &
  server=$!
  for _ in $(seq 1200); do
    if grep -q "listening on" "$out/serve.out" 2>/dev/null; then
      port=$(sed -E 's/.*:([0-9]+) .*/\1/' "$out/serve.out")
      return 0
    fi
    kill -0 $server 2>/dev/null || break
    sleep 0.5
  done
  echo "the server did not start: $(tail -5 "$out/serve.err")"
  exit 1
}
stop_server() { kill -TERM $server; wait $server; }
metric() { $PY -c "
import http.client; c=http.client.HTTPConnection('127.0.0.1',$port); c.request('GET','/metrics')
print(int(float([l.split()[-1] for l in c.getresponse().read().decode().splitlines()
                 if l.startswith('$1 ')][0])))"; }

if want decode; then
# no store here: every finished 16K request would store ~1 GB of state (91 GB for the
# batch: more than the machine's disk); decode speed is the point. The store's part is
# measured below (TTFT with a stored prefix, documents).
start_server "$BATCH" --no-store
# the batch the server's fixed cache holds at this context (prompt + budget reserved per
# request; the CPU cache grows)
fit=$BATCH
if [ "$BACKEND" = cuda ]; then
  pages=$(metric collage_kv_pages_total); slots=$(metric collage_state_slots_total)
  fit=$(( pages * 64 / CONTEXT )); [ "$fit" -gt $((slots - 4)) ] && fit=$((slots - 4))
fi
rebench=0
if [ "$fit" -lt "$BATCH" ]; then
  log "the server holds $fit sequences of $CONTEXT tokens (bench decode: $BATCH): using $fit"
  BATCH=$fit
  # bench decode at that batch runs once the server has stopped (both need the GPU memory)
  [ "$BACKEND" = cuda ] && rebench=1 && decode_tps=
fi
log "decode through HTTP: $BATCH streams, prompts of $((CONTEXT - GEN)) + $GEN tokens"
# progress every 10 s from /metrics (what a run cut short still shows: how far the
# prefills and the decode got, the engine's steps and rows)
( while kill -0 $server 2>/dev/null; do
    $PY -c "
import http.client, time
c = http.client.HTTPConnection('127.0.0.1', $port, timeout=5); c.request('GET', '/metrics')
m = {}
for l in c.getresponse().read().decode().splitlines():
    if l and not l.startswith('#') and '{' not in l:
        k, v = l.split()[:2]; m[k] = float(v)
g = lambda k: int(m.get('collage_' + k, -1))
print(time.strftime('%H:%M:%S'), 'running', g('requests_running'), 'waiting', g('requests_waiting'),
      'prompt_tok', g('prompt_tokens_total'), 'gen_tok', g('generation_tokens_total'),
      'steps', g('engine_steps_total'), 'rows', g('engine_rows_total'),
      'busy_s', round(m.get('collage_engine_busy_seconds_total', -1), 1),
      'pages_free', g('kv_pages_free'), flush=True)" 2>/dev/null
    sleep 10
  done ) >> "$out/progress.txt" &
poller=$!
$PY tests/server/serve_load.py --url "http://127.0.0.1:$port" --clients "$BATCH" \
  --prompt-tokens $((CONTEXT - GEN)) --max-tokens "$GEN" --vocab "$VOCAB" --pid "$server" \
  --timeout 3000 --json-out "$out/load.json" > /dev/null ||
  { log "load: errors (see load.json)"; status=1; }
$PY -c "
import json; r=json.load(open('$out/load.json')); b='$decode_tps'
print('http decode %s tok/s (server counter) / %s chunks/s (clients) while all decode (%s s); '
      '%s tok/s overall; TTFT p50 %.2fs; errors %d; overhead %s us/token'
      % (r.get('decode_tokens_per_s'), r.get('decode_chunks_per_s'), r.get('decode_window_s'),
         r['tokens_per_s'], r['ttft_p50_s'] or 0, r['errors'], r.get('overhead_us_per_token')))" \
  | tee -a "$out/summary.txt"
stop_server
kill $poller 2>/dev/null; wait $poller 2>/dev/null
if [ "$rebench" = 1 ]; then
  "$CL_BIN" bench decode --preset "$PRESET" --contexts "$CONTEXT" --batch "$BATCH" \
    --json-out "$out/decode.json" > "$out/decode.txt" 2> "$out/decode.err" ||
    { log "bench decode at batch $BATCH failed: $(tail -1 "$out/decode.err")"; status=1; }
  decode_tps=$($PY -c "
import json; r=json.load(open('$out/decode.json'))['results']; print(r[0]['tokens_per_s'] if r else '')")
fi
$PY -c "
import json; r=json.load(open('$out/load.json')); b='$decode_tps'
if b and r.get('decode_tokens_per_s'):
    print('bench decode %s tok/s at batch $BATCH, context $CONTEXT: HTTP = %.1f%% (target 90)'
          % (b, 100 * r['decode_tokens_per_s'] / float(b)))" | tee -a "$out/summary.txt"
fi

# ---- TTFT with a stored prefix; composed query over hot documents -----------------------
if want ttft || want docs; then
start_server 8
fi
if want ttft; then
log "TTFT of $TTFT_TOTAL tokens with $TTFT_PREFIX stored"
$PY tests/server/bench_serve.py ttft --url "http://127.0.0.1:$port" --vocab "$VOCAB" \
  --prefix "$TTFT_PREFIX" --total "$TTFT_TOTAL" > "$out/ttft.json" &&
  tee -a "$out/summary.txt" < "$out/ttft.json" || { log "ttft failed"; status=1; }
fi
if want docs; then
log "TTFT of a query composed over 4 documents of $DOC_TOKENS tokens"
$PY tests/server/bench_serve.py docs --url "http://127.0.0.1:$port" --vocab "$VOCAB" \
  --docs 4 --doc-tokens "$DOC_TOKENS" > "$out/docs.json" &&
  tee -a "$out/summary.txt" < "$out/docs.json" || { log "docs failed"; status=1; }
fi
if want ttft || want docs; then
stop_server
fi

$PY -c "
import json, os
o = {k: json.load(open('$out/%s.json' % k)) for k in ('load', 'ttft', 'docs')
     if os.path.exists('$out/%s.json' % k) and os.path.getsize('$out/%s.json' % k)}
o['bench_decode_tokens_per_s'] = float('$decode_tps') if '$decode_tps' else None
o['batch'] = ${BATCH:-None}; o['context'] = $CONTEXT; o['preset'] = '$PRESET'
json.dump(o, open('$out/serve.json', 'w'), indent=1)"
[ -n "${OUT:-}" ] && cp "$out/serve.json" "$out/summary.txt" "$OUT/" 2>/dev/null
exit $status
