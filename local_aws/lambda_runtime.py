"""A local Lambda: our own Runtime API server driving the real runtime client (awslambdaric).

Lambda runs a Python function as ``python -m awslambdaric <module>.<function>``, which
long-polls the Runtime API for the next event and posts the function's response or error back
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html). `LambdaRuntime` starts that same
client as a subprocess against `RuntimeApiServer`, a small server on 127.0.0.1.

The point of the harness is Lambda's freeze: once the response is posted, the execution
environment is frozen and a background thread that still holds log records never runs again if
the environment is not thawed. The server imitates it by SIGSTOPping the runtime process inside
the request handler of the posted response or error, before it even answers 202, and waits until
the kernel reports the process stopped. So a test that looks at CloudWatch after `invoke` returns
sees exactly what real Lambda would have delivered. `thaw` (or the next `invoke`) resumes it.

The function's package must be importable only the way Lambda imports it: the task directory
first, then the layer's ``python/`` folder. The venv has this project installed in editable mode
through a ``.pth`` file, which ``site`` would add to ``sys.path``; the runtime therefore runs with
``-S`` (no ``site``, so no ``.pth`` file is processed) and an explicit ``PYTHONPATH`` of the layer
and the venv's site-packages (which stand in for the SDK that every Lambda Python runtime ships).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
import zipfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final, Literal

from .lifecycle import StartStop

API_PREFIX: Final = "/2018-06-01/runtime"
NEXT_PATH: Final = f"{API_PREFIX}/invocation/next"
INIT_ERROR_PATH: Final = f"{API_PREFIX}/init/error"
INVOCATION_PREFIX: Final = f"{API_PREFIX}/invocation/"
ERROR_TYPE_HEADER: Final = "Lambda-Runtime-Function-Error-Type"

ACCOUNT_ID: Final = "123456789012"
DEFAULT_FUNCTION_NAME: Final = "harness-function"
DEFAULT_REGION: Final = "us-east-1"
DEFAULT_INVOKE_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 10.0
# A /next long poll never outlives the test session (pytest's own timeout is 300 s); the bound
# only guarantees the server thread ends even if nobody closes the server.
_MAX_LONG_POLL_S: Final = 900.0
_LOG_TAIL_CHARS: Final = 4000


class RuntimeHarnessError(RuntimeError):
    """The local runtime did not behave like a Lambda execution environment should."""


@dataclass(frozen=True)
class InvocationResult:
    """What the runtime posted for one invocation, and when."""

    request_id: str
    status: Literal["response", "error"]
    body: bytes
    error_type: str | None
    """The error's type for an error (the header, else the document's ``errorType``)."""
    queued_ns: int
    """Wall clock (``time.time_ns``) when the event was queued for /next."""
    posted_ns: int
    """Wall clock when the response or error POST reached the server, before the freeze."""

    def json(self) -> Any:
        """Decode the posted body (the function's return value, or Lambda's error document)."""
        return json.loads(self.body)


@dataclass(frozen=True)
class InitError:
    """What the runtime posted to /runtime/init/error when the function module failed to load."""

    body: bytes
    error_type: str | None

    def json(self) -> Any:
        """Decode Lambda's error document (``errorMessage``, ``errorType``, ``stackTrace``)."""
        return json.loads(self.body)


@dataclass
class _Pending:
    request_id: str
    body: bytes
    headers: dict[str, str]
    queued_ns: int


