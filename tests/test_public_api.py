"""The public surface: exactly what __all__ names, and an import that stays cheap."""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import pytest

import aws_cloudwatch_logs_handler


def test_all_is_exactly_the_public_surface() -> None:
    """Every public name is in __all__ once, and nothing else is public."""
    # A submodule (``cdk``) becomes an attribute once anything imports it; it is not a name.
    public = {
        name
        for name, value in vars(aws_cloudwatch_logs_handler).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    public -= {"annotations"}  # from __future__
    assert len(set(aws_cloudwatch_logs_handler.__all__)) == len(aws_cloudwatch_logs_handler.__all__)
    assert public | {"__version__"} == set(aws_cloudwatch_logs_handler.__all__)


def test_import_does_not_import_boto3_or_the_network_stack() -> None:
    """Importing the package leaves boto3, and the ``ssl`` and ``socket`` the sender's transport
    needs (10 to 30 ms), for the sender: Lambda cold starts stay cheap."""
    code = (
        "import sys, aws_cloudwatch_logs_handler; "
        "print(sorted(m for m in ('boto3', 'ssl', 'socket') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_package_ships_py_typed() -> None:
    """The package declares its type hints (PEP 561)."""
    from importlib.resources import files

    assert files("aws_cloudwatch_logs_handler").joinpath("py.typed").is_file()


def test_import_does_not_import_the_cdk() -> None:
    """The handler never loads aws-cdk-lib: only ``aws_cloudwatch_logs_handler.cdk`` does."""
    code = (
        "import sys, aws_cloudwatch_logs_handler, aws_cloudwatch_logs_handler._handler; "
        "print('aws_cdk' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow  # importing aws-cdk-lib starts its jsii runtime (node)
def test_cdk_module_all_is_sorted_and_exactly_its_public_surface() -> None:
    """The constructs module names each public construct and constant once, in sorted order."""
    cdk = pytest.importorskip("aws_cloudwatch_logs_handler.cdk")
    public = {
        name
        for name, value in vars(cdk).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    public -= {"annotations"}  # from __future__
    assert cdk.__all__ == sorted(cdk.__all__, key=lambda name: (not name.isupper(), name))
    assert public == set(cdk.__all__)


def test_help_on_the_constructor_documents_every_option() -> None:
    """help(CloudWatchLogsHandler.__init__) shows our options, not logging.Handler's docstring."""
    import inspect
    import pydoc

    from aws_cloudwatch_logs_handler import CloudWatchLogsHandler

    text = pydoc.plain(pydoc.render_doc(CloudWatchLogsHandler.__init__))
    options = [name for name in inspect.signature(CloudWatchLogsHandler).parameters]
    assert [name for name in options if f"{name}:" not in text] == []


def test_the_published_metadata_has_the_license_and_no_developer_extras() -> None:
    """pip show sees MIT, and the only extra users can install is [cdk]."""
    from importlib.metadata import metadata

    published = metadata("aws-cloudwatch-logs-handler")
    assert published["License-Expression"] == "MIT"
    assert published.get_all("Provides-Extra") == ["cdk"]
