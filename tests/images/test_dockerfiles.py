"""Static checks of the container images (there is no Docker engine on these machines or in CI).

Each Dockerfile named in ``ecom_kfp.images.IMAGES`` is parsed with ``dockerfile-parse`` and checked
for what would otherwise only fail (or silently drift) at build or run time: pinned base images,
COPY sources that exist and are inside the ``.dockerignore`` build context, the pinned dependency
tree and the Horovod build script, a non-root numeric USER (Kubernetes ``runAsNonRoot`` cannot
verify a user name), and a version label equal to the package version. The checks are functions
returning a list of problems, so the last tests feed them broken Dockerfiles to show they catch
each fault.
"""

from __future__ import annotations

import fnmatch
import io
import re
import tomllib
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ecom_kfp import __version__
from ecom_kfp.images import CPU_IMAGE, GPU_IMAGE, IMAGES, image_ref, registry

REPO = Path(__file__).resolve().parents[2]
VERSION_ARG = "ECOM_KFP_VERSION"
VERSION_LABEL = "org.opencontainers.image.version"


def parse(text: str) -> DockerfileParser:
    """A read-only parser over ``text``.

    Given a file object, dockerfile-parse never writes; with ``path`` (default ``./Dockerfile``)
    assigning content would write that file.
    """
    return DockerfileParser(fileobj=io.BytesIO(text.encode()))


def stage_names(parser: DockerfileParser) -> set[str]:
    """Names given with ``FROM image AS name``: later FROM/COPY --from may refer to them."""
    names = set()
    for instr in parser.structure:
        if instr["instruction"] == "FROM":
            parts = instr["value"].split()
            if len(parts) == 3 and parts[1].lower() == "as":
                names.add(parts[2])
    return names


def unpinned_bases(parser: DockerfileParser) -> list[str]:
    """Base images with no tag or digest, or tagged ``latest``."""
    problems = []
    stages = stage_names(parser)
    for image in parser.parent_images:
        if image in stages:
            continue
        name, _, digest = image.partition("@")
        last = name.rsplit("/", 1)[-1]
        tag = last.partition(":")[2]
        if digest:
            if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
                problems.append(f"{image}: malformed digest")
        elif not tag:
            problems.append(f"{image}: no tag")
        elif tag == "latest":
            problems.append(f"{image}: tagged latest")
    return problems


def dockerignore_patterns(text: str) -> list[tuple[bool, str]]:
    """(negated, pattern) per line of a .dockerignore, comments and blanks dropped."""
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        patterns.append((negated, line.lstrip("!").strip("/")))
    return patterns


def in_context(path: str, patterns: list[tuple[bool, str]]) -> bool:
    """Whether ``path`` (relative to the context root) is sent to the engine.

    Docker's rule: the last pattern matching the path or one of its parent directories decides;
    ``**/`` matches any number of leading directories.
    """
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negated, pattern in patterns:
        if pattern.startswith("**/"):
            tail = pattern[3:]
            hit = any(fnmatch.fnmatchcase(part, tail) for part in parts)
        else:
            hit = any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes)
        if hit:
            included = negated
    return included


def copy_sources(parser: DockerfileParser) -> list[str]:
    """Build-context sources of COPY/ADD (those with ``--from`` copy from a stage, not the context)."""
    sources = []
    for instr in parser.structure:
        if instr["instruction"] not in ("COPY", "ADD"):
            continue
        words = instr["value"].split()
        if any(w.startswith("--from=") for w in words):
            continue
        args = [w for w in words if not w.startswith("--")]
        sources.extend(args[:-1])
    return sources


def missing_copy_sources(parser: DockerfileParser, repo: Path, dockerignore: str) -> list[str]:
    """COPY sources that do not exist in ``repo`` or that .dockerignore keeps out of the context."""
    patterns = dockerignore_patterns(dockerignore)
    problems = []
    for source in copy_sources(parser):
        if not (repo / source).exists():
            problems.append(f"{source}: not in the repository")
        elif not in_context(source, patterns):
            problems.append(f"{source}: excluded by .dockerignore")
    return problems


def final_user_problems(parser: DockerfileParser) -> list[str]:
    """The last stage must switch to a numeric, non-zero uid."""
    last_from = max(i for i, s in enumerate(parser.structure) if s["instruction"] == "FROM")
    users = [s["value"] for s in parser.structure[last_from:] if s["instruction"] == "USER"]
    if not users:
        return ["final stage has no USER (runs as root)"]
    uid = users[-1].split(":")[0]
    if not uid.isdigit():
        return [f"USER {users[-1]}: not numeric (runAsNonRoot cannot verify a name)"]
    if int(uid) == 0:
        return [f"USER {users[-1]}: root"]
    return []


