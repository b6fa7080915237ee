#!/usr/bin/env bash
# Build Horovod 0.28.1 against TensorFlow 2.21 (see docs/design.md, "Facts already verified").
#
# Horovod 0.28.1 as released includes horovod/tensorflow/xla_mpi_ops.cc, which needs XLA headers
# that TF 2.21 no longer ships. We fetch the sdist, drop that one source from the TensorFlow
# CMake target and build with Gloo (CPU, this machine and CI) or NCCL+MPI (GPU image).
#
# Usage: scripts/build_horovod.sh [PYTHON]     (default: python on PATH)
# Horovod's runtime dependencies (cloudpickle, psutil, pyyaml, packaging) come from requirements.lock.
#   HOROVOD_FLAVOUR=cpu|gpu   cpu (default): Gloo only; gpu: NCCL + MPI + Gloo.
set -euo pipefail

PYTHON="${1:-python}"
VERSION=0.28.1
FLAVOUR="${HOROVOD_FLAVOUR:-cpu}"

if "$PYTHON" -c "import horovod.tensorflow as h, horovod; assert horovod.__version__ == '$VERSION'; h.init()" >/dev/null 2>&1; then
  echo "horovod $VERSION already built for $("$PYTHON" -c 'import sys; print(sys.prefix)')"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m pip download --no-deps --no-binary :all: "horovod==$VERSION" -d "$work" >"$work/download.log" 2>&1 \
  || { cat "$work/download.log" >&2; exit 1; }
tar -xzf "$work/horovod-$VERSION.tar.gz" -C "$work"
src="$work/horovod-$VERSION"
cmake_file="$src/horovod/tensorflow/CMakeLists.txt"
pattern='list(APPEND TF_SOURCES "${PROJECT_SOURCE_DIR}/horovod/tensorflow/xla_mpi_ops.cc")'
grep -qF "$pattern" "$cmake_file" || { echo "xla_mpi_ops.cc line not found in $cmake_file" >&2; exit 1; }
grep -vF "$pattern" "$cmake_file" > "$cmake_file.new" && mv "$cmake_file.new" "$cmake_file"

export HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1
if [ "$FLAVOUR" = gpu ]; then
  export HOROVOD_GPU_OPERATIONS=NCCL HOROVOD_WITH_MPI=1
else
  export HOROVOD_WITHOUT_MPI=1
fi
export MAKEFLAGS="-j$(nproc)"
# The compiler's and pip's output goes to a log, kept only if the build fails; the terminal gets a line.
log="$work/build.log"
echo "building horovod $VERSION ($FLAVOUR, about five minutes on 2 cores)"
if ! "$PYTHON" -m pip install --no-build-isolation --no-deps "$src" >"$log" 2>&1; then
  kept="$("$PYTHON" -c 'import sys; print(sys.prefix)')/horovod-build.log"
  cp "$log" "$kept"
  tail -n 40 "$log" >&2
  echo "horovod build failed; the whole log: $kept" >&2
  exit 1
fi
# TensorFlow's start-up lines go to stderr; they are shown only if the check fails.
"$PYTHON" -c "import horovod.tensorflow as hvd; hvd.init(); print('horovod', hvd.__version__ if hasattr(hvd,'__version__') else '$VERSION', 'built, gloo:', hvd.gloo_built())" 2>"$work/check.log" \
  || { cat "$work/check.log" >&2; exit 1; }
