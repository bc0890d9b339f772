"""``python -m aws_cloudwatch_logs_handler tail LOG_GROUP``: see what arrived (see `_cli`)."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
