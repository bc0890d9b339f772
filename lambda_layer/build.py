"""Build the Lambda layer: the library under ``python/``, byte-identical from the same source.

Lambda unpacks a layer to ``/opt`` and puts ``/opt/python`` on ``sys.path``, so the package goes
under ``python/aws_cloudwatch_logs_handler/``. boto3 and botocore stay out: every Python runtime
ships them (https://docs.aws.amazon.com/lambda/latest/dg/chapter-layers.html#packaging-layers).
The library is pure Python, so one zip serves x86_64 and arm64.

The zip is reproducible (fixed timestamps, order, permissions and compression) so that the CDK
asset hash, which is the hash of the file, only changes when the code does.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

PACKAGE_NAME: Final = "aws_cloudwatch_logs_handler"
PACKAGE_DIR: Final = Path(__file__).resolve().parent.parent / "handler" / PACKAGE_NAME
"""The library's source, found from this file so the build does not depend on the cwd."""
LAYER_PREFIX: Final = "python"
"""The folder Lambda's Python runtimes add to ``sys.path`` from a layer (as ``/opt/python``)."""
DEFAULT_OUT: Final = Path(__file__).resolve().parent.parent / "build" / "lambda_layer.zip"

# zip cannot store dates before 1980; any fixed date makes the archive reproducible.
_FIXED_DATE_TIME: Final = (1980, 1, 1, 0, 0, 0)
# rw-r--r-- regular file: Lambda only needs to read the sources.
_FILE_MODE: Final = 0o100644
# 3 means "Unix" in the zip header; Python writes 0 on Windows, which would change the bytes.
_CREATE_SYSTEM_UNIX: Final = 3
_COMPRESS_LEVEL: Final = 9
_INCLUDED_SUFFIXES: Final = frozenset({".py", ".pyi"})
_INCLUDED_NAMES: Final = frozenset({"py.typed"})
# Never shipped even if they sit in the source tree: the runtime provides the SDK, bytecode
# is interpreter-specific (and would make the zip differ between machines), and the CDK
# constructs (``cdk/``) are for deploy time: they need aws-cdk-lib, which no function has.
_EXCLUDED_PARTS: Final = frozenset({"__pycache__", "boto3", "botocore", "cdk"})


class LayerBuildError(RuntimeError):
    """The library's sources could not be found or packaged."""


def layer_members(package_dir: Path = PACKAGE_DIR) -> Iterator[tuple[str, Path]]:
    """Yield ``(name in the zip, source file)`` for every file the layer ships, sorted by name."""
    members: list[tuple[str, Path]] = []
    for path in package_dir.rglob("*"):
        relative = path.relative_to(package_dir)
        if not path.is_file() or _EXCLUDED_PARTS.intersection(relative.parts):
            continue
        if path.suffix not in _INCLUDED_SUFFIXES and path.name not in _INCLUDED_NAMES:
            continue
        members.append((f"{LAYER_PREFIX}/{PACKAGE_NAME}/{relative.as_posix()}", path))
    yield from sorted(members)


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_FIXED_DATE_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = _CREATE_SYSTEM_UNIX
    info.external_attr = _FILE_MODE << 16
    return info


def layer_bytes(package_dir: Path = PACKAGE_DIR) -> bytes:
    """Return the layer zip for ``package_dir``: the same bytes every time for the same sources.

    Raises:
        LayerBuildError: if ``package_dir`` holds no ``__init__.py``.
    """
    members = list(layer_members(package_dir))
    if not any(name.endswith(f"{PACKAGE_NAME}/__init__.py") for name, _ in members):
        raise LayerBuildError(f"{package_dir} has no __init__.py: nothing importable to ship")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compresslevel=_COMPRESS_LEVEL) as archive:
        for name, source in members:
            archive.writestr(_zip_info(name), source.read_bytes())
    return buffer.getvalue()


def _write_atomically(out: Path, data: bytes) -> None:
    # Written next to `out` and renamed into place, so a reader (the CDK asset stage, a
    # concurrent build) never sees half a zip.
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; the zip is not a secret
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def build_layer(out: Path = DEFAULT_OUT, *, package_dir: Path = PACKAGE_DIR) -> Path:
    """Write the layer zip to ``out`` and return its path.

    Raises:
        LayerBuildError: if ``package_dir`` holds no ``__init__.py``.
    """
    out = Path(out)
    _write_atomically(out, layer_bytes(package_dir))
    return out


def ensure_layer(out: Path = DEFAULT_OUT, *, package_dir: Path = PACKAGE_DIR) -> Path:
    """Make ``out`` hold the layer for the current sources, rewriting it only if it differs.

    The synth calls this so a missing or stale zip never reaches a deploy, while an up-to-date
    one keeps its file (and so its CDK asset hash) untouched.
    """
    out = Path(out)
    data = layer_bytes(package_dir)
    if not out.is_file() or out.read_bytes() != data:
        _write_atomically(out, data)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Build the layer and print where it went and how big it is."""
    parser = argparse.ArgumentParser(prog="python -m lambda_layer.build", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="zip to write")
    args = parser.parse_args(argv)
    try:
        out = build_layer(args.out)
    except LayerBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with zipfile.ZipFile(out) as archive:
        files = len(archive.infolist())
        unzipped = sum(info.file_size for info in archive.infolist())
    print(f"{out}: {out.stat().st_size:,} bytes zipped, {unzipped:,} unzipped, {files} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