def version_problems(parser: DockerfileParser, version: str) -> list[str]:
    """The version build arg defaults to, and the OCI version label carries, ``version``."""
    problems = []
    if parser.args.get(VERSION_ARG) != version:
        problems.append(f"ARG {VERSION_ARG}={parser.args.get(VERSION_ARG)!r}, package is {version}")
    if parser.labels.get(VERSION_LABEL) != version:
        problems.append(f"LABEL {VERSION_LABEL}={parser.labels.get(VERSION_LABEL)!r}, package is {version}")
    return problems


def run_lines(parser: DockerfileParser) -> list[str]:
    return [s["value"] for s in parser.structure if s["instruction"] == "RUN"]


def dependency_problems(parser: DockerfileParser, flavour: str) -> list[str]:
    """The image installs requirements.lock and builds Horovod with the repo's script and flavour."""
    runs = run_lines(parser)
    problems = []
    if "requirements.lock" not in copy_sources(parser):
        problems.append("requirements.lock is not copied")
    if not any(re.search(r"pip install (-c \S+ )?-r \S*requirements\.lock", r) for r in runs):
        problems.append("no RUN installs -r requirements.lock")
    if "scripts/build_horovod.sh" not in copy_sources(parser):
        problems.append("scripts/build_horovod.sh is not copied")
    if not any(f"HOROVOD_FLAVOUR={flavour}" in r and "build_horovod.sh" in r for r in runs):
        problems.append(f"no RUN builds Horovod with HOROVOD_FLAVOUR={flavour}")
    return problems


def pins(lines: list[str]) -> dict[str, str]:
    """name -> version of every ``name==version`` requirement line (names normalised)."""
    found = {}
    for line in lines:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+).*", line)
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return found


def dockerfile(name: str) -> DockerfileParser:
    return parse((REPO / IMAGES[name]).read_text())


DOCKERIGNORE = (REPO / ".dockerignore").read_text()
_PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
#: pyproject's direct dependencies and its ``test`` extra: what set-up installs, from the lock.
DIRECT = _PROJECT["dependencies"] + _PROJECT["optional-dependencies"]["test"]
PYPROJECT_PINS = pins(DIRECT)
LOCK_PINS = pins((REPO / "requirements.lock").read_text().splitlines())


def test_image_references_are_tagged_with_the_package_version() -> None:
    for name, path in IMAGES.items():
        assert (REPO / path).is_file(), f"IMAGES[{name!r}] = {path}: no such Dockerfile"
        assert image_ref(name) == f"{registry()}/{name}:{__version__}"
    assert CPU_IMAGE == image_ref("ecom-kfp") and GPU_IMAGE == image_ref("ecom-kfp-gpu")
    assert not CPU_IMAGE.endswith(":latest")


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_dockerfile_is_pinned_copies_what_exists_and_runs_as_non_root(name: str) -> None:
    parser = dockerfile(name)
    assert parser.parent_images, f"{IMAGES[name]}: no FROM"
    problems = (unpinned_bases(parser) + missing_copy_sources(parser, REPO, DOCKERIGNORE)
                + final_user_problems(parser) + version_problems(parser, __version__))
    assert problems == [], f"{IMAGES[name]}: {problems}"


@pytest.mark.parametrize(("name", "flavour"), [("ecom-kfp", "cpu"), ("ecom-kfp-gpu", "gpu")])
def test_component_images_install_the_lock_and_build_horovod(name: str, flavour: str) -> None:
    assert dependency_problems(dockerfile(name), flavour) == []


def test_gpu_base_matches_the_cuda_and_cudnn_tensorflow_was_built_with() -> None:
    # tensorflow/python/platform/build_info.py is read as text: importing TensorFlow costs seconds.
    tf_dir = Path(find_spec("tensorflow").submodule_search_locations[0])
    build_info = (tf_dir / "python" / "platform" / "build_info.py").read_text()
    cuda = re.search(r"'cuda_version', '([\d.]+)'", build_info).group(1)
    cudnn = re.search(r"'cudnn_version', '(\d+)", build_info).group(1)
    for image in dockerfile("ecom-kfp-gpu").parent_images:
        match = re.fullmatch(r"nvidia/cuda:([\d.]+)-cudnn(\d*)-(devel|runtime)-ubuntu[\d.]+", image)
        assert match, f"GPU base {image} is not an nvidia/cuda cudnn devel/runtime image"
        assert match.group(1) == cuda, f"{image}: TensorFlow {LOCK_PINS['tensorflow']} needs CUDA {cuda}"
        assert match.group(2) in ("", cudnn), f"{image}: TensorFlow needs cuDNN {cudnn}"


