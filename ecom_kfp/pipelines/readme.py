"""The generated ``components/<name>/README.md``: inputs, outputs, types, defaults, an example.

Written from the compiled ``component.yaml`` itself (loaded back with
``kfp.components.load_component_from_file``), so the README describes exactly the file it sits
next to. The example is a complete pipeline: required artifact inputs come from ``dsl.importer``
so it compiles as printed (a test compiles every one).
"""

from __future__ import annotations

import json
from pathlib import Path

import docstring_parser
import yaml
from kfp import components
from kfp.dsl import structures

from ecom_kfp import __version__
from ecom_kfp.pipelines.catalog import COMPONENT_FILE

#: ``schemaTitle`` of an artifact type -> the ``kfp.dsl`` class the example imports it as.
ARTIFACT_CLASSES = {
    "system.Artifact": "Artifact",
    "system.Dataset": "Dataset",
    "system.Model": "Model",
    "system.Metrics": "Metrics",
    "system.HTML": "HTML",
    "system.ClassificationMetrics": "ClassificationMetrics",
}

#: Parameter type names in a compiled component -> the Python annotation of the example.
PARAMETER_ANNOTATIONS = {"String": "str", "Integer": "int", "Float": "float", "Boolean": "bool",
                         "List": "list", "Dict": "dict"}


def _type_name(spec: structures.InputSpec | structures.OutputSpec) -> str:
    name = spec.type.split("@")[0] if isinstance(spec.type, str) else json.dumps(spec.type)
    return f"List[{name}]" if spec.is_artifact_list else name


def _is_artifact(spec: structures.InputSpec | structures.OutputSpec) -> bool:
    return isinstance(spec.type, str) and spec.type.split("@")[0] in ARTIFACT_CLASSES


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(spec: structures.InputSpec) -> str:
    if not spec.optional:
        return "**required**"
    default = spec.default
    # The compiled spec stores every number as a double; show integers as integers.
    if spec.type == "Integer" and isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{json.dumps(default)}`"


def _ordered_inputs(spec: structures.ComponentSpec) -> list[tuple[str, structures.InputSpec]]:
    """Required inputs first, then optional ones, each group in name order."""
    return sorted((spec.inputs or {}).items(), key=lambda item: (item[1].optional, item[0]))


def _descriptions(component_yaml: Path, spec: structures.ComponentSpec, side: str) -> dict[str, str]:
    """Per-input (``side="inputDefinitions"``) or per-output descriptions.

    Read from the compiled YAML, because ``load_component_from_file`` does not carry them into
    the ``InputSpec``/``OutputSpec`` objects; output artifacts have none there, so the
    docstring's ``Args:``/``Returns:`` (kept in the component description) fill the gaps.
    """
    doc = docstring_parser.parse(spec.description or "")
    found = {p.arg_name: p.description or "" for p in doc.params}
    found.update((r.return_name, r.description or "") for r in doc.many_returns if r.return_name)
    root = next(iter(yaml.safe_load_all(component_yaml.read_text())))["root"]
    for kind in ("parameters", "artifacts"):
        for name, definition in ((root.get(side) or {}).get(kind) or {}).items():
            found[name] = definition.get("description") or found.get(name, "")
    return found


def _inputs_table(spec: structures.ComponentSpec, descriptions: dict[str, str]) -> list[str]:
    lines = ["| input | type | default | description |", "|---|---|---|---|"]
    for name, inp in _ordered_inputs(spec):
        lines.append(f"| `{name}` | {_type_name(inp)} | {_default(inp)} | "
                     f"{_cell(descriptions.get(name, ''))} |")
    return lines


def _outputs_table(spec: structures.ComponentSpec, descriptions: dict[str, str]) -> list[str]:
    lines = ["| output | type | description |", "|---|---|---|"]
    for name, out in (spec.outputs or {}).items():
        lines.append(f"| `{name}` | {_type_name(out)} | {_cell(descriptions.get(name, ''))} |")
    return lines


def _summary(spec: structures.ComponentSpec) -> str:
    """The component docstring without its Args/Returns sections (those are the tables)."""
    doc = docstring_parser.parse(spec.description or "")
    return "\n\n".join(part for part in (doc.short_description, doc.long_description) if part)


def _example(name: str, spec: structures.ComponentSpec) -> list[str]:
    """A pipeline calling the component with every required input wired."""
    op = name.replace("-", "_") + "_op"
    params: list[str] = []
    body: list[str] = []
    args: list[str] = []
    classes = set()
    for input_name, inp in _ordered_inputs(spec):
        if inp.optional:
            continue
        if _is_artifact(inp):
            cls = ARTIFACT_CLASSES[inp.type.split("@")[0]]
            classes.add(cls)
            if inp.is_artifact_list:
                params.append(f"{input_name}_uris: list")
                body += [f"    with dsl.ParallelFor({input_name}_uris) as uri:",
                         f"        {input_name}_item = dsl.importer(artifact_uri=uri, "
                         f"artifact_class=dsl.{cls})"]
                args.append(f"{input_name}=dsl.Collected({input_name}_item.output)")
            else:
                params.append(f"{input_name}_uri: str")
                body.append(f"    {input_name} = dsl.importer(artifact_uri={input_name}_uri, "
                            f"artifact_class=dsl.{cls})")
                args.append(f"{input_name}={input_name}.output")
        else:
            params.append(f"{input_name}: {PARAMETER_ANNOTATIONS[_type_name(inp)]}")
            args.append(f"{input_name}={input_name}")
    return [
        "```python",
        "from kfp import compiler, components, dsl",
        "",
        f'{op} = components.load_component_from_file("components/{name}/{COMPONENT_FILE}")',
        "# or, from where this repository's components/ is published at this version:",
        f'# {op} = components.load_component_from_url(f"{{BASE_URL}}/v{__version__}/'
        f'components/{name}/{COMPONENT_FILE}")',
        "",
        "",
        f'@dsl.pipeline(name="uses-{name}")',
        f"def my_pipeline({', '.join(params)}):",
        *body,
        f"    {op}({', '.join(args)})",
        "",
        "",
        'compiler.Compiler().compile(my_pipeline, "my_pipeline.yaml")',
        "```",
    ]


def component_readme(name: str, component_yaml: Path) -> str:
    """README text for the compiled component ``components/<name>/component.yaml``."""
    spec = components.load_component_from_file(str(component_yaml)).component_spec
    image = spec.implementation.container.image if spec.implementation.container else ""
    lines = [
        f"# `{spec.name}` (`components/{name}/{COMPONENT_FILE}`)",
        "",
        "<!-- Generated by `ecom-kfp compile` from ecom_kfp/components; do not edit. -->",
        "",
        _summary(spec),
        "",
        f"Image: `{image}` (ecom-kfp {__version__}).",
        "",
        "## Inputs",
        "",
        *_inputs_table(spec, _descriptions(component_yaml, spec, "inputDefinitions")),
        "",
        "## Outputs",
        "",
        *_outputs_table(spec, _descriptions(component_yaml, spec, "outputDefinitions")),
        "",
        "## Use it in your own pipeline",
        "",
        *_example(name, spec),
        "",
    ]
    return "\n".join(lines)
