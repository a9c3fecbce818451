#!/usr/bin/env bash
# collage serve's command line: usage errors exit 2, runtime errors (model, port in use,
# key file) exit 1, each with one line naming the flag or file; --help exits 0.
set -uo pipefail
source "$(dirname "$0")/../cli/lib.sh"
dir=$(scratch server-cli)
"$BIN" mkmodel --preset tiny-gka --out "$dir/m" >/dev/null 2>&1 || fail "mkmodel"
"$BIN" serve --help >/dev/null || fail "--help"
expect_fail 2 "--model is required" "$BIN" serve --no-store
expect_fail 2 "reasoning-parser" "$BIN" serve --model "$dir/m" --no-store --reasoning-parser x
expect_fail 2 "tool-call-parser" "$BIN" serve --model "$dir/m" --no-store --tool-call-parser x
expect_fail 2 "exclude each other" "$BIN" serve --model "$dir/m" --no-store --api-key a \
  --api-key-file "$dir/k"
expect_fail 2 "port" "$BIN" serve --model "$dir/m" --no-store --port 70000
expect_fail 2 "max-seqs" "$BIN" serve --model "$dir/m" --no-store --max-seqs 0
expect_fail 1 "$dir/nope" "$BIN" serve --model "$dir/nope" --no-store
: > "$dir/k"
expect_fail 1 "api-key-file.*empty" "$BIN" serve --model "$dir/m" --no-store --api-key-file "$dir/k"
expect_fail 2 "host no.such.host" "$BIN" serve --model "$dir/m" --no-store --host no.such.host.invalid
# a port in use: bind one with python, then ask collage for it
port_file=$dir/port
python3 -c "
import socket, sys, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)
open('$port_file', 'w').write(str(s.getsockname()[1])); sys.stdout.flush(); time.sleep(30)" &
holder=$!
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
expect_fail 1 "cannot listen on 127.0.0.1:$(cat "$port_file")" \
  "$BIN" serve --model "$dir/m" --no-store --port "$(cat "$port_file")"
kill $holder
echo "ok: serve command line"
