# pyenv.sh - sourced by the server tests: PY = a python3 with the `openai` package when
# one is found ($COLLAGE_PYTHON, the venv scripts/install-deps.sh makes, python3), else
# plain python3 (OPENAI=0). srvlib.py needs only the standard library.
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PYTHONPATH="$DIR${PYTHONPATH:+:$PYTHONPATH}"
OPENAI=0
PY=python3
for cand in "${COLLAGE_PYTHON:-}" "${COLLAGE_PYENV:-$HOME/.cache/collage/pyenv}/bin/python" python3; do
  [ -n "$cand" ] && command -v "$cand" >/dev/null 2>&1 || continue
  if "$cand" -c "import openai" 2>/dev/null; then PY=$cand; OPENAI=1; break; fi
done
command -v "$PY" >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
