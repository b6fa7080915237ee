"""The push stage: refuse unblessed models, register in MLflow, publish for serving, move pointers.

Before anything is registered: the model's files are verified against its ``digests.json``, and
their content digest must equal the one evaluate recorded in ``blessing.json`` (so a model
replaced or damaged after its evaluation, or a blessing of another model, is refused before any
of it is loaded); the registry URI and the serving location are checked.

Order matters for interrupted pushes: the version is registered first (tagged ``pending``), the
payload is copied and verified, the copy is loaded and its serving signature run
(:mod:`ecom_kfp.push.validation`), and only then are ``latest``, the aliases and the ``verified``
tag set. A push that dies midway leaves ``latest`` and ``champion`` on the previous good version;
a re-run finds the version by its content hash (no second version), resumes the copy and finishes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ecom_kfp import uri
from ecom_kfp.contracts import registry
from ecom_kfp.contracts.digests import BLESSED_MODEL_SHA256, DigestError, verify_model
from ecom_kfp.contracts.layouts import EvaluationLayout, ModelLayout
from ecom_kfp.evaluate.baseline import registry_client
from ecom_kfp.evaluate.inputs import check_model_dir
from ecom_kfp.push.config import PushConfig
from ecom_kfp.push.payload import EXTRA, ServingPayload
from ecom_kfp.push.registry import check_registry_uri, find_version_by_hash, register, version_tags
from ecom_kfp.push.serving import check_writable, publish, release_claim, write_latest
from ecom_kfp.push.validation import check_serving
from ecom_kfp.report import Timings, write_report


class NotBlessedError(RuntimeError):
    """The evaluation did not bless the model and ``--force`` was not given."""


class NotEvaluatedError(NotBlessedError):
    """The model's content is not the content the evaluation scored (``--force`` does not override it)."""


@dataclass
class PushReport:
    """``report.json`` of the push stage."""

    registered_model_name: str
    version: str
    created_version: bool
    content_sha256: str
    blessed: bool
    forced: bool
    aliases: list[str]
    run_id: str
    serving_uri: str | None
    latest_pointer: str | None
    files: int
    bytes: int
    files_copied: int
    files_already_present: int
    files_replaced: int
    signature_examples: int
    timings: dict[str, float] = field(default_factory=dict)


def _read_evaluation(evaluation_uri: str) -> tuple[EvaluationLayout, dict, dict]:
    layout = EvaluationLayout(evaluation_uri)
    for required in (layout.blessing, layout.metrics):
        if not uri.exists(required):
            raise FileNotFoundError(f"--evaluation {evaluation_uri}: not an evaluate output ({required} is missing)")
    return layout, uri.read_json(layout.blessing), uri.read_json(layout.metrics)


def _check_evaluated(payload: ServingPayload, model: ModelLayout, blessing: dict, evaluation_uri: str) -> None:
    """The model's files match its digests, and their content is what the evaluation scored.

    Raises:
        DigestError: a file differs from the model's ``digests.json``.
        NotEvaluatedError: the content differs from ``blessing.json``'s, or the blessing records none.
    """
    verified = verify_model(model)
    if payload.model_sha256 != verified:  # a file changed between hashing and verifying
        raise DigestError(f"--model {model.root}: its files changed while being read; try again")
    evaluated = blessing.get(BLESSED_MODEL_SHA256)
    if not evaluated:
        raise NotEvaluatedError(f"--evaluation {evaluation_uri}: blessing.json records no model content digest "
                                f"({BLESSED_MODEL_SHA256}; evaluated by an older ecom-kfp?): re-run evaluate")
    if evaluated != verified:
        raise NotEvaluatedError(f"--model {model.root} has content {verified[:16]}, but --evaluation "
                                f"{evaluation_uri} scored content {evaluated[:16]}: the model is not the one "
                                "evaluated (replaced or changed since?); evaluate this model before pushing it")


def run(config: PushConfig) -> PushReport:
    """Push the model; see the module docstring for the order of steps.

    Raises:
        NotBlessedError: the model is not blessed and ``config.force`` is false, or it is not
            the model the evaluation scored (:class:`NotEvaluatedError`).
        FileNotFoundError / ValueError: bad flags or inputs (the message names the flag).
        ServingConflictError / VerificationError: the serving copy could not be completed, or it
            does not serve (:class:`~ecom_kfp.push.validation.InfraValidationError`).
    """
    config.validate()
    check_registry_uri(config.registry_uri)
    timings = Timings()
    model = check_model_dir(config.model_uri)
    evaluation, blessing, metrics = _read_evaluation(config.evaluation_uri)
    blessed = bool(blessing["blessed"])
    if not blessed and not config.force:
        raise NotBlessedError(f"model {config.model_uri} is not blessed by {evaluation.blessing}: "
                              + "; ".join(blessing.get("reasons", [])) + ". Pass --force to push it anyway "
                              "(as challenger only).")
    with timings.phase("hash"):
        payload = ServingPayload.from_model(model, evaluation.thresholds if uri.exists(evaluation.thresholds) else "")
        _check_evaluated(payload, model, blessing, config.evaluation_uri)
    if config.serving_uri:
        check_writable(config.serving_uri, config.registered_model_name)
    client = registry_client(config.registry_uri)
    name = config.registered_model_name
    with timings.phase("register"):
        version = find_version_by_hash(client, name, payload.content_sha256)
        created = version is None
        if created:
            version = register(client, name=name, experiment=config.experiment_name, model=model,
                               evaluation=evaluation,
                               tags=version_tags(payload.content_sha256, model, metrics, blessed))
    target = pointer = None
    copied = kept = replaced = 0
    if config.serving_uri:
        with timings.phase("publish"):
            result = publish(payload, config.serving_uri, name, version.version)
        target, copied, kept, replaced = result.version_uri, result.copied, result.already_present, result.replaced
        with timings.phase("validate"):
            examples = check_serving(target, uri.join(target, EXTRA, "labels"))
        client.set_model_version_tag(name, version.version, registry.SERVING_URI, target)
        client.set_model_version_tag(name, version.version, registry.SERVING_STATUS, registry.SERVING_VERIFIED)
        release_claim(config.serving_uri, name, version.version)
        if blessed:
            pointer = write_latest(config.serving_uri, name, version.version, target, payload.content_sha256)
    else:
        with timings.phase("validate"):
            examples = check_serving(model.saved_model, model.labels)
    aliases = [registry.CHALLENGER] + ([config.alias] if blessed and config.alias != registry.CHALLENGER else [])
    for alias in aliases:
        client.set_registered_model_alias(name, alias, version.version)
    report = PushReport(
        registered_model_name=name, version=str(version.version), created_version=created,
        content_sha256=payload.content_sha256, blessed=blessed, forced=config.force and not blessed,
        aliases=aliases, run_id=version.run_id, serving_uri=target, latest_pointer=pointer,
        files=len(payload.files), bytes=payload.total_bytes, files_copied=copied, files_already_present=kept,
        files_replaced=replaced, signature_examples=examples, timings=timings.seconds)
    write_report(report, config.out_uri)
    return report