def test_installed_versions_match_pyproject() -> None:
    mlflow_pins = pins((REPO / "images" / "mlflow" / "requirements.txt").read_text().splitlines())
    for name, version in PYPROJECT_PINS.items():
        assert LOCK_PINS.get(name) == version, f"requirements.lock has {name}=={LOCK_PINS.get(name)}, pyproject {version}"
        if name in mlflow_pins:
            assert mlflow_pins[name] == version, f"images/mlflow pins {name}=={mlflow_pins[name]}, pyproject {version}"
    # The MLflow image installs with the lock as constraints: a pin of its own that differs fails its build.
    for name, version in mlflow_pins.items():
        assert LOCK_PINS.get(name, version) == version, f"images/mlflow pins {name}=={version}, the lock {LOCK_PINS[name]}"
    assert {"mlflow", "google-cloud-storage", "psycopg2-binary"} <= mlflow_pins.keys()


#: In the lock though no package needs it at run time: scripts/build_horovod.sh builds with it.
BUILD_ONLY = {"cmake"}
#: Pinned by scripts/setup.sh ahead of the lock (lock tools leave packaging tools out of a lock).
SET_UP_PINS = pins(next(line for line in (REPO / "scripts" / "setup.sh").read_text().splitlines()
                        if "pip install --upgrade" in line).split())


def dependency_tree(requirements: list[str]) -> set[str]:
    """Normalised names of ``requirements`` and of everything they need on this Python, as the installed
    packages declare it (their markers evaluated here, extras followed)."""
    names, seen = set(), set()
    todo = [Requirement(text) for text in requirements]
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        names.add(key[0])
        for text in metadata.requires(requirement.name) or []:
            need = Requirement(text)
            if need.marker is None or any(need.marker.evaluate({"extra": extra})
                                          for extra in requirement.extras or {""}):
                todo.append(need)
    return names


def test_the_lock_is_the_dependency_tree_of_pyproject() -> None:
    """requirements.lock pins exactly what pyproject.toml's dependencies and test extra pull in, so a
    package added to pyproject without refreshing the lock, or one left in the lock after it is no
    longer needed, fails here (how to refresh it: the lock's header)."""
    assert SET_UP_PINS.keys() == {"pip", "setuptools", "wheel"}
    tree = dependency_tree(DIRECT) - SET_UP_PINS.keys() | BUILD_ONLY
    assert sorted(LOCK_PINS.keys() - tree) == [], "in requirements.lock, needed by nothing in pyproject.toml"
    assert sorted(tree - LOCK_PINS.keys()) == [], "needed by pyproject.toml, not pinned in requirements.lock"


BROKEN = """\
FROM python:latest AS build
FROM ubuntu
COPY no/such/file /x
COPY .venv /venv
COPY --from=build /opt /opt
ARG ECOM_KFP_VERSION=0.0.1
LABEL org.opencontainers.image.version="${ECOM_KFP_VERSION}"
RUN pip install -r requirements.txt
USER root
"""


def test_checks_catch_a_broken_dockerfile() -> None:
    parser = parse(BROKEN)
    assert unpinned_bases(parser) == ["python:latest: tagged latest", "ubuntu: no tag"]
    assert missing_copy_sources(parser, REPO, DOCKERIGNORE) == [
        "no/such/file: not in the repository", ".venv: excluded by .dockerignore"]
    assert final_user_problems(parser) == ["USER root: not numeric (runAsNonRoot cannot verify a name)"]
    assert final_user_problems(parse("FROM a:1\nUSER 0:0\n")) == ["USER 0:0: root"]
    assert final_user_problems(parse("FROM a:1\nUSER 1000\nFROM b:2\n")) == ["final stage has no USER (runs as root)"]
    assert len(version_problems(parser, "9.9.9")) == 2
    assert dependency_problems(parser, "cpu") == [
        "requirements.lock is not copied", "no RUN installs -r requirements.lock",
        "scripts/build_horovod.sh is not copied", "no RUN builds Horovod with HOROVOD_FLAVOUR=cpu"]


def test_dockerignore_semantics() -> None:
    patterns = dockerignore_patterns(DOCKERIGNORE)
    assert in_context("ecom_kfp/images.py", patterns)
    assert in_context("scripts/build_horovod.sh", patterns)
    assert not in_context("scripts/setup.sh", patterns)
    assert not in_context("ecom_kfp/__pycache__/images.cpython-311.pyc", patterns)
    assert not in_context("tests/conftest.py", patterns)
