"""Average trained models into one model directory that evaluate, push and predict take unchanged.

Independently trained models of the same data make partly different errors, so the mean of their
probabilities is right more often than either (on myntra-dev, two EfficientNet-Lite0 image models
of different seeds: level 3 0.8497 ± 0.0083 averaged against 0.8377 and 0.8413 alone, five folds;
benchmarks/README.md). Members can be trained in parallel, each in its own pod (``dsl.ParallelFor``
over seeds, gathered with ``dsl.Collected``), and this stage joins them.

Each member is a train output. It is copied to a private directory and checked against its
``digests.json`` before its SavedModel is loaded (a SavedModel runs its own graph). All members
must come from the same dataset (byte-identical ``dataset_manifest.json``, so the same splits and
label vocabularies); they may differ in anything else (seed, backbone, inputs, fusion, image
size), because each is kept whole, its own image preprocessing and tokenizer included, behind
one serving signature that returns, per level, the weighted mean of the members' probabilities.
Serving cost is the sum of the members'. A single member's SavedModel is published unchanged (so
with the member's content digest), which lets a pipeline use one wiring for one seed or several.

Output: a :class:`~ecom_kfp.contracts.layouts.ModelLayout` directory (``saved_model/``,
``labels/``, ``dataset_manifest.json``, ``training.json``, ``digests.json``, ``report.json``) with
no ``model.keras``: there is no single Keras model to resume or fine-tune. ``training.json``
(:class:`~ecom_kfp.contracts.training.TrainingRecord`) lists every split any member was trained
on, read from the members' verified copies (evaluate decides on it where to fit temperatures); it
is left out when a member has none, and evaluate then calibrates the ensemble as a model that may
have been trained on the validation split.
``report.json`` lists the members and their content digests, the weights and those splits.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from ecom_kfp import uri
from ecom_kfp.contracts import serving
from ecom_kfp.contracts.digests import verified_model_copy, write_model_digests
from ecom_kfp.contracts.labels import count_levels, load_all
from ecom_kfp.contracts.layouts import ModelLayout
from ecom_kfp.contracts.training import TrainingRecord
from ecom_kfp.ensemble.config import EnsembleConfig
from ecom_kfp.push.validation import check_serving
from ecom_kfp.report import Timings, write_report
from ecom_kfp.scratch import scratch_dir
from ecom_kfp.settings import require


class MemberMismatchError(ValueError):
    """The models were not trained on the same dataset, so their outputs cannot be averaged."""


@dataclass
class EnsembleReport:
    """``report.json`` of the ensemble stage.

    Attributes:
        out: The output model directory.
        members: The member models, as given.
        member_sha256: Each member's content digest (its ``digests.json``, verified).
        weights: Each member's weight (they sum to one).
        content_sha256: The ensemble's content digest (what evaluate blesses and push registers).
        classes: Classes per level, level 1 first.
        fit_splits: Every split any member was trained on, as the members' ``training.json`` say
            (None: a member does not say).
        signature_examples: Synthetic products the written SavedModel answered before it was kept.
    """

    out: str
    members: list[str]
    member_sha256: list[str]
    weights: list[float]
    content_sha256: str
    classes: list[int]
    fit_splits: list[str] | None
    signature_examples: int
    timings: dict[str, float] = field(default_factory=dict)


def run(config: EnsembleConfig) -> EnsembleReport:
    """Verify the members, write the averaged model, check that it serves; see the module docstring.

    Raises:
        ConfigError: bad flags, or ``--out`` already holds a model.
        FileNotFoundError: a member is not a model directory.
        DigestError: a member's files differ from its ``digests.json`` (the message names it).
        MemberMismatchError: the members were trained on different datasets.
        InfraValidationError: the written model does not load or answer as the serving contract says.
    """
    config.validate()
    # Files of an earlier model left in --out would be covered by the new digests and served with it.
    held = [part for part in ("saved_model", ModelLayout.KERAS_MODEL, "digests.json")
            if uri.exists(uri.join(config.out_uri, part))]
    require([(not held, "--out", config.out_uri, f"already holds a model ({', '.join(held)}); name an empty directory")])
    timings = Timings()
    weights = config.normalised_weights
    with contextlib.ExitStack() as stack:
        with timings.phase("verify"):
            verified = [stack.enter_context(verified_model_copy(member, "--models")) for member in config.model_uris]
        layouts = [layout for layout, _ in verified]
        _check_same_dataset(layouts, config.model_uris)
        training = TrainingRecord.union(TrainingRecord.read(layout) for layout in layouts)
        # Written and checked in a scratch directory, so a model that fails the check never reaches --out.
        with scratch_dir("ensemble") as local:
            out = ModelLayout(local)
            with timings.phase("export"):
                _export(layouts, weights, out)
                uri.copy_tree(layouts[0].labels, out.labels)
                uri.copy(layouts[0].manifest, out.manifest)
                if training is not None:
                    training.write(out)
                record = write_model_digests(out)
            with timings.phase("check"):
                examples = check_serving(out.saved_model, out.labels)
            classes = [len(v) for v in load_all(out.labels, count_levels(out.labels))]
            with timings.phase("publish"):
                uri.copy_tree(local, config.out_uri)
    report = EnsembleReport(
        out=config.out_uri, members=list(config.model_uris), member_sha256=[sha for _, sha in verified],
        weights=weights, content_sha256=record["content_sha256"], classes=classes,
        fit_splits=list(training.fit_splits) if training else None, signature_examples=examples, timings=dict(timings.seconds))
    write_report(report, config.out_uri)
    return report


def _check_same_dataset(layouts: list[ModelLayout], shown: list[str]) -> None:
    """Members agree on the dataset manifest (splits, vocabularies, digests) and on their label files."""
    first_manifest = uri.read_bytes(layouts[0].manifest)
    first_labels = _label_files(layouts[0])
    for layout, name in zip(layouts[1:], shown[1:], strict=True):
        if uri.read_bytes(layout.manifest) != first_manifest:
            raise MemberMismatchError(f"--models: {name} was trained on another dataset than {shown[0]} "
                                      "(their dataset_manifest.json differ); members must share their dataset")
        if _label_files(layout) != first_labels:
            raise MemberMismatchError(f"--models: {name} has other label files than {shown[0]}")


def _label_files(layout: ModelLayout) -> dict[str, bytes]:
    return {rel: uri.read_bytes(uri.join(layout.labels, rel)) for rel in uri.relative_files(layout.labels)}


def _export(members: list[ModelLayout], weights: list[float], out: ModelLayout) -> None:
    """Write a SavedModel that keeps every member's SavedModel and averages their signatures' outputs."""
    if len(members) == 1:  # nothing to average: the member's verified SavedModel, unchanged
        uri.copy_tree(members[0].saved_model, out.saved_model)
        return
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the members' SentencePiece ops before loading)

    module = tf.Module(name="ensemble")
    module.members = [tf.saved_model.load(member.saved_model) for member in members]
    signatures = [member.signatures[serving.SIGNATURE] for member in module.members]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=serving.INPUT_IMAGE),
                                  tf.TensorSpec([None], tf.string, name=serving.INPUT_TITLE)])
    def serve(image_bytes: tf.Tensor, title: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = [signature(**{serving.INPUT_IMAGE: image_bytes, serving.INPUT_TITLE: title})
                   for signature in signatures]
        return {key: tf.add_n([weight * output[key] for weight, output in zip(weights, outputs, strict=True)])
                for key in outputs[0]}

    module.serve = serve
    tf.saved_model.save(module, out.saved_model, signatures={serving.SIGNATURE: serve})
