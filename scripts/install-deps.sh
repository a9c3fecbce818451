#!/usr/bin/env bash
# Installs the Debian packages collage builds against, if any is missing.
# Needs root (or sudo) only when something has to be installed.
set -euo pipefail

packages=(build-essential cmake pkg-config liblmdb-dev libxxhash-dev libcjson-dev
          libpcre2-dev libutf8proc-dev libopenblas-dev libcmocka-dev libmicrohttpd-dev
          python3 python3-venv)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# the official openai Python client for the server tests (tests/server), in a venv
pyenv=${COLLAGE_PYENV:-$HOME/.cache/collage/pyenv}
if ! "$pyenv/bin/python" -c "import openai" 2>/dev/null; then
  echo "install-deps: installing the openai client in $pyenv" >&2
  { python3 -m venv "$pyenv" && "$pyenv/bin/pip" install -q openai; } ||
    echo "install-deps: no openai client (tests/server/test_openai.sh will skip)" >&2
fi