@dataclass
class _RuntimeState:
    """Everything the server threads and the test thread share, under one condition."""

    condition: threading.Condition = field(default_factory=threading.Condition)
    pending: deque[_Pending] = field(default_factory=deque)
    queued: dict[str, _Pending] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)
    results: dict[str, InvocationResult] = field(default_factory=dict)
    init_error: InitError | None = None
    exited: bool = False
    closing: bool = False
    unexpected: list[str] = field(default_factory=list)


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    """One connection of the runtime client; awslambdaric keeps it open across requests."""

    # The runtime client speaks HTTP/1.1 with keep-alive; every answer carries Content-Length.
    protocol_version = "HTTP/1.1"
    server: RuntimeApiServer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet: the runtime's own log file tells the story."""

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        # awslambdaric 4.2.2 crashes on a /next answer without Content-Type; send it everywhere.
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        """Serve /invocation/next: block until the test queues an event (Lambda's long poll)."""
        if self.path != NEXT_PATH:
            self._reply(404, b'{"errorType": "NotFound"}')
            return
        state = self.server.state
        with state.condition:
            state.condition.wait_for(
                lambda: bool(state.pending) or state.closing, timeout=_MAX_LONG_POLL_S
            )
            if state.closing or not state.pending:
                # Drop the connection instead of answering: the runtime is being stopped.
                self.close_connection = True
                return
            pending = state.pending.popleft()
            state.in_flight.add(pending.request_id)
        self._reply(200, pending.body, pending.headers)

    def do_POST(self) -> None:
        """Serve a posted response or error (freeze the runtime first), or an init error."""
        posted_ns = time.time_ns()
        body = self._read_body()
        state = self.server.state
        if self.path == INIT_ERROR_PATH:
            with state.condition:
                state.init_error = InitError(
                    body=body, error_type=self.headers.get(ERROR_TYPE_HEADER)
                )
                state.condition.notify_all()
            self._reply(202, b'{"status": "OK"}')
            return
        request_id, status = self._parse_invocation_path()
        if request_id is None or status is None:
            self._reply(404, b'{"errorType": "NotFound"}')
            return
        with state.condition:
            known = request_id in state.in_flight
            state.in_flight.discard(request_id)
            pending = state.queued.get(request_id)
        queued_ns = pending.queued_ns if pending is not None else 0
        if not known:
            with state.condition:
                state.unexpected.append(f"{status} for unknown request id {request_id!r}")
                state.condition.notify_all()
            self._reply(400, b'{"errorType": "InvalidRequestID"}')
            return
        # Freeze before the runtime hears back: from here on no thread of the function runs,
        # exactly as after Lambda freezes the environment.
        self.server.freeze()
        result = InvocationResult(
            request_id=request_id,
            status=status,
            body=body,
            error_type=_error_type(status, self.headers.get(ERROR_TYPE_HEADER), body),
            queued_ns=queued_ns,
            posted_ns=posted_ns,
        )
        with state.condition:
            state.results[request_id] = result
            state.condition.notify_all()
        self._reply(202, b'{"status": "OK"}')

    def _parse_invocation_path(
        self,
    ) -> tuple[str | None, Literal["response", "error"] | None]:
        if not self.path.startswith(INVOCATION_PREFIX):
            return None, None
        request_id, _, kind = self.path[len(INVOCATION_PREFIX) :].partition("/")
        if kind == "response":
            return request_id, "response"
        if kind == "error":
            return request_id, "error"
        return None, None


class RuntimeApiServer(ThreadingHTTPServer):
    """The Runtime API on 127.0.0.1, on a free port; ``freeze`` is called on every posted result."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RuntimeApiHandler)
        self.state = _RuntimeState()
        self.freeze_hook: Callable[[], None] | None = None
        self._thread = threading.Thread(
            target=self.serve_forever, name="lambda-runtime-api", daemon=True
        )

    @property
    def address(self) -> str:
        """``host:port`` as AWS_LAMBDA_RUNTIME_API expects it (no scheme)."""
        host, port = self.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def freeze(self) -> None:
        """Run the freeze hook the runner installed (SIGSTOP of the runtime), if any."""
        if self.freeze_hook is not None:
            self.freeze_hook()

    def queue(self, pending: _Pending) -> None:
        """Hand one event to the next /next long poll."""
        with self.state.condition:
            self.state.queued[pending.request_id] = pending
            self.state.pending.append(pending)
            self.state.condition.notify_all()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore a runtime that hangs up (it is killed at the end); record anything else."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            return
        with self.state.condition:
            self.state.unexpected.append(f"server error: {error!r}")
            self.state.condition.notify_all()

    def close(self) -> None:
        """Release every long poll, stop serving, and join the server threads."""
        with self.state.condition:
            self.state.closing = True
            self.state.condition.notify_all()
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join(STOP_TIMEOUT_S)
        self.server_close()


def unzip_layer(layer_zip: Path, destination: Path) -> Path:
    """Unpack a layer zip as Lambda does to /opt and return its ``python/`` folder."""
    with zipfile.ZipFile(layer_zip) as archive:
        archive.extractall(destination)  # our own zip, built by the test
    python_dir = destination / "python"
    if not python_dir.is_dir():
        raise RuntimeHarnessError(f"{layer_zip} has no python/ folder: Lambda would not import it")
    return python_dir


def sdk_site_packages() -> list[Path]:
    """The venv's site-packages, standing in for the SDK (boto3) a Lambda runtime ships."""
    paths = sysconfig.get_paths()
    unique: list[Path] = []
    for key in ("purelib", "platlib"):
        path = Path(paths[key])
        if path not in unique:
            unique.append(path)
    return unique


def copy_function(source: Path, task_dir: Path, module_name: str = "handler") -> Path:
    """Copy a function source into a fresh task directory as ``<module_name>.py``."""
    task_dir.mkdir(parents=True, exist_ok=True)
    target = task_dir / f"{module_name}.py"
    shutil.copyfile(source, target)
    return target


