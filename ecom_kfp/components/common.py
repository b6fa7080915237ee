"""What every KFP component of this package shares.

Components are lightweight Python components whose body imports ``ecom_kfp`` (docs/design.md: that is
what ``kfp.local.SubprocessRunner`` can run and what a cluster runs from our image). The image
already has ``kfp`` and ``ecom_kfp`` installed, so nothing is pip-installed at run time.
"""

from __future__ import annotations

import functools

from kfp import dsl

from ecom_kfp.images import CPU_IMAGE, GPU_IMAGE

#: Decorator for CPU stages.
cpu_component = functools.partial(dsl.component, base_image=CPU_IMAGE, install_kfp_package=False)
#: Decorator for stages that run TensorFlow training on GPU nodes.
gpu_component = functools.partial(dsl.component, base_image=GPU_IMAGE, install_kfp_package=False)
