"""A local Lambda: our own Runtime API server driving the real runtime client (awslambdaric).

Lambda runs a Python function as ``python -m awslambdaric <module>.<function>``, which
long-polls the Runtime API for the next event and posts the function's response or error back
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html). `LambdaRuntime` starts that same
client as a subprocess against `RuntimeApiServer`, a small server on 127.0.0.1.

The point of the harness is Lambda's freeze: once the invocation ends, the execution environment
is frozen and a background thread that still holds log records never runs again if the
environment is not thawed. The server imitates it by SIGSTOPping the runtime process and waiting
until the kernel reports the process stopped. So a test that looks at CloudWatch after `invoke`
returns sees exactly what real Lambda would have delivered. `thaw` (or the next `invoke`)
resumes it.

It also serves the Extensions API (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html)
as Lambda does for internal extensions (threads of the runtime process): registration only during
Init (until the runtime first asks for an event), INVOKE events only (SHUTDOWN is refused to an
internal extension), each INVOKE given to the runtime and every extension at once, once all of
them wait in ``next``. The invocation ends, and the freeze comes, when the runtime has posted its
response or error *and* every extension has called ``next`` again; without extensions, that is
inside the request that posts the result, before it is even answered. The response is visible to
the caller (`InvocationResult.posted_ns`) when the runtime posts it, extensions or not.

The function's package must be importable only the way Lambda imports it: the task directory
first, then the layer's ``python/`` folder. The venv has this project installed in editable mode
through a ``.pth`` file, which ``site`` would add to ``sys.path``; the runtime therefore runs with
``-S`` (no ``site``, so no ``.pth`` file is processed) and an explicit ``PYTHONPATH`` of the layer
and the venv's site-packages (which stand in for the SDK that every Lambda Python runtime ships).
"""

from __future__ import annotations

import dataclasses
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
EXTENSION_REGISTER_PATH: Final = "/2020-01-01/extension/register"
EXTENSION_NEXT_PATH: Final = "/2020-01-01/extension/event/next"
EXTENSION_NAME_HEADER: Final = "Lambda-Extension-Name"
EXTENSION_ID_HEADER: Final = "Lambda-Extension-Identifier"
EXTENSION_EVENT_ID_HEADER: Final = "Lambda-Extension-Event-Identifier"
INTERNAL_EXTENSION_EVENTS: Final = frozenset({"INVOKE"})
"""Internal extensions cannot register for SHUTDOWN: Lambda sends the runtime SIGTERM instead."""
ExtensionsMode = Literal["available", "absent", "refused"]
"""The Extensions API as Lambda serves it; missing (404, a local runtime without it); or
refusing internal extensions INVOKE events (403, as on Lambda Managed Instances)."""
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
    """Wall clock when the response or error POST reached the server: the caller has it then."""
    dispatched_ns: int = 0
    """Wall clock when the event was handed to the runtime's /next."""
    ended_ns: int = 0
    """Wall clock when the invocation ended (every extension called next): the freeze."""
    deadline_ms: int = 0
    """The invocation's deadline (Unix ms), as the runtime and the extensions were told."""

    @property
    def caller_ms(self) -> float:
        """What the caller waits: from dispatch to the posted response."""
        return (self.posted_ns - self.dispatched_ns) / 1e6

    @property
    def post_runtime_ms(self) -> float:
        """Lambda's PostRuntimeExtensionsDuration: from the posted result to the freeze."""
        return (self.ended_ns - self.posted_ns) / 1e6

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
class _Extension:
    """One registered internal extension and where it stands in the current phase."""

    name: str
    waiting: bool = False
    """It called next and waits for an event (for Init's end, or the invocation's)."""
    event: bytes | None = None
    """The event handed to it and not yet answered."""


