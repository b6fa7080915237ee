"""Every setting is declared once, on its stage's config (:mod:`ecom_kfp.settings`).

One parametrised check per stage: the KFP component's parameters are config settings with the
config's defaults, and the CLI verb's flags are derived from the same declaration.
"""

import argparse
import dataclasses

import pytest

from ecom_kfp.settings import _all_settings, add_arguments, flag_of, flat_defaults, settings_of

#: component attribute in ``ecom_kfp.components`` -> (config class path, component parameters that are
#: not config settings: artifacts are found from their annotations, these are the rest).
STAGES: dict[str, tuple[str, set[str]]] = {
    "dedupe_op": ("ecom_kfp.dedupe.config:DedupeConfig", set()),
    "ingest_op": ("ecom_kfp.ingest.config:IngestConfig", set()),
    "evaluate_op": ("ecom_kfp.evaluate.config:EvaluateConfig", set()),
    "push_op": ("ecom_kfp.push.config:PushConfig", set()),
    "batch_predict_op": ("ecom_kfp.predict.config:PredictConfig", set()),
    "train_op": ("ecom_kfp.train.config:TrainConfig", set()),
    "tfrecord_build_op": ("ecom_kfp.tfrecord_build.config:TFRecordBuildConfig", set()),
    "tfrecord_plan_op": ("ecom_kfp.tfrecord_build.config:TFRecordBuildConfig", set()),
    "tfrecord_write_op": ("ecom_kfp.tfrecord_build.config:TFRecordBuildConfig", set()),
    "tfrecord_merge_op": ("ecom_kfp.tfrecord_build.config:TFRecordBuildConfig", set()),
}


def _config_cls(path: str) -> type:
    import importlib

    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("component_name", sorted(STAGES))
def test_component_parameters_are_config_settings_with_its_defaults(component_name: str) -> None:
    """A pipeline that leaves a parameter unset runs the stage as the CLI does without that flag."""
    from ecom_kfp import components

    config_path, not_settings = STAGES[component_name]
    component = getattr(components, component_name)
    defaults = flat_defaults(_config_cls(config_path))
    parameters = {name: spec for name, spec in component.component_spec.inputs.items()
                  if not spec.type.startswith("system.")}
    settings = set(parameters) - not_settings
    assert settings <= set(defaults), f"not settings of the config: {sorted(settings - set(defaults))}"
    # A required setting (no default) is a required parameter (default None).
    # A tuple setting (split fractions) is the same comma-separated text as a KFP parameter; a list
    # setting is a list parameter (level weights) or that text (title attributes).
    required = {n: None if defaults[n] is dataclasses.MISSING else
                ",".join(map(str, defaults[n])) if isinstance(defaults[n], tuple) or (
                    isinstance(defaults[n], list) and isinstance(parameters[n].default, str)) else defaults[n]
                for n in settings}
    assert {n: parameters[n].default for n in settings} == required
    for name in settings:
        assert parameters[name].description, f"{component_name}.{name} has no description"


@pytest.mark.parametrize("component_name", sorted(STAGES))
def test_cli_flags_come_from_the_config(component_name: str) -> None:
    config_cls = _config_cls(STAGES[component_name][0])
    parser = argparse.ArgumentParser()
    add_arguments(parser, config_cls)
    actions = {a.dest: a for a in parser._actions}
    for field, decl in _all_settings(config_cls):
        if not decl.cli:
            continue
        action = actions[field.name]
        assert flag_of(field, decl) in action.option_strings
        assert decl.help in action.help
        if not action.required and field.default is not dataclasses.MISSING:
            assert action.default == field.default


def test_a_setting_without_help_is_refused() -> None:
    from ecom_kfp.settings import setting

    with pytest.raises(TypeError):
        setting(3)  # help is keyword-only and required


def test_settings_of_sees_only_declared_fields() -> None:
    from ecom_kfp.settings import setting

    @dataclasses.dataclass
    class Example:
        declared: int = setting(1, help="a declared setting")
        internal: int = 0

    assert [f.name for f, _ in settings_of(Example)] == ["declared"]
