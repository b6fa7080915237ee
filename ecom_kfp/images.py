"""Container images of this package, tagged with its version (pinned; never ``latest``).

``ECOM_KFP_IMAGE_REGISTRY`` overrides the registry when compiling for a private one.
"""

from __future__ import annotations

import os

from ecom_kfp import __version__

DEFAULT_REGISTRY = "ghcr.io/ecom-kfp"
#: image name -> Dockerfile under images/
IMAGES = {
    "ecom-kfp": "images/cpu/Dockerfile",
    "ecom-kfp-gpu": "images/gpu/Dockerfile",
    # MLflow tracking server of the cluster install (manifests/base); not a component image.
    "ecom-kfp-mlflow": "images/mlflow/Dockerfile",
}


def registry() -> str:
    """Registry prefix for image references."""
    return os.environ.get("ECOM_KFP_IMAGE_REGISTRY", DEFAULT_REGISTRY).rstrip("/")


def image_ref(name: str = "ecom-kfp") -> str:
    """Fully qualified, version-pinned reference of one of :data:`IMAGES`."""
    if name not in IMAGES:
        raise ValueError(f"unknown image {name!r}; known: {sorted(IMAGES)}")
    return f"{registry()}/{name}:{__version__}"


CPU_IMAGE = image_ref("ecom-kfp")
GPU_IMAGE = image_ref("ecom-kfp-gpu")

#: How the GPU image serves as an MPI Operator launcher/worker (images/gpu/Dockerfile and
#: images/gpu/sshd_config): a non-root user whose sshd listens on an unprivileged port and reads
#: the operator's keys from its home directory.
GPU_IMAGE_UID = 1000
GPU_IMAGE_SSH_DIR = "/home/ecom/.ssh"
GPU_IMAGE_SSH_PORT = 2222
GPU_IMAGE_SSHD_COMMAND = ("/usr/sbin/sshd", "-De", "-f", "/home/ecom/.sshd_config")
