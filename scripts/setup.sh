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
# pip's output goes to a log; the terminal gets a line per step, and the log's end if a step fails.
log="$VENV/setup.log"
quietly() {
  "$@" >>"$log" 2>&1 || { tail -n 40 "$log" >&2; echo "set-up failed: $*; the whole log: $log" >&2; exit 1; }
}
echo "set-up: installing the pinned packages of requirements.lock into $VENV (log: $log)"
quietly "$VENV/bin/python" -m pip install --upgrade pip==26.3 wheel==0.48.0 setuptools==84.2.1
quietly "$VENV/bin/python" -m pip install -r requirements.lock
quietly "$VENV/bin/python" -m pip install --no-deps --no-build-isolation -e .
scripts/build_horovod.sh "$VENV/bin/python"
echo "$want" > "$stamp"
echo "set-up: done ($VENV)"
