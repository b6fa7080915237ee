"""The registered model as an MLflow ``pyfunc``, logged from code (this file, never a pickle).

MLflow runs this file when it loads the model (``mlflow.pyfunc.load_model``, ``mlflow models
serve``); :func:`mlflow.models.set_model` names the model object. Its context's ``model`` artifact
is the model directory (:class:`~ecom_kfp.contracts.layouts.ModelLayout`), so the pyfunc calls
the same serving signature with the same calibration and thresholds (evaluate's ``thresholds.json``,
an artifact of its own) as batch prediction (:class:`ecom_kfp.predict.scoring.Scorer`).

Input, a DataFrame with one row per product (see :mod:`ecom_kfp.push.mlflow_model` for the
signature): ``title`` and either ``image`` (JPEG/PNG bytes; base64 in JSON requests) or
``image_uri`` (``gs://``; local paths only when the model config sets ``allow_local_images``,
since a server must not read its own files on a client's request), and a column per catalog
attribute the model reads after the title (its dataset's ``--title-attributes``, e.g. ``gender``). Output, one row per product:
``predicted_path`` (levels joined with " > "), ``confidence``, ``threshold``, ``accepted``,
``predicted_level``, ``level_<k>_classes`` / ``level_<k>_probabilities`` (top-k per level) and
``error`` (why a product could not be scored, else empty; its other columns are then empty).
Parameter ``target_precision`` (> 0) picks another threshold from the precision curve.
"""

from __future__ import annotations

import mlflow
from mlflow.pyfunc import PythonModel

from ecom_kfp.push.mlflow_model import IMAGE, IMAGE_URI, MODEL_ARTIFACT, THRESHOLDS_ARTIFACT, TITLE


class ProductCategoryModel(PythonModel):
    """Product category classifier: image + title -> category path, per-level top classes, confidence."""

    def load_context(self, context) -> None:
        from ecom_kfp.contracts.serving import load_signature
        from ecom_kfp.predict.model import model_files

        config = context.model_config or {}
        self.files = model_files(context.artifacts[MODEL_ARTIFACT],
                                 thresholds_file=context.artifacts.get(THRESHOLDS_ARTIFACT, ""))
        self.vocabularies = self.files.vocabularies()
        self.signature = load_signature(self.files.saved_model)
        self.top_k = int(config.get("top_k", 3))
        self.allow_local_images = bool(config.get("allow_local_images", False))
        self.title_attributes = self.files.title_attributes()

    def _image(self, row) -> tuple[bytes | None, str]:
        from ecom_kfp import uri

        data = row.get(IMAGE)
        if isinstance(data, (bytes, bytearray)) and data:
            return bytes(data), ""
        location = row.get(IMAGE_URI)
        if not isinstance(location, str) or not location:
            return None, "no image: give image bytes or an image_uri"
        if not uri.is_gcs(location) and not self.allow_local_images:
            return None, f"image_uri {location!r}: only gs:// URIs are read (local files need allow_local_images)"
        try:
            return uri.read_bytes(location), ""
        except Exception as err:  # noqa: BLE001 - a product's unreadable image is reported in its row
            return None, f"image_uri {location!r}: {type(err).__name__}: {err}"

    def predict(self, context, model_input, params=None):
        import pandas as pd

        from ecom_kfp.predict.scoring import Policy, Scorer

        policy = Policy.choose(self.files.thresholds(), len(self.vocabularies),
                               float((params or {}).get("target_precision") or 0.0))
        scorer = Scorer(self.signature, self.vocabularies, policy, self.top_k, self.title_attributes)
        rows = model_input.to_dict("records")
        images, errors = [], []
        for row in rows:
            image, error = self._image(row)
            images.append(image)
            errors.append(error)
        ready = [i for i, error in enumerate(errors) if not error]
        probabilities, undecodable = scorer.probabilities_of_decodable(
            [images[i] for i in ready], [scorer.model_title(str(rows[i].get(TITLE) or ""), rows[i]) for i in ready]
        ) if ready else (None, [])
        for j in undecodable:
            errors[ready[j]] = "image cannot be decoded"
        good = [i for j, i in enumerate(ready) if j not in undecodable]
        columns = ["predicted_path", "predicted_level", "confidence", "threshold", "accepted"] + [
            f"level_{k}_{what}" for k in range(1, scorer.num_levels + 1) for what in ("classes", "probabilities")]
        out: dict[str, list] = {name: [None] * len(rows) for name in columns}
        if probabilities is not None:
            decisions = scorer.decide(probabilities)
            for j, i in enumerate(good):
                out["predicted_path"][i] = " > ".join(scorer.predicted_path(decisions, j))
                out["predicted_level"][i] = int(decisions.predicted_level[j])
                out["confidence"][i] = float(decisions.confidence[j])
                out["threshold"][i] = float(decisions.threshold[j])
                out["accepted"][i] = bool(decisions.accepted[j])
                for k in range(1, scorer.num_levels + 1):
                    out[f"level_{k}_classes"][i] = scorer.class_names(k, decisions.top_index[k - 1][j])
                    out[f"level_{k}_probabilities"][i] = decisions.top_probability[k - 1][j].astype(float).tolist()
        out["error"] = errors
        return pd.DataFrame(out)

mlflow.models.set_model(ProductCategoryModel())
