#!/usr/bin/env bash
# Run a command where loopback is the only network, so that a test which would send traffic off the
# machine (a DNS lookup, a download, a fault test aimed at a real host) fails instead of passing
# quietly. It needs a network namespace: root, unshare and ip, as on CI. Elsewhere, or with
# ECOM_KFP_LOOPBACK_ONLY=off, the command runs on the machine's network, and this says so.
set -euo pipefail
if [[ "${ECOM_KFP_LOOPBACK_ONLY:-auto}" != off ]] && command -v ip >/dev/null && unshare --net true 2>/dev/null; then
  # ECOM_KFP_LOOPBACK_ONLY=1 tells tests/test_loopback_only.py that the isolation is claimed.
  exec unshare --net -- env ECOM_KFP_LOOPBACK_ONLY=1 bash -c 'ip link set lo up && exec "$@"' bash "$@"
fi
echo "loopback_only.sh: running on the machine's network (a loopback-only network namespace needs root," \
     "unshare and ip; ECOM_KFP_LOOPBACK_ONLY=${ECOM_KFP_LOOPBACK_ONLY:-auto})" >&2
exec "$@"
