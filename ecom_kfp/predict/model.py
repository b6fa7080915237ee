"""Find a model's SavedModel, labels and thresholds, whatever form the user names it in.

Three forms are accepted (:func:`open_model`):

- a train output (:class:`~ecom_kfp.contracts.layouts.ModelLayout`: ``saved_model/``, ``labels/``),
  whose files are verified against its ``digests.json`` before anything reads them, as evaluate and
  push do (:func:`~ecom_kfp.contracts.digests.verify_model`): a SavedModel runs its own graph;
- a pushed serving version (``<serving>/<name>/<version>/``: ``saved_model.pb`` at the root and
  ``assets.extra/labels/``, see :mod:`ecom_kfp.push.payload`), whose files are verified against the
  record push wrote beside it (:func:`ecom_kfp.push.serving.verify_version`);
- a registry reference, ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``: the version's verified
  serving copy when push recorded one, else its registered artifacts, downloaded (a train output
  with its ``digests.json``, verified like one).

A model named by a path or URI is first copied to a private local directory; the copy is what is
verified and loaded (:func:`~ecom_kfp.contracts.digests.private_copy`), so a file swapped in the
shared store after the check never runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from ecom_kfp import uri
from ecom_kfp.contracts import registry
from ecom_kfp.contracts.digests import private_copy, private_model_copy, verify_model
from ecom_kfp.contracts.features import MANIFEST_KEY, FeatureSpec
from ecom_kfp.contracts.labels import Vocabulary, count_levels, load_all, vocabulary_uri
from ecom_kfp.contracts.layouts import ModelLayout
from ecom_kfp.contracts.serving import Thresholds
from ecom_kfp.evaluate.baseline import MODELS_SCHEME, RegistryRef, find_version, registry_client
from ecom_kfp.push.payload import EXTRA
from ecom_kfp.push.serving import RECORDS, verify_version
from ecom_kfp.scratch import scratch_dir

KIND_TRAIN = "train output"
KIND_SERVING = "serving version"
KIND_REGISTRY = "registered model"


@dataclass(frozen=True)
class ModelFiles:
    """Where a model's serving files are.

    Attributes:
        description: What the user named, and what it resolved to.
        kind: :data:`KIND_TRAIN`, :data:`KIND_SERVING` or :data:`KIND_REGISTRY`.
        saved_model: The SavedModel directory; local and private when :func:`open_model` gives it.
        labels: The directory with ``level_<k>.txt`` and ``thresholds.json``.
        manifest: The training dataset's manifest, or "" when the model has none.
        thresholds_file: URI of ``thresholds.json`` when it is not in ``labels`` (an MLflow Model keeps
            it beside the model directory, whose files are exactly those its digests name).
    """

    description: str
    kind: str
    saved_model: str
    labels: str
    manifest: str
    thresholds_file: str = ""

    def vocabularies(self) -> list[Vocabulary]:
        """Every level's vocabulary, level 1 first (as many levels as there are label files)."""
        return load_all(self.labels, count_levels(self.labels))

    def thresholds(self) -> Thresholds | None:
        if self.thresholds_file:
            return Thresholds.load_file(self.thresholds_file)
        return Thresholds.load(self.labels)

    def _manifest(self) -> dict:
        """The dataset manifest ({} without one)."""
        return uri.read_json(self.manifest) if self.manifest and uri.exists(self.manifest) else {}

    def title_attributes(self) -> tuple[str, ...]:
        """The catalog columns the model reads after the title (its dataset's
        :attr:`~ecom_kfp.contracts.features.FeatureSpec.title_attributes`; () without a manifest)."""
        spec = self._manifest().get(MANIFEST_KEY)
        return FeatureSpec.from_dict(spec).title_attributes if spec else ()

    def train_counts(self) -> dict[str, dict[str, int]]:
        """``{"level_<k>": {class: training records}}`` from the dataset manifest ({} without one)."""
        counts = self._manifest().get("counts", {}).get("train", {})
        return {key: value for key, value in counts.items() if key.startswith("level_")}


