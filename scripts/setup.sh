#!/usr/bin/env bash
# One-shot set-up used by `make demo` and `make test`: Debian packages, virtual environment,
# pinned Python packages, this package (editable) and Horovod built per docs/design.md.
# Idempotent: a finished step is skipped on the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3

# postgresql: initdb and postgres for the tests that run MLflow on PostgreSQL as the cluster does.
DEBIAN_PACKAGES=(cmake g++ make postgresql)
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

stamp="$VENV/.ecom-kfp-setup"
want="$(cat requirements.lock pyproject.toml scripts/build_horovod.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip==26.3 wheel==0.48.0 setuptools==84.2.1
"$VENV/bin/python" -m pip install -q -r requirements.lock
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
scripts/build_horovod.sh "$VENV/bin/python"
echo "$want" > "$stamp"