@dataclass
class _RuntimeState:
    """Everything the server threads and the test thread share, under one condition."""

    condition: threading.Condition = field(default_factory=threading.Condition)
    pending: deque[_Pending] = field(default_factory=deque)
    queued: dict[str, _Pending] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)
    results: dict[str, InvocationResult] = field(default_factory=dict)
    init_error: InitError | None = None
    extensions: dict[str, _Extension] = field(default_factory=dict)
    registrations: list[tuple[str, int]] = field(default_factory=list)
    """Every registration attempt: the extension's name and the status answered."""
    init_closed: bool = False
    """The runtime asked for its first event: Init is over, registration is closed."""
    current: str | None = None
    """The request id of the invocation under way (dispatched and not ended)."""
    ending: bool = False
    """The current invocation's end was decided (the freeze is being made)."""
    dispatched: dict[str, int] = field(default_factory=dict)
    ended: dict[str, int] = field(default_factory=dict)
    exited: bool = False
    closing: bool = False
    unexpected: list[str] = field(default_factory=list)


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    """One connection of the runtime client; awslambdaric keeps it open across requests."""

    # The runtime client speaks HTTP/1.1 with keep-alive; every answer carries Content-Length.
    protocol_version = "HTTP/1.1"
    # An answer goes out as two writes (headers, then body): with Nagle's algorithm the body
    # waits for the client's delayed ACK of the headers, about 40 ms on a kept-alive
    # connection, which would be counted as the function's time. Lambda's API adds no such wait.
    disable_nagle_algorithm = True
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
        """Serve the runtime's or an extension's next: block until the next invocation starts."""
        if self.path == EXTENSION_NEXT_PATH:
            self._extension_next()
            return
        if self.path != NEXT_PATH:
            self._reply(404, b'{"errorType": "NotFound"}')
            return
        state = self.server.state
        with state.condition:
            state.init_closed = True
            # An invocation starts once the previous one ended and every extension waits.
            state.condition.wait_for(
                lambda: state.closing or (bool(state.pending) and _may_start(state)),
                timeout=_MAX_LONG_POLL_S,
            )
            if state.closing or not state.pending:
                # Drop the connection instead of answering: the runtime is being stopped.
                self.close_connection = True
                return
            pending = state.pending.popleft()
            state.in_flight.add(pending.request_id)
            state.current = pending.request_id
            state.dispatched[pending.request_id] = time.time_ns()
            invoke = _invoke_event(pending)
            for extension in state.extensions.values():
                extension.waiting = False
                extension.event = invoke
            state.condition.notify_all()
        self._reply(200, pending.body, pending.headers)

    def _extension_next(self) -> None:
        """An extension is done with the phase: maybe end the invocation; wait for the next."""
        state = self.server.state
        identifier = self.headers.get(EXTENSION_ID_HEADER, "")
        ending: str | None = None
        with state.condition:
            extension = state.extensions.get(identifier)
            if extension is not None:
                extension.waiting = True
                extension.event = None
                ending = _locked_decide_end(state)
                state.condition.notify_all()  # the runtime's /next may wait for this one
        if extension is None:
            self._reply(403, _error_document("Extension.UnknownExtensionIdentifier", identifier))
            return
        if ending is not None:
            self.server.end_invocation(ending)
        with state.condition:
            state.condition.wait_for(
                lambda: extension.event is not None or state.closing, timeout=_MAX_LONG_POLL_S
            )
            event = extension.event
        if event is None:
            self.close_connection = True
            return
        self._reply(200, event, {EXTENSION_EVENT_ID_HEADER: str(uuid.uuid4())})

    def do_POST(self) -> None:
        """Serve a posted response or error (freeze the runtime first), or an init error."""
        posted_ns = time.time_ns()
        body = self._read_body()
        state = self.server.state
        if self.path == EXTENSION_REGISTER_PATH:
            self._register(body)
            return
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
            ending = _locked_decide_end(state)
            state.condition.notify_all()
        if ending is not None:
            # Freeze before the runtime hears back: from here on no thread of the function
            # runs, exactly as after Lambda freezes the environment.
            self.server.end_invocation(ending)
        self._reply(202, b'{"status": "OK"}')

    def _register(self, body: bytes) -> None:
        """Register an internal extension, with Lambda's refusals (403) and answers."""
        state = self.server.state
        name = self.headers.get(EXTENSION_NAME_HEADER, "")
        mode = self.server.extensions_mode
        try:
            events = set(json.loads(body or b"{}").get("events", []))
        except (ValueError, AttributeError):
            events = {"<unreadable>"}
        with state.condition:
            if mode == "absent":
                status, answer = 404, _error_document("NotFound", self.path)
            elif not name:
                status, answer = 403, _error_document("Extension.InvalidExtensionName", "empty")
            elif state.init_closed:
                status, answer = (
                    403,
                    _error_document(
                        "Extension.RegistrationClosed", "Extension registration closed already"
                    ),
                )
            elif mode == "refused" or not events <= INTERNAL_EXTENSION_EVENTS:
                status, answer = (
                    403,
                    _error_document(
                        "Extension.InvalidEventType", f"{sorted(events)} for an internal extension"
                    ),
                )
            elif any(extension.name == name for extension in state.extensions.values()):
                status, answer = (
                    403,
                    _error_document(
                        "Extension.InvalidExtensionState",
                        "Extension with this name already registered",
                    ),
                )
            else:
                status = 200
                identifier = str(uuid.uuid4())
                state.extensions[identifier] = _Extension(name)
            state.registrations.append((name, status))
        if status != 200:
            self._reply(status, answer)
            return
        runtime = self.server.function
        document = {
            "functionName": runtime.get("name", DEFAULT_FUNCTION_NAME),
            "functionVersion": runtime.get("version", "$LATEST"),
            "handler": runtime.get("handler", ""),
        }
        self._reply(200, json.dumps(document).encode(), {EXTENSION_ID_HEADER: identifier})

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

    def __init__(self, *, extensions_mode: ExtensionsMode = "available") -> None:
        super().__init__(("127.0.0.1", 0), _RuntimeApiHandler)
        self.state = _RuntimeState()
        self.extensions_mode = extensions_mode
        self.function: dict[str, str] = {}
        """What registration answers: the function's ``name``, ``version`` and ``handler``."""
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

    def end_invocation(self, request_id: str) -> None:
        """Freeze the runtime, then mark ``request_id`` ended: the next one may start."""
        self.freeze()
        with self.state.condition:
            self.state.ended[request_id] = time.time_ns()
            self.state.current = None
            self.state.ending = False
            self.state.condition.notify_all()

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
        extensions_mode: ExtensionsMode = "available",
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
        self.server = RuntimeApiServer(extensions_mode=extensions_mode)
        self.server.function = {
            "name": function_name,
            "version": function_version,
            "handler": handler,
        }
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
        """SIGCONT the runtime if it is frozen, as Lambda thaws it for the next event, and return
        once it is thawed (`_wait_until_thawed`)."""
        process = self.process
        with self._freeze_lock:
            if self.frozen and process is not None and process.returncode is None:
                os.kill(process.pid, signal.SIGCONT)
                self._wait_until_thawed(process.pid)
            self.frozen = False

    def _wait_until_thawed(self, pid: int) -> None:
        """Return once no thread is marked stopped and the main thread has run since SIGCONT.

        SIGCONT wakes every thread, but each is marked running, and clears its signal-pending
        flag, only once a CPU takes it: under load, later. Until then the kernel passes a
        SIGTERM to another thread (it skips a stopped thread, and a sleeping one with a signal
        pending): awslambdaric's poller, blocked in C, where Python never runs the handler.
        The kernel offers no event for this, so its state is read, within a bound.
        """
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            states = self.thread_states()
            if "T" not in states.values() and states.get(pid) not in ("R", "T"):
                return
            time.sleep(0.001)

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
                lambda: request_id in state.ended or state.exited or state.init_error is not None,
                timeout=timeout_s,
            )
            result = state.results.get(request_id)
            ended_ns = state.ended.get(request_id)
            dispatched_ns = state.dispatched.get(request_id, 0)
            init_error = state.init_error
            exited = state.exited
        if result is None or ended_ns is None:
            if init_error is not None:
                raise RuntimeHarnessError(
                    f"the function failed to initialize: {init_error.body!r}\n{self.log_tail()}"
                )
            if exited:
                reason = "exited"
            elif result is None:
                reason = f"did not answer within {timeout_s} s"
            else:
                reason = f"answered, but its extensions did not call next within {timeout_s} s"
            raise RuntimeHarnessError(f"runtime {reason} for {request_id}\n{self.log_tail()}")
        result = dataclasses.replace(
            result, dispatched_ns=dispatched_ns, ended_ns=ended_ns, deadline_ms=deadline_ms
        )
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

    def extension_registrations(self) -> list[tuple[str, int]]:
        """Every registration attempt: the extension's name and the status it was answered."""
        with self.server.state.condition:
            return list(self.server.state.registrations)

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


