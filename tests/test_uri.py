"""``ecom_kfp.uri`` against a local directory and a real ``gcp-storage-emulator`` bucket.

Every behaviour is checked on both backends (the ``root`` fixture), because stages rely on them
being interchangeable; cross-backend copies are checked for every direction.
"""

from __future__ import annotations

import errno
import itertools
import os
from pathlib import Path

import pyarrow as pa
import pytest

from ecom_kfp import uri

BACKENDS = ("local", "gcs")


def _root_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "local":
        return str(tmp_path / backend)
    return request.getfixturevalue("gcs_bucket") + "/" + backend


@pytest.fixture(params=BACKENDS)
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh directory: ``tmp_path/local`` or ``gs://<fresh bucket>/gcs``."""
    return _root_for(request.param, request, tmp_path)


def _tree(root: str) -> dict[str, bytes]:
    files = {"a.txt": b"alpha", "b.json": b"{}", "sub/c.txt": b"gamma", "sub/deeper/d.bin": bytes(range(256))}
    for rel, data in files.items():
        uri.write_bytes(uri.join(root, *rel.split("/")), data)
    return files


def test_is_gcs_and_split() -> None:
    assert uri.is_gcs("gs://b/k") and not uri.is_gcs("/tmp/gs://x")
    assert uri.split_gcs("gs://bucket/a/b.txt") == ("bucket", "a/b.txt")
    assert uri.split_gcs("gs://bucket") == ("bucket", "")
    with pytest.raises(ValueError, match="not a gs:// URI"):
        uri.split_gcs("/local/path")
    with pytest.raises(ValueError, match="without a bucket"):
        uri.split_gcs("gs:///key")


def test_split_into_parent_and_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert uri.split("gs://b/models/m1/") == ("gs://b/models", "m1")
    assert uri.split("gs://b/m1") == ("gs://b", "m1")
    assert uri.split("/srv/models/m1/") == ("/srv/models", "m1")
    assert uri.split("/m1") == ("/", "m1")
    monkeypatch.chdir(tmp_path)
    assert uri.split("m1") == (str(tmp_path), "m1")
    for no_parent in ("gs://b", "gs://b/", "/"):
        with pytest.raises(ValueError, match="no parent"):
            uri.split(no_parent)


def test_join() -> None:
    assert uri.join("gs://b/", "/x/", "y.txt") == "gs://b/x/y.txt"
    assert uri.join("gs://b/root", "images", "ab", "c.jpg") == "gs://b/root/images/ab/c.jpg"
    assert uri.join("/tmp/root", "x", "y.txt") == os.path.join("/tmp/root", "x", "y.txt")


def test_bytes_text_json_round_trip(root: str) -> None:
    uri.write_bytes(uri.join(root, "deep", "er", "blob.bin"), b"\x00\xffdata")
    assert uri.read_bytes(uri.join(root, "deep", "er", "blob.bin")) == b"\x00\xffdata"
    uri.write_text(uri.join(root, "t.txt"), "naïve — text\n")
    assert uri.read_text(uri.join(root, "t.txt")) == "naïve — text\n"
    uri.write_json(uri.join(root, "r.json"), {"b": 1, "a": [1, 2]})
    assert uri.read_json(uri.join(root, "r.json")) == {"a": [1, 2], "b": 1}
    # Sorted keys and a trailing newline keep golden files and diffs stable.
    assert uri.read_text(uri.join(root, "r.json")) == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'


def test_overwrite_replaces_content(root: str) -> None:
    target = uri.join(root, "f.txt")
    uri.write_text(target, "first, longer content")
    uri.write_text(target, "second")
    assert uri.read_text(target) == "second"


def test_read_missing_names_the_uri(root: str) -> None:
    missing = uri.join(root, "no", "such.bin")
    with pytest.raises(FileNotFoundError, match=".*".join(missing.split("/")[-3:])):
        uri.read_bytes(missing)
    with pytest.raises(FileNotFoundError):
        uri.read_json(missing)


def test_local_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "out" / "table.bin"
    uri.write_bytes(str(target), b"old")
    with pytest.raises(TypeError):
        uri.write_bytes(str(target), "not bytes")  # type: ignore[arg-type]
    # A failed write keeps the previous file whole and cleans up its temporary file.
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.bin"]


