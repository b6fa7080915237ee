"""Presets fill the hardware-dependent settings a run leaves unset; explicit values always win."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from ecom_kfp.cli import build_parser
from ecom_kfp.settings import from_args
from ecom_kfp.train.config import TrainConfig
from ecom_kfp.train.presets import PRESETS, UNSET


def _cli_config(*flags: str) -> TrainConfig:
    args = build_parser("train").parse_args(["train", "--data", "d", "--out", "o", *flags])
    return from_args(TrainConfig, args)


def test_the_default_is_the_measured_cpu_small_run() -> None:
    config = TrainConfig(data="d", out="o")
    assert (config.preset, config.backbone, config.image_size, config.epochs, config.batch_size,
            config.learning_rate) == ("cpu-small", "small-cnn", 64, 18, 32, 3e-3)
    measured = dict(dropout=0.3, level_weights=[1.0, 1.0, 3.0], title_word_buckets=32768, title_char_buckets=65536,
                    weight_decay=0.05, ema_momentum=0.99, label_smoothing=0.1)
    assert {name: getattr(config, name) for name in measured} == measured
    assert _cli_config() == config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_preset_fills_exactly_the_unset_settings(name: str) -> None:
    config = TrainConfig(data="d", out="o", preset=name)
    assert {k: getattr(config, k) for k in asdict(UNSET)} == asdict(PRESETS[name])


def test_explicit_values_win_even_when_they_equal_another_presets() -> None:
    cpu = PRESETS["cpu-small"]
    config = _cli_config("--preset", "gpu", "--backbone", cpu.backbone, "--epochs", str(cpu.epochs))
    assert (config.backbone, config.epochs) == (cpu.backbone, cpu.epochs)
    assert (config.image_size, config.batch_size, config.learning_rate) == (224, 128, PRESETS["gpu"].learning_rate)


def test_workers_get_the_resolved_settings() -> None:
    config = TrainConfig(data="d", out="o", preset="gpu", epochs=3)
    assert TrainConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize("weights, levels, expected", [
    ([1.0, 1.0, 3.0], 3, [1.0, 1.0, 3.0]),
    ([1.0, 1.0, 3.0], 4, [1.0, 1.0, 1.0, 3.0]),
    ([1.0, 1.0, 3.0], 2, [1.0, 3.0]),
    ([2.0], 3, [1.0, 1.0, 2.0]),
])
def test_level_weights_align_to_the_deepest_level(weights: list[float], levels: int, expected: list[float]) -> None:
    assert TrainConfig(data="d", out="o", level_weights=weights).level_weights_for(levels) == expected


def test_the_training_pipeline_passes_its_preset_and_image_size_to_train() -> None:
    from ecom_kfp.pipelines.training import training_pipeline

    spec = training_pipeline.pipeline_spec
    params = spec.root.input_definitions.parameters
    assert params["train_preset"].default_value.string_value == "gpu"
    # root -> ParallelFor over the checked seeds (seed-plan-op) -> train-member pipeline -> train-op
    loop = spec.root.dag.tasks["for-loop-1"]
    member = spec.components[loop.component_ref.name].dag.tasks["train-member"]
    member_inputs = member.inputs.parameters
    assert member_inputs["preset"].component_input_parameter == "pipelinechannel--train_preset"
    assert member_inputs["image_size"].component_input_parameter == "pipelinechannel--image_size"
    assert member_inputs["seed"].component_input_parameter == "pipelinechannel--seed-plan-op-Output-loop-item"
    train_inputs = spec.components[member.component_ref.name].dag.tasks["train-op"].inputs.parameters
    for name in ("preset", "image_size", "seed"):
        assert train_inputs[name].component_input_parameter == name