class LambdaRuntime(StartStop):
    """awslambdaric running one function from a task directory, frozen after every invocation.

    Use it as a context manager; it always stops the process and the server on exit.
    """

    def __init__(
        self,
        task_dir: Path,
        *,
        handler: str = "handler.handler",
        layer_python_dir: Path | None = None,
        endpoint_url: str | None = None,
        function_name: str = DEFAULT_FUNCTION_NAME,
        function_version: str = "$LATEST",
        memory_size_mb: int = 128,
        region: str = DEFAULT_REGION,
        log_path: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.task_dir = task_dir
        self.handler = handler
        self.layer_python_dir = layer_python_dir
        self.endpoint_url = endpoint_url
        self.function_name = function_name
        self.function_version = function_version
        self.memory_size_mb = memory_size_mb
        self.region = region
        self.log_path = log_path if log_path is not None else task_dir.parent / "runtime.log"
        self.extra_env = dict(extra_env or {})
        self.environment_id = uuid.uuid4().hex
        self.server = RuntimeApiServer()
        self.process: subprocess.Popen[bytes] | None = None
        self.frozen = False
        self.results: list[InvocationResult] = []
        self._watcher: threading.Thread | None = None
        self._freeze_lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def invoked_function_arn(self) -> str:
        """The ARN the runtime passes on as ``context.invoked_function_arn``."""
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        """Lambda's own group for the function (where stdout would go)."""
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        """Lambda's own stream of this execution environment."""
        day = time.strftime("%Y/%m/%d", time.gmtime())
        return f"{day}/[{self.function_version}]{self.environment_id}"

    def pythonpath(self) -> list[Path]:
        """The runtime's import path after the task dir: the layer, then the SDK's site-packages."""
        layer = [self.layer_python_dir] if self.layer_python_dir is not None else []
        return [*layer, *sdk_site_packages()]

    def environment(self) -> dict[str, str]:
        """The runtime's whole environment: what Lambda sets, fake credentials, and no more."""
        env = {
            name: os.environ[name]
            for name in ("PATH", "HOME", "LANG", "TMPDIR")
            if name in os.environ
        }
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": self.server.address,
                "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": self.function_version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_size_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group_name,
                "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream_name,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}"
                f".{sys.version_info.minor}",
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "LAMBDA_TASK_ROOT": str(self.task_dir),
                "_HANDLER": self.handler,
                "TZ": ":UTC",
                "PYTHONPATH": os.pathsep.join(str(path) for path in self.pythonpath()),
                # /opt is read-only in Lambda; don't leave bytecode in the unzipped layer either.
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        """Start the server, then the runtime client; its output goes to ``log_path``."""
        self.server.freeze_hook = self._freeze
        self.server.start()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-S", "-m", "awslambdaric", self.handler]
        # The runtime writes straight to the file (no pipe and copier thread in between), so
        # whatever it printed before posting a result is in the file when the test looks.
        # The lifeline pipe tells us when it exits: only the child holds its write end, and
        # the read returns end-of-file once the child is gone.
        lifeline_read, lifeline_write = os.pipe()
        try:
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    command,
                    cwd=self.task_dir,
                    env=self.environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(lifeline_write,),
                )
        except BaseException:
            os.close(lifeline_read)
            raise
        finally:
            os.close(lifeline_write)
        self._watcher = threading.Thread(
            target=self._watch_exit, args=(lifeline_read,), name="lambda-runtime-exit", daemon=True
        )
        self._watcher.start()

    def _watch_exit(self, lifeline_read: int) -> None:
        """Block until the runtime exits (end of file on the lifeline), then wake any waiter."""
        try:
            while os.read(lifeline_read, 1):  # the child never writes: this is one blocking read
                pass
        finally:
            os.close(lifeline_read)
        state = self.server.state
        with state.condition:
            state.exited = True
            state.condition.notify_all()

    def stop(self) -> None:
        """Resume the runtime if frozen, terminate it (kill if it lingers), close the server."""
        process = self.process
        if process is not None and process.returncode is None:
            self.thaw()
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)
        if self._watcher is not None:
            self._watcher.join(STOP_TIMEOUT_S)
        self.server.close()

    # -- the freeze ------------------------------------------------------------------------

    def _freeze(self) -> None:
        """SIGSTOP the runtime and wait until the kernel reports it stopped (every thread)."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        with self._freeze_lock:
            os.kill(process.pid, signal.SIGSTOP)
            # waitpid(WUNTRACED) returns once the whole thread group is stopped, so nothing of
            # the function (e.g. a log sender thread) can run after the test starts looking.
            _, status = os.waitpid(process.pid, os.WUNTRACED)
            if os.WIFSTOPPED(status):
                self.frozen = True
            else:
                # The child died instead and this wait reaped it: tell Popen its exit code.
                process.returncode = os.waitstatus_to_exitcode(status)

    def thaw(self) -> None:
        """SIGCONT the runtime if it is frozen, as Lambda thaws it for the next event."""
        process = self.process
        with self._freeze_lock:
            if self.frozen and process is not None and process.returncode is None:
                os.kill(process.pid, signal.SIGCONT)
            self.frozen = False

    def thread_states(self) -> dict[int, str]:
        """Map every thread id of the runtime to its state letter in /proc (``T`` = stopped)."""
        assert self.process is not None
        states: dict[int, str] = {}
        for stat in Path(f"/proc/{self.process.pid}/task").glob("*/stat"):
            try:
                text = stat.read_text()
            except FileNotFoundError:  # a thread that ended between listing and reading
                continue
            # The command name (field 2) is in parentheses and may hold spaces: split after it.
            states[int(stat.parent.name)] = text.rpartition(")")[2].split()[0]
        return states

    # -- invocations -----------------------------------------------------------------------

    def invoke(
        self,
        event: Any,
        request_id: str | None = None,
        timeout_s: float = DEFAULT_INVOKE_TIMEOUT_S,
        *,
        function_timeout_s: float | None = None,
    ) -> InvocationResult:
        """Run one invocation and return what the runtime posted; the runtime is then frozen.

        Args:
            event: the JSON-serializable event.
            request_id: ``context.aws_request_id`` (default: a fresh UUID, as Lambda's).
            timeout_s: how long to wait for the response or error before failing the test.
            function_timeout_s: the function's configured timeout, which sets the deadline
                behind ``context.get_remaining_time_in_millis()`` (default: ``timeout_s``).

        Raises:
            RuntimeHarnessError: the runtime failed to start, exited, or did not answer in time.
        """
        self.thaw()
        request_id = request_id if request_id is not None else str(uuid.uuid4())
        queued_ns = time.time_ns()
        deadline_ms = queued_ns // 1_000_000 + int(1000 * (function_timeout_s or timeout_s))
        headers = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.invoked_function_arn,
            "Lambda-Runtime-Trace-Id": _trace_id(),
        }
        body = json.dumps(event).encode()
        self.server.queue(_Pending(request_id, body, headers, queued_ns))
        state = self.server.state
        with state.condition:
            state.condition.wait_for(
                lambda: request_id in state.results or state.exited or state.init_error is not None,
                timeout=timeout_s,
            )
            result = state.results.get(request_id)
            init_error = state.init_error
            exited = state.exited
        if result is None:
            if init_error is not None:
                raise RuntimeHarnessError(
                    f"the function failed to initialize: {init_error.body!r}\n{self.log_tail()}"
                )
            reason = "exited" if exited else f"did not answer within {timeout_s} s"
            raise RuntimeHarnessError(f"runtime {reason} for {request_id}\n{self.log_tail()}")
        self.results.append(result)
        return result

    def wait_for_init_error(self, timeout_s: float = DEFAULT_INVOKE_TIMEOUT_S) -> InitError:
        """Wait until the runtime posts /runtime/init/error (a function that fails to import)."""
        state = self.server.state
        with state.condition:
            state.condition.wait_for(
                lambda: state.init_error is not None or state.exited, timeout=timeout_s
            )
            init_error = state.init_error
        if init_error is None:
            raise RuntimeHarnessError(f"no init error was posted\n{self.log_tail()}")
        return init_error

    def wait_for_exit(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Wait for the runtime process to end on its own and return its exit code."""
        assert self.process is not None
        return self.process.wait(timeout_s)

    def unexpected_requests(self) -> list[str]:
        """Requests the server refused (e.g. a result for an id that was not in flight)."""
        with self.server.state.condition:
            return list(self.server.state.unexpected)

    def log_text(self) -> str:
        """Everything the runtime wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self) -> str:
        """The end of the runtime's output, for failure messages."""
        return f"--- runtime output ({self.log_path}) ---\n{self.log_text()[-_LOG_TAIL_CHARS:]}"


def _error_type(
    status: Literal["response", "error"], header: str | None, body: bytes
) -> str | None:
    """The error's type: from the header if sent, else from the error document.

    awslambdaric's C client posts an invocation error with only the X-Ray cause header; the
    type is in the body's ``errorType``.
    """
    if status != "error" or header:
        return header
    try:
        document = json.loads(body)
    except ValueError:
        return None
    error_type = document.get("errorType") if isinstance(document, dict) else None
    return error_type if isinstance(error_type, str) else None


def _trace_id() -> str:
    """An X-Ray trace header of the shape Lambda sends (Root=1-<8 hex>-<24 hex>)."""
    return (
        f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
        f"Parent={uuid.uuid4().hex[:16]};Sampled=0"
    )
