"""A moto server in its own process: the local AWS endpoint that ``infra.deploy`` deploys to.

Run as ``python -m infra.local_endpoint``, it binds loopback on a free port, prints one line
``ready <port>`` and serves until SIGTERM/SIGINT. The parent learns the port from that line, so
there is neither a port race nor a sleep while waiting for the server to come up.

The CDK CLI is given ``http://localhost:<port>`` (see `LocalEndpoint.cli_url`): with 127.0.0.1
its deploy publishes the assets and then fails with "The specified bucket does not exist".
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
READY_PREFIX: Final = "ready "
STARTUP_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 15.0


@dataclass(frozen=True)
class LocalEndpoint:
    """A moto server process and the URLs that reach it."""

    port: int
    process: subprocess.Popen[str]

    @property
    def url(self) -> str:
        """The URL for boto3 and everything else (loopback by address)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def cli_url(self) -> str:
        """The URL for the CDK CLI, which needs the host name (see the module docstring)."""
        return f"http://localhost:{self.port}"

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _read_ready_line(stream: IO[str], process: subprocess.Popen[str]) -> int:
    readable, _, _ = select.select([stream], [], [], STARTUP_TIMEOUT_S)
    line = stream.readline() if readable else ""
    if not line.startswith(READY_PREFIX):
        process.kill()
        process.wait()
        raise RuntimeError(
            f"moto server did not start within {STARTUP_TIMEOUT_S:.0f} s "
            f"(exit code {process.returncode}, first line {line!r}); see its stderr above"
        )
    return int(line.removeprefix(READY_PREFIX))


def start_local_endpoint(
    *,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
) -> LocalEndpoint:
    """Start a moto server subprocess on 127.0.0.1 and return once it accepts connections.

    Args:
        env: extra environment for the server (e.g. ``INITIAL_NO_AUTH_ACTION_COUNT``).
        log_path: file for the server's stderr; default: inherit ours.
    """
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])
    )
    log = log_path.open("ab") if log_path is not None else None
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local_endpoint"],
            stdout=subprocess.PIPE,
            stderr=log,
            env=child_env,
            text=True,
            # Its own session: a Ctrl-C meant for the deploy does not kill a kept endpoint.
            start_new_session=True,
        )
    finally:
        if log is not None:
            log.close()
    assert process.stdout is not None
    try:
        port = _read_ready_line(process.stdout, process)
    finally:
        process.stdout.close()
    return LocalEndpoint(port=port, process=process)


@contextmanager
def running_local_endpoint(
    *, env: Mapping[str, str] | None = None, log_path: Path | None = None
) -> Iterator[LocalEndpoint]:
    """Start a moto server subprocess for the ``with`` block and stop it afterwards."""
    endpoint = start_local_endpoint(env=env, log_path=log_path)
    try:
        yield endpoint
    finally:
        endpoint.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve moto on loopback until SIGTERM or SIGINT; print ``ready <port>`` once listening."""
    parser = argparse.ArgumentParser(prog="python -m infra.local_endpoint")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    # Block the signals before serving so that sigwait, not the default handler, receives them.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    # The tests' moto server: on loopback, quiet (the deploy's output shows the CLI, not moto's
    # requests), its creations atomic as AWS's are.
    from local_aws.moto_endpoint import running_moto_server

    with running_moto_server(args.port) as endpoint:
        _, port = endpoint.server.get_host_and_port()
        print(f"{READY_PREFIX}{port}", flush=True)
        sys.stdout.close()
        signal.sigwait(stop_signals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
