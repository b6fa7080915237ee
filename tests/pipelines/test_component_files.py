"""The shipped ``components/<name>/`` files: READMEs describe them, other pipelines can load them.

KFP reads pipeline signatures at definition time, so this module must not use
``from __future__ import annotations`` (string annotations are not types to KFP).
"""

import functools
import re
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kfp import compiler, components, dsl

from ecom_kfp.pipelines import catalog
from ecom_kfp.pipelines.validate import validate_file
from ecom_kfp.testing.servers import LOOPBACK


@pytest.mark.parametrize("name", list(catalog.components()))
def test_readme_lists_every_input_and_output(compiled_root: Path, name: str) -> None:
    component_dir = compiled_root / "components" / name
    spec = components.load_component_from_file(str(component_dir / "component.yaml")).component_spec
    readme = (component_dir / "README.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([^`]+)` \|.*$", readme, re.M)}
    assert set(spec.inputs or {}) | set(spec.outputs or {}) == set(rows)
    for input_name, inp in (spec.inputs or {}).items():
        assert ("**required**" in rows[input_name]) == (not inp.optional)
    for name, row in rows.items():
        assert not row.rstrip().endswith("|  |"), f"{name} has no description"


@pytest.mark.parametrize("name", list(catalog.components()))
def test_readme_example_compiles(compiled_root: Path, tmp_path: Path, monkeypatch, name: str) -> None:
    readme = (compiled_root / "components" / name / "README.md").read_text()
    [example] = re.findall(r"```python\n(.*?)```", readme, re.S)
    shutil.copytree(compiled_root / "components", tmp_path / "components")
    monkeypatch.chdir(tmp_path)
    exec(compile(example, f"{name}/README.md", "exec", dont_inherit=True), {})
    assert validate_file(tmp_path / "my_pipeline.yaml") == []


@pytest.fixture()
def components_url(compiled_root: Path):
    """``components/`` served over HTTP on loopback, as a team would host the files."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(compiled_root))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer((LOOPBACK, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{server.server_address[1]}/components"
    server.shutdown()
    server.server_close()


def test_foreign_pipeline_from_two_loaded_component_files(compiled_root: Path, tmp_path: Path,
                                                          components_url: str) -> None:
    """Another team's pipeline: dedupe an ingest output they already have, then build TFRecords."""
    dedupe = components.load_component_from_file(
        str(compiled_root / "components" / "dedupe" / "component.yaml"))
    build = components.load_component_from_url(f"{components_url}/tfrecord-build/component.yaml")

    @dsl.pipeline(name="their-catalog-dataset")
    def their_pipeline(products_uri: str, image_size: int = 128):
        products = dsl.importer(artifact_uri=products_uri, artifact_class=dsl.Dataset)
        deduped = dedupe(products=products.output)
        build(products=deduped.outputs["deduped"], image_size=image_size, max_levels=2)

    path = tmp_path / "their.yaml"
    compiler.Compiler().compile(their_pipeline, str(path))
    assert validate_file(path) == []
    text = path.read_text()
    assert "comp-dedupe-op" in text and "comp-tfrecord-build-op" in text
