"""`make demo`: the article's app, unchanged, shipping to a local CloudWatch Logs endpoint.

Starts moto's server on 127.0.0.1 (a free port, stopped at the end), runs ``examples/app.py`` in its
own process with boto3 pointed at that endpoint and fake credentials, and prints what arrived.
No AWS account is needed.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

HERE = Path(__file__).resolve().parent
APP = HERE / "app.py"
REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo"}


def local_environment(endpoint_url: str) -> dict[str, str]:
    """The environment that points boto3, and so the handler, at the local endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS)
    env.update(AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION, AWS_ENDPOINT_URL=endpoint_url)
    return env


def run_app(endpoint_url: str) -> None:
    """Run the article's app.py unchanged, as its own process, against ``endpoint_url``."""
    print(f"$ python {APP.relative_to(HERE.parent)}   (AWS_ENDPOINT_URL={endpoint_url})")
    subprocess.run([sys.executable, str(APP)], env=local_environment(endpoint_url), check=True)


def print_group(client: Any, group: str) -> None:
    """Print a log group's retention, streams and every message, oldest first."""
    groups = client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    for info in (g for g in groups if g["logGroupName"] == group):
        retention = info.get("retentionInDays", "never expires")
        print(f"\nlog group {group}  (retention: {retention} days)")
        streams = client.describe_log_streams(logGroupName=group)["logStreams"]
        for stream in streams:
            name = stream["logStreamName"]
            events = client.get_log_events(
                logGroupName=group, logStreamName=name, startFromHead=True
            )["events"]
            print(f"  stream {name}: {len(events)} event(s)")
            for event in events:
                first_line = event["message"].splitlines()[0] if event["message"] else ""
                print(f"    {first_line}")


def main() -> None:
    """Start the endpoint, run the app, show what arrived, stop the endpoint."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint_url = f"http://{host}:{port}"
    try:
        print(f"local CloudWatch Logs endpoint (moto) at {endpoint_url}\n")
        run_app(endpoint_url)
        client = boto3.session.Session(
            aws_access_key_id="demo", aws_secret_access_key="demo", region_name=REGION
        ).client("logs", endpoint_url=endpoint_url)
        print_group(client, "/custom/application-logs")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
