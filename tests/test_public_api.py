"""The public surface: exactly what __all__ names, and an import that stays cheap."""

from __future__ import annotations

import subprocess
import sys

import aws_cloudwatch_logs_handler


def test_all_is_exactly_the_public_surface() -> None:
    """Every public name is in __all__ once, and nothing else is public."""
    public = {name for name in vars(aws_cloudwatch_logs_handler) if not name.startswith("_")}
    public -= {"annotations"}  # from __future__
    assert len(set(aws_cloudwatch_logs_handler.__all__)) == len(aws_cloudwatch_logs_handler.__all__)
    assert public | {"__version__"} == set(aws_cloudwatch_logs_handler.__all__)


def test_import_does_not_import_boto3() -> None:
    """Importing the package leaves boto3 for the sender: Lambda cold starts stay cheap."""
    code = "import sys, aws_cloudwatch_logs_handler; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_package_ships_py_typed() -> None:
    """The package declares its type hints (PEP 561)."""
    from importlib.resources import files

    assert files("aws_cloudwatch_logs_handler").joinpath("py.typed").is_file()
