"""The Lambda layer zip: what it ships, what it keeps out, and that it is byte-reproducible."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lambda_layer.build import (
    LAYER_PREFIX,
    PACKAGE_DIR,
    PACKAGE_NAME,
    build_layer,
    ensure_layer,
    layer_bytes,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def layer_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One layer built from the real library, shared by the read-only tests."""
    return build_layer(tmp_path_factory.mktemp("layer") / "lambda_layer.zip")


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A copy of the library that a test may litter with bytecode and stray folders."""
    copy = tmp_path / "src" / PACKAGE_NAME
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_zip_holds_exactly_the_library_sources(layer_zip: Path) -> None:
    """The zip holds the library's .py files and py.typed under python/<package>/, minus cdk/."""
    expected = sorted(
        f"{LAYER_PREFIX}/{PACKAGE_NAME}/{path.relative_to(PACKAGE_DIR).as_posix()}"
        for path in PACKAGE_DIR.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and "cdk" not in path.relative_to(PACKAGE_DIR).parts
        and (path.suffix in {".py", ".pyi"} or path.name == "py.typed")
    )
    names = _names(layer_zip)
    assert names == expected
    assert f"{LAYER_PREFIX}/{PACKAGE_NAME}/__init__.py" in names
    assert f"{LAYER_PREFIX}/{PACKAGE_NAME}/py.typed" in names
    # The CDK constructs need aws-cdk-lib, which no function has: they stay out.
    assert (PACKAGE_DIR / "cdk" / "__init__.py").is_file()
    assert not [name for name in names if f"{PACKAGE_NAME}/cdk/" in name]


def test_zip_leaves_out_bytecode_and_the_sdk(package_copy: Path, tmp_path: Path) -> None:
    """__pycache__, .pyc files and any boto3/botocore folder in the source never reach the zip."""
    (package_copy / "__pycache__").mkdir()
    (package_copy / "__pycache__" / "_version.cpython-311.pyc").write_bytes(b"\0bytecode")
    (package_copy / "stray.pyc").write_bytes(b"\0bytecode")
    for sdk in ("boto3", "botocore"):
        (package_copy / sdk).mkdir()
        (package_copy / sdk / "__init__.py").write_text("")
    names = _names(build_layer(tmp_path / "layer.zip", package_dir=package_copy))
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert not [name for name in names if "/boto3/" in name or "/botocore/" in name]


def test_two_builds_are_byte_identical(package_copy: Path, tmp_path: Path) -> None:
    """Building twice, even after every source file's mtime changed, gives the same bytes."""
    first = build_layer(tmp_path / "first.zip", package_dir=package_copy).read_bytes()
    for path in package_copy.rglob("*"):
        os.utime(path, (2_000_000_000, 2_000_000_000))
    second = build_layer(tmp_path / "second.zip", package_dir=package_copy).read_bytes()
    assert first == second


def test_entries_have_fixed_metadata(layer_zip: Path) -> None:
    """Every entry has the 1980 timestamp, rw-r--r-- permissions and deflate compression."""
    with zipfile.ZipFile(layer_zip) as archive:
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o100644
            assert info.compress_type == zipfile.ZIP_DEFLATED


def test_library_imports_from_the_unzipped_layer(layer_zip: Path, tmp_path: Path) -> None:
    """A fresh interpreter with only the unzipped python/ folder first on sys.path imports it."""
    opt = tmp_path / "opt"
    with zipfile.ZipFile(layer_zip) as archive:
        archive.extractall(opt)
    python_dir = opt / LAYER_PREFIX
    # -I ignores PYTHONPATH and the cwd, so the only copy that can win is the one we put first;
    # boto3 still comes from the venv's site-packages, as it comes from the runtime in Lambda.
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import aws_cloudwatch_logs_handler as package, boto3;"
        "from aws_cloudwatch_logs_handler import CloudWatchLogsHandler, __version__;"
        "print(package.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script, str(python_dir)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_relative_to(python_dir)


def test_cli_writes_the_zip_and_reports_its_size_from_any_directory(tmp_path: Path) -> None:
    """`python -m lambda_layer.build --out X` run from elsewhere writes X and prints its size."""
    out = tmp_path / "nested" / "layer.zip"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "lambda_layer.build", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert out.is_file()
    assert f"{out.stat().st_size:,} bytes" in result.stdout
    assert _names(out) == _names(build_layer(tmp_path / "again.zip"))


def test_ensure_layer_rewrites_only_a_missing_or_stale_zip(
    package_copy: Path, tmp_path: Path
) -> None:
    """ensure_layer writes a missing or outdated zip and leaves a current one untouched."""
    out = tmp_path / "layer.zip"
    ensure_layer(out, package_dir=package_copy)
    assert out.read_bytes() == layer_bytes(package_copy)
    os.utime(out, (1_000_000_000, 1_000_000_000))
    ensure_layer(out, package_dir=package_copy)
    assert out.stat().st_mtime == 1_000_000_000
    (package_copy / "_extra.py").write_text("VALUE = 1\n")
    ensure_layer(out, package_dir=package_copy)
    assert f"{LAYER_PREFIX}/{PACKAGE_NAME}/_extra.py" in _names(out)
