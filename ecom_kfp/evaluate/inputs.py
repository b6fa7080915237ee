"""Locate and check the model and test split before any inference, failing fast with the flag named."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from ecom_kfp import uri
from ecom_kfp.contracts.digests import DIGESTS_KEY, verified_model_copy, verify_tree
from ecom_kfp.contracts.features import MANIFEST_KEY, FeatureSpec, split_count
from ecom_kfp.contracts.labels import Vocabulary, load_all
from ecom_kfp.contracts.layouts import DatasetLayout, ModelLayout

TFRECORD_SUFFIX = ".tfrecord.gz"


@dataclass(frozen=True)
class EvaluationInputs:
    """A model and the test split it is scored on, both checked.

    Attributes:
        model_uri: The model as the user named it (``--model``).
        model: Layout of the verified private copy of its files that is loaded
            (:func:`~ecom_kfp.contracts.digests.verified_model_copy`); it lasts as long as the
            :func:`open_inputs` block.
        dataset: Layout of the dataset directory.
        spec: Feature spec of the records (from the dataset's ``manifest.json``).
        vocabularies: The model's label vocabularies, level 1 first (equal to the dataset's).
        test_shards: URIs of the test split's shards, sorted.
        manifest: The dataset's ``manifest.json``.
        model_sha256: Content digest of the model's payload, verified against its ``digests.json``
            (:mod:`ecom_kfp.contracts.digests`) before anything loaded it.
    """

    model_uri: str
    model: ModelLayout
    dataset: DatasetLayout
    spec: FeatureSpec
    vocabularies: list[Vocabulary]
    test_shards: list[str]
    manifest: dict
    model_sha256: str = ""

    @property
    def test_records(self) -> int | None:
        """Records of the whole test split, as the dataset's manifest counts them (None: it does not)."""
        return split_count(self.manifest, "test")


def check_model_dir(model_uri: str, flag: str = "--model") -> ModelLayout:
    """The layout of ``model_uri`` when it holds a SavedModel and label files.

    Raises:
        FileNotFoundError: naming ``flag`` and the missing file.
    """
    model = ModelLayout(model_uri)
    for required in (uri.join(model.saved_model, "saved_model.pb"), uri.join(model.labels, "level_1.txt")):
        if not uri.exists(required):
            raise FileNotFoundError(f"{flag} {model_uri}: not a model directory ({required} is missing)")
    return model


@contextlib.contextmanager
def open_inputs(model_uri: str, data_uri: str, private: bool = False) -> Iterator[EvaluationInputs]:
    """Check both directories, their digests, and that the model's label vocabularies are the dataset's.

    The model is copied to a private local directory and the copy is verified and loaded, so a
    file swapped in the shared store after the check is never run. ``private`` says ``model_uri``
    already is such a directory (a champion this process downloaded): it is verified in place.

    Raises:
        FileNotFoundError: a directory or required file is missing (message names the flag).
        DigestError: a file of the model or of the test split differs from its producer's digests.
        ValueError: vocabularies differ, or the test split has no shards.
    """
    check_model_dir(model_uri)
    with verified_model_copy(model_uri, private=private) as (model, model_sha256):
        yield _dataset_inputs(model_uri, model, model_sha256, data_uri)


def _dataset_inputs(model_uri: str, model: ModelLayout, model_sha256: str, data_uri: str) -> EvaluationInputs:
    dataset = DatasetLayout(data_uri)
    if not uri.exists(dataset.manifest):
        raise FileNotFoundError(f"--data {data_uri}: not a dataset directory ({dataset.manifest} is missing)")
    manifest = uri.read_json(dataset.manifest)
    if MANIFEST_KEY not in manifest:
        raise ValueError(f"--data {data_uri}: {dataset.manifest} has no {MANIFEST_KEY!r}")
    spec = FeatureSpec.from_dict(manifest[MANIFEST_KEY])
    verify_tree(data_uri, manifest.get(DIGESTS_KEY), ("test", "labels"), f"--data {data_uri}")
    vocabularies = load_all(model.labels, spec.num_levels)
    data_vocabularies = load_all(dataset.labels, spec.num_levels)
    for ours, theirs in zip(vocabularies, data_vocabularies, strict=True):
        if ours.classes != theirs.classes:
            raise ValueError(f"level {ours.level} labels of --model {model_uri} ({len(ours)} classes) differ from "
                             f"--data {data_uri} ({len(theirs)} classes): the model was trained on another dataset")
    shards = uri.list_files(dataset.split_dir("test"), suffix=TFRECORD_SUFFIX)
    if not shards:
        raise ValueError(f"--data {data_uri}: the test split has no shards under {dataset.split_dir('test')}")
    return EvaluationInputs(model_uri, model, dataset, spec, vocabularies, shards, manifest, model_sha256)