def model_files(root: str, description: str = "", kind: str = "", thresholds_file: str = "",
                shown: str = "") -> ModelFiles:
    """The files of a train output or a serving version at ``root``, verified against their digests
    where they are (a private directory: :func:`verified_copy` makes one of a shared location).

    Args:
        root: The model directory.
        description: What the user named, and what it resolved to (default: ``shown`` or ``root``).
        kind: :data:`KIND_TRAIN`, :data:`KIND_SERVING` or :data:`KIND_REGISTRY` (default: by layout).
        thresholds_file: ``thresholds.json`` when it is not among the labels.
        shown: The model as the user named it, for messages, when ``root`` is a copy of it.

    Raises:
        FileNotFoundError: ``root`` is neither (the message names ``--model``).
        DigestError: a train output without ``digests.json`` or a serving version without push's record,
            or one whose files differ from it.
    """
    shown = shown or root
    layout = ModelLayout(root)
    if _is_train_output(root):
        verify_model(layout, shown=shown)
        files = ModelFiles(description or shown, kind or KIND_TRAIN, layout.saved_model, layout.labels,
                           layout.manifest, thresholds_file)
    elif _is_serving_version(root):
        verify_version(root, shown=shown)
        files = ModelFiles(description or shown, kind or KIND_SERVING, root, uri.join(root, EXTRA, "labels"),
                           uri.join(root, EXTRA, "dataset_manifest.json"), thresholds_file)
    else:
        raise FileNotFoundError(f"--model {shown}: neither a train output (saved_model/saved_model.pb) nor a "
                                "serving version (saved_model.pb)")
    if not uri.exists(vocabulary_uri(files.labels, 1)):
        raise FileNotFoundError(f"--model {shown}: no label files (level 1's is missing)")
    return files


def _is_train_output(root: str) -> bool:
    return uri.exists(uri.join(ModelLayout(root).saved_model, "saved_model.pb"))


def _is_serving_version(root: str) -> bool:
    return uri.exists(uri.join(root, "saved_model.pb"))


@contextlib.contextmanager
def verified_copy(root: str, description: str = "", kind: str = "") -> Iterator[ModelFiles]:
    """:func:`model_files` of a private local copy of the model at ``root``: a train output's served
    files and digests, or a serving version with push's record of it. What is verified is what is
    loaded, however the shared original changes meanwhile; the copy lasts until the block ends.

    Raises:
        FileNotFoundError / DigestError: as :func:`model_files`, naming ``root``.
    """
    if _is_train_output(root):
        with private_model_copy(root) as local:
            yield model_files(local.root, description, kind, shown=root)
    elif _is_serving_version(root):
        # Push's record lives beside the version (<name>/.versions/<version>.json): copy both.
        parent, version = uri.split(root)
        with private_copy(parent, (version, f"{RECORDS}/{version}.json")) as local:
            yield model_files(os.path.join(local, version), description, kind, shown=root)
    else:
        yield model_files(root)  # raises, naming what is missing


@contextlib.contextmanager
def open_model(model: str, registry_uri: str = "") -> Iterator[ModelFiles]:
    """The model ``model`` names (see the module docstring); a download lives until the block ends.

    Raises:
        FileNotFoundError: a URI that is not a model, or a reference the registry does not know.
    """
    if not model.startswith(MODELS_SCHEME):
        with verified_copy(model) as files:
            yield files
        return
    ref = RegistryRef.parse(model, registry.CHAMPION)
    version = find_version(registry_client(registry_uri), ref)
    if version is None:
        raise FileNotFoundError(f"--model {model}: not found in the registry at {registry_uri}")
    description = f"{ref} (version {version.version})"
    serving = version.tags.get(registry.SERVING_URI)
    if serving and version.tags.get(registry.SERVING_STATUS) == registry.SERVING_VERIFIED and uri.exists(serving):
        with verified_copy(serving, f"{description} at {serving}", KIND_REGISTRY) as files:
            yield files
        return
    import mlflow.artifacts

    with scratch_dir("predict-model") as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=tmp,
                                                    tracking_uri=registry_uri)
        yield model_files(registry.layout_root(local), f"{description} from {version.source}", KIND_REGISTRY,
                          registry.thresholds_file(local))
