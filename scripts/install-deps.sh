#!/usr/bin/env bash
# Installs the Debian packages collage builds against, if any is missing.
# Needs root (or sudo) only when something has to be installed.
set -euo pipefail

packages=(build-essential cmake pkg-config liblmdb-dev libxxhash-dev libcjson-dev
          libpcre2-dev libutf8proc-dev libopenblas-dev libcmocka-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
