"""A Lambda function that does not use the library: it proves the harness, nothing else.

Copied as ``handler.py`` into a task directory and run by awslambdaric.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Echo the event with what the runtime passed in; raise ``ValueError`` if asked to."""
    if "raise" in event:
        raise ValueError(event["raise"])
    spec = importlib.util.find_spec("aws_cloudwatch_logs_handler")
    return {
        "echo": event.get("echo"),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "pid": os.getpid(),
        "sys_path": sys.path,
        "library_origin": spec.origin if spec is not None else None,
        # Wall clock at the handler's return: the harness compares it with the POST's arrival.
        "body_end_ns": time.time_ns(),
    }
