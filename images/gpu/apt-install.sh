#!/usr/bin/env bash
# Install Python 3.11 (deadsnakes PPA: Ubuntu 22.04 ships 3.10) plus the Debian packages given as
# arguments, then drop the tools only needed to add the PPA. Used by both stages of
# images/gpu/Dockerfile so the build and runtime stages have the same interpreter at the same
# path (/usr/bin/python3.11), which the venv copied between them points at.
#
# Usage: apt-install.sh PACKAGE...
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends software-properties-common gpg-agent
add-apt-repository -y ppa:deadsnakes/ppa
apt-get update
apt-get install -y --no-install-recommends python3.11 python3.11-venv "$@"
apt-get purge -y --auto-remove software-properties-common gpg-agent
rm -rf /var/lib/apt/lists/*
