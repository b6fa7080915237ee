"""Configuration of the ensemble stage, shared by the CLI and the KFP component."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ecom_kfp.settings import Check, require, require_given, setting

#: One member is published unchanged, so a pipeline trains one model or several with the same
#: wiring; more than 16 is rarely worth the serving cost, which is the sum of the members'.
MIN_MEMBERS, MAX_MEMBERS = 1, 16


def _member_checks(members: Sequence[object], flag: str, shown: object, noun: str) -> list[Check]:
    """What every list of members obeys, whether models or the seeds they are trained with: 1 to 16
    of them, none twice (``shown``: the value the message prints)."""
    return [(MIN_MEMBERS <= len(members) <= MAX_MEMBERS, flag, shown, f"must name {MIN_MEMBERS} to {MAX_MEMBERS} {noun}s"),
            (len(set(members)) == len(members), flag, shown, f"names a {noun} twice")]


def check_member_seeds(seeds: Sequence[int], flag: str) -> None:
    """Fail on training seeds that cannot make one ensemble: too few or too many, or a repeat.

    Checked before any member trains (run-local's ``--train-seeds``, training_pipeline's
    ``seed_plan_op``), since the ensemble stage would only refuse them after every member's
    GPU hours were spent; a repeated seed trains the same model twice.

    Args:
        seeds: One training seed per member.
        flag: The flag or run parameter the seeds came from, for the message.

    Raises:
        ConfigError: naming ``flag``.
    """
    require(_member_checks(seeds, flag, list(seeds), "seed"))


@dataclass(frozen=True)
class EnsembleConfig:
    """Which trained models ``ecom-kfp ensemble`` and ``ensemble_op`` average, and where the result goes."""

    model_uris: list[str] = setting(flag="--models", metavar="URI,URI[,...]",
                                    help="model directory URIs (train outputs, with digests.json), all trained on "
                                         "the same dataset; one model is published unchanged")
    out_uri: str = setting(flag="--out", metavar="URI",
                           help="output model directory URI (a model directory evaluate, push and predict take)")
    weights: list[float] = setting(factory=list, metavar="W,W[,...]",
                                   help="one positive weight per model, in --models order (empty = equal weights); "
                                        "each level's probabilities are the weighted mean of the members'")

    def validate(self) -> None:
        """Fail fast on missing or bad flags, naming them.

        Raises:
            ConfigError: a flag is missing or has a value the stage cannot use.
        """
        require_given((("--out", self.out_uri),))
        count = len(self.model_uris)
        require([
            *_member_checks(self.model_uris, "--models", ",".join(self.model_uris), "model"),
            (not self.weights or len(self.weights) == count, "--weights", self.weights,
             f"must give one weight per model ({count})"),
            (all(math.isfinite(w) and w > 0 for w in self.weights), "--weights", self.weights,
             "must be positive numbers"),
        ])

    @property
    def normalised_weights(self) -> list[float]:
        """The members' weights, summing to one."""
        weights = self.weights or [1.0] * len(self.model_uris)
        total = sum(weights)
        return [w / total for w in weights]
