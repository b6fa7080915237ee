"""Write a model directory as an MLflow Model (a ``pyfunc`` from code) for the registry's ``model/`` artifact.

The MLflow Model holds :mod:`ecom_kfp.push.pyfunc_model` as its code, the model directory
(its payload and ``digests.json``, :data:`ecom_kfp.contracts.digests.MODEL_FILES`) as its ``model``
artifact (``artifacts/model/``, :data:`ecom_kfp.contracts.registry.MODEL_LAYOUT_DIR`), evaluate's
``thresholds.json`` beside it (``artifacts/thresholds.json``), a signature
(DataFrame in: ``image`` bytes or ``image_uri``, ``title``; DataFrame out, see the pyfunc) and an
input example of two products. No Python object is pickled: loading runs the code file.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence
from pathlib import Path

from ecom_kfp import __version__
from ecom_kfp.contracts.digests import MODEL_FILES, copy_parts
from ecom_kfp.contracts.serving import THRESHOLDS_FILE
from ecom_kfp.scratch import scratch_dir

#: The pyfunc's code file (not imported here: loading it registers the model object with MLflow).
CODE_FILE = Path(__file__).with_name("pyfunc_model.py")
#: Artifact names of the model directory and of evaluate's thresholds, and the input columns.
MODEL_ARTIFACT, THRESHOLDS_ARTIFACT = "model", "thresholds"
IMAGE, IMAGE_URI, TITLE = "image", "image_uri", "title"
#: Model config: top-k classes per level in the output; no local image paths by default.
MODEL_CONFIG = {"top_k": 3, "allow_local_images": False}


def _example_jpeg(colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def input_example():
    """Two products as the pyfunc takes them (image bytes, no URI, a title)."""
    import pandas as pd

    return pd.DataFrame({IMAGE: [_example_jpeg((200, 40, 40)), _example_jpeg((40, 40, 200))],
                         IMAGE_URI: ["", ""],
                         TITLE: ["classic cotton shirt", "running sneaker"]})


def _signature(num_levels: int, title_attributes: Sequence[str] = ()):
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
    from mlflow.types.schema import Array

    inputs = Schema([ColSpec("binary", IMAGE, required=False),
                     ColSpec("string", IMAGE_URI, required=False),
                     ColSpec("string", TITLE)]
                    # Optional: a product without an attribute gets no word for it, as in training.
                    + [ColSpec("string", column, required=False) for column in title_attributes])
    outputs = [ColSpec("string", "predicted_path", required=False), ColSpec("long", "predicted_level", required=False),
               ColSpec("double", "confidence", required=False), ColSpec("double", "threshold", required=False),
               ColSpec("boolean", "accepted", required=False)]
    for k in range(1, num_levels + 1):
        outputs += [ColSpec(Array("string"), f"level_{k}_classes", required=False),
                    ColSpec(Array("double"), f"level_{k}_probabilities", required=False)]
    outputs.append(ColSpec("string", "error"))
    return ModelSignature(inputs, Schema(outputs), ParamSchema([ParamSpec("target_precision", "double", 0.0)]))


def requirements() -> list[str]:
    """What the pyfunc imports: this package and the versions of its model runtime in this environment."""
    from importlib.metadata import version

    return [f"ecom-kfp=={__version__}"] + [f"{name}=={version(name)}" for name in
                                           ("mlflow", "tensorflow", "tensorflow-text", "pandas", "pillow")]


def save(model_dir: str, target: str, thresholds: str = "") -> str:
    """Save the local model directory ``model_dir`` as an MLflow Model at ``target`` (must not exist).

    Args:
        model_dir: A train output (:class:`ModelLayout`), copied with its ``digests.json``.
        target: The MLflow Model directory to create.
        thresholds: A local ``thresholds.json`` chosen by evaluate; stored beside the model directory
            (``artifacts/thresholds.json``), not inside it, so the model stays exactly what its digests name.
    """
    import mlflow.pyfunc

    from ecom_kfp.predict.model import model_files

    files = model_files(model_dir)
    num_levels = len(files.vocabularies())
    with scratch_dir("mlflow-model") as staging:
        # The artifact keeps its directory name under artifacts/: stage the payload as "model".
        payload = Path(staging, MODEL_ARTIFACT)
        copy_parts(model_dir, MODEL_FILES, str(payload))
        artifacts = {MODEL_ARTIFACT: str(payload)}
        if thresholds:
            artifacts[THRESHOLDS_ARTIFACT] = str(shutil.copy2(thresholds, Path(staging, THRESHOLDS_FILE)))
        mlflow.pyfunc.save_model(
            target, python_model=str(CODE_FILE), artifacts=artifacts,
            model_config=MODEL_CONFIG, signature=_signature(num_levels, files.title_attributes()), input_example=input_example(),
            pip_requirements=requirements())
    return target