def test_local_write_honours_umask(tmp_path: Path) -> None:
    """Files must be readable by other users (containers, shared volumes), not mkstemp's 0600."""
    previous = os.umask(0o022)
    try:
        uri.write_text(str(tmp_path / "f.txt"), "x")
    finally:
        os.umask(previous)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644


def test_exclusive_write_keeps_the_first_file_and_says_so(tmp_path: Path) -> None:
    target = tmp_path / "images" / "ab" / "ab12.jpg"
    previous = os.umask(0o022)
    try:
        assert uri.write_bytes(str(target), b"first", exclusive=True) is True
        assert uri.write_bytes(str(target), b"second", exclusive=True) is False
    finally:
        os.umask(previous)
    assert target.read_bytes() == b"first"
    assert target.stat().st_mode & 0o777 == 0o644 and target.stat().st_nlink == 1
    assert [p.name for p in target.parent.iterdir()] == ["ab12.jpg"]  # no temp files left
    assert uri.write_bytes(str(target), b"third") is True  # the default still replaces
    assert target.read_bytes() == b"third"


def test_exclusive_write_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some FUSE/SMB mounts refuse link(); none is available here, so os.link is made to refuse (a mock)."""
    def refuse(*_args, **_kwargs) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)
    target = tmp_path / "ab12.jpg"
    assert uri.write_bytes(str(target), b"first", exclusive=True) is True
    assert uri.write_bytes(str(target), b"second", exclusive=True) is False
    assert target.read_bytes() == b"first" and [p.name for p in tmp_path.iterdir()] == ["ab12.jpg"]


def test_exclusive_write_without_unnamed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """File systems without O_TMPFILE (some network and FUSE mounts) refuse it with EOPNOTSUPP;
    ext4 here has it, so os.open is made to refuse (a mock) and the named temporary file serves."""
    real_open = os.open

    def no_tmpfile(path, flags, *args):
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", no_tmpfile)
    target = tmp_path / "cd" / "cd34.jpg"
    assert uri.write_bytes(str(target), b"first", exclusive=True) is True
    assert uri.write_bytes(str(target), b"second", exclusive=True) is False
    assert target.read_bytes() == b"first" and [p.name for p in target.parent.iterdir()] == ["cd34.jpg"]


def test_exists(root: str) -> None:
    assert not uri.exists(root)
    _tree(root)
    assert uri.exists(root)
    assert uri.exists(uri.join(root, "sub"))
    assert uri.exists(uri.join(root, "sub", "c.txt"))
    assert not uri.exists(uri.join(root, "su"))  # a name prefix is not a directory
    assert not uri.exists(uri.join(root, "missing.txt"))


def test_exists_bucket(gcs_bucket: str) -> None:
    assert uri.exists(gcs_bucket)
    assert not uri.exists("gs://no-such-bucket-ecom-kfp")


def test_list_files_recursive_sorted(root: str) -> None:
    files = _tree(root)
    uri.write_text(uri.join(root + "2", "sibling.txt"), "must not be listed")
    listed = uri.list_files(root)
    assert listed == sorted(listed)
    assert listed == [uri.join(root, *rel.split("/")) for rel in sorted(files)]
    assert uri.list_files(root + "/") == listed


def test_list_files_suffix_and_limit(root: str) -> None:
    _tree(root)
    txt = [uri.join(root, "a.txt"), uri.join(root, "sub", "c.txt")]
    assert uri.list_files(root, suffix=".txt") == txt
    assert uri.list_files(root, suffix=".txt", limit=1) == txt[:1]
    assert uri.list_files(root, limit=2) == [uri.join(root, "a.txt"), uri.join(root, "b.json")]
    assert uri.list_files(root, limit=0) == []
    assert uri.list_files(root, suffix=".parquet") == []


def test_list_files_of_a_file_and_of_nothing(root: str) -> None:
    _tree(root)
    one = uri.join(root, "sub", "c.txt")
    assert uri.list_files(one) == [one]
    assert uri.list_files(one, suffix=".json") == []
    assert uri.list_files(uri.join(root, "nothing")) == []


def test_relative_files(root: str) -> None:
    files = _tree(root)
    assert uri.relative_files(root) == sorted(files)
    assert uri.relative_files(root + "/") == sorted(files)


def test_relative_files_of_unnormalised_local_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    files = _tree("d")
    assert uri.relative_files("./d") == sorted(files)
    assert uri.relative_files("d//") == sorted(files)


def test_delete_and_delete_tree(root: str) -> None:
    _tree(root)
    uri.delete(uri.join(root, "a.txt"))
    uri.delete(uri.join(root, "a.txt"))  # missing is not an error
    assert not uri.exists(uri.join(root, "a.txt"))
    uri.delete_tree(uri.join(root, "sub"))
    assert uri.relative_files(root) == ["b.json"]
    uri.delete_tree(uri.join(root, "b.json"))  # a single file is a tree of one
    assert uri.list_files(root) == []
    uri.delete_tree(uri.join(root, "gone"))


@pytest.mark.parametrize(("src_backend", "dst_backend"), list(itertools.product(BACKENDS, BACKENDS)))
def test_copy_and_copy_tree_between_backends(src_backend: str, dst_backend: str,
                                             request: pytest.FixtureRequest, tmp_path: Path) -> None:
    src = _root_for(src_backend, request, tmp_path / "src") + "/src"
    dst = _root_for(dst_backend, request, tmp_path / "dst") + "/dst"
    files = _tree(src)
    uri.copy(uri.join(src, "sub", "c.txt"), uri.join(dst, "single", "c.txt"))
    assert uri.read_bytes(uri.join(dst, "single", "c.txt")) == b"gamma"
    assert uri.copy_tree(src, uri.join(dst, "tree")) == sorted(files)
    for rel, data in files.items():
        assert uri.read_bytes(uri.join(dst, "tree", *rel.split("/"))) == data


def test_copy_missing_names_the_uri(root: str, tmp_path: Path) -> None:
    missing = uri.join(root, "missing.bin")
    for dst in (uri.join(root, "copy.bin"), str(tmp_path / "copy.bin")):
        with pytest.raises(FileNotFoundError, match="missing.bin"):
            uri.copy(missing, dst)
    with pytest.raises(FileNotFoundError, match="nothing"):
        uri.copy_tree(uri.join(root, "nothing"), str(tmp_path / "tree"))


def test_copy_tree_of_empty_local_dir(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert uri.copy_tree(str(tmp_path / "empty"), str(tmp_path / "dst")) == []


def test_local_copy(root: str) -> None:
    files = _tree(root)
    with uri.local_copy(uri.join(root, "sub", "c.txt")) as path:
        assert Path(path).read_bytes() == b"gamma"
    with uri.local_copy(root) as path:
        local = Path(path)
        assert sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()) == sorted(files)
        assert (local / "sub" / "deeper" / "d.bin").read_bytes() == files["sub/deeper/d.bin"]
    if uri.is_gcs(root):
        assert not local.exists(), "the temporary download must be removed"


def test_local_copy_missing_names_the_uri(root: str) -> None:
    missing = uri.join(root, "absent")
    with pytest.raises(FileNotFoundError, match="absent"):
        with uri.local_copy(missing):
            pass


def test_local_output_dir(root: str) -> None:
    out = uri.join(root, "out")
    with uri.local_output_dir(out) as local:
        assert os.path.isdir(local)
        Path(local, "model").mkdir()
        Path(local, "model", "weights.bin").write_bytes(b"w")
        Path(local, "meta.json").write_text("{}")
    assert uri.relative_files(out) == ["meta.json", "model/weights.bin"]
    assert uri.read_bytes(uri.join(out, "model", "weights.bin")) == b"w"


def test_local_output_dir_uploads_nothing_on_error(gcs_bucket: str) -> None:
    out = gcs_bucket + "/failed"
    with pytest.raises(RuntimeError, match="boom"):
        with uri.local_output_dir(out) as local:
            Path(local, "partial.bin").write_bytes(b"half")
            raise RuntimeError("boom")
    assert uri.list_files(out) == []


def test_parquet_round_trip(root: str) -> None:
    table = pa.table({"product_id": ["a", "b"], "category_path": [["X", "Y"], ["X"]], "price": [1.5, None]})
    target = uri.join(root, "t", "products.parquet")
    uri.write_parquet(table, target)
    assert uri.read_parquet(target).equals(table)
    assert uri.read_parquet(target, columns=["price"]).column_names == ["price"]
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        uri.read_parquet(uri.join(root, "missing.parquet"))


def test_makedirs(root: str) -> None:
    uri.makedirs(uri.join(root, "a", "b"))
    if not uri.is_gcs(root):
        assert os.path.isdir(uri.join(root, "a", "b"))
    uri.write_text(uri.join(root, "a", "b", "f.txt"), "x")
    assert uri.exists(uri.join(root, "a", "b"))