def _may_start(state: _RuntimeState) -> bool:
    """An invocation may start: none under way, and every extension waits in next."""
    return state.current is None and all(e.waiting for e in state.extensions.values())


def _locked_decide_end(state: _RuntimeState) -> str | None:
    """The request id whose invocation ends now (result posted, every extension in next)."""
    current = state.current
    if (
        current is None
        or state.ending
        or current not in state.results
        or not all(extension.waiting for extension in state.extensions.values())
    ):
        return None
    state.ending = True
    return current


def _invoke_event(pending: _Pending) -> bytes:
    """The INVOKE event an extension gets for ``pending``, in Lambda's shape."""
    return json.dumps(
        {
            "eventType": "INVOKE",
            "deadlineMs": int(pending.headers["Lambda-Runtime-Deadline-Ms"]),
            "requestId": pending.request_id,
            "invokedFunctionArn": pending.headers["Lambda-Runtime-Invoked-Function-Arn"],
            "tracing": {
                "type": "X-Amzn-Trace-Id",
                "value": pending.headers["Lambda-Runtime-Trace-Id"],
            },
        }
    ).encode()


def _error_document(error_type: str, message: str) -> bytes:
    """Lambda's error answer: ``{"errorMessage": ..., "errorType": ...}``."""
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


def _trace_id() -> str:
    """An X-Ray trace header of the shape Lambda sends (Root=1-<8 hex>-<24 hex>)."""
    return (
        f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
        f"Parent={uuid.uuid4().hex[:16]};Sampled=0"
    )
