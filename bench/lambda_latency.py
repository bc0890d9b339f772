"""What logging adds to a Lambda caller's wait (awslambdaric): `python -m bench.lambda_latency`.

The function (``tests/lambda_functions/e2e_extension.py``) runs from the layer in the local
Lambda (`local_aws.lambda_runtime`), which serves the Extensions API and freezes the runtime
only when the invocation ends. Two runtimes run side by side in one run: the decorator's default
(delivery after the response, through the extension) and ``delivery="before_return"``. In each,
warm invocations alternate between logging N records to CloudWatch and logging them to a handler
that only formats them; the caller's wait is the time from dispatch to the posted response, and
"added" is the difference of the medians. Every CloudWatch invocation is checked complete at the
freeze, and Lambda's post-runtime phase (PostRuntimeExtensionsDuration) is reported too.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.imports import REPO_ROOT
from local_aws.lambda_runtime import LambdaRuntime, copy_function, unzip_layer
from local_aws.moto_endpoint import MotoEndpoint, running_moto_server

FUNCTION = REPO_ROOT / "tests" / "lambda_functions" / "e2e_extension.py"
MODES = ("after_response", "before_return")
DEFAULT_RECORDS = (500, 3_000)
DEFAULT_ROUNDS = 15
WARM_UP = 2
INVOKE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Row:
    """One mode and record count: the medians, in milliseconds."""

    mode: str
    records: int
    caller_ms: float
    baseline_ms: float
    post_runtime_ms: float
    rounds: int

    @property
    def added_ms(self) -> float:
        """What delivering to CloudWatch adds to the caller's wait, over formatting alone."""
        return self.caller_ms - self.baseline_ms


def _invoke(
    runtime: LambdaRuntime, moto: MotoEndpoint, group: str, records: int, sink: str
) -> tuple[float, float]:
    """One invocation: (caller ms, post-runtime ms); a CloudWatch one is checked complete."""
    tag = f"lat-{uuid.uuid4().hex[:8]}"
    result = runtime.invoke(
        {"tag": tag, "records": records, "sink": sink}, timeout_s=INVOKE_TIMEOUT_S
    )
    if sink == "cloudwatch":
        [stream] = [name for name in moto.streams(group) if name.endswith(result.request_id)]
        delivered = len(moto.messages(group, stream))
        if delivered != records:
            raise RuntimeError(f"{delivered} of {records} records were there at the freeze")
    return result.caller_ms, result.post_runtime_ms


def measure(
    layer_python_dir: Path,
    moto: MotoEndpoint,
    root: Path,
    *,
    records: tuple[int, ...] = DEFAULT_RECORDS,
    rounds: int = DEFAULT_ROUNDS,
) -> list[Row]:
    """Run both modes side by side and return one row per mode and record count."""
    runtimes: dict[str, tuple[LambdaRuntime, str]] = {}
    rows: list[Row] = []
    try:
        for mode in MODES:
            group = f"/bench/lambda/{uuid.uuid4()}"
            task_dir = root / mode / "task"
            copy_function(FUNCTION, task_dir)
            runtime = LambdaRuntime(
                task_dir,
                layer_python_dir=layer_python_dir,
                endpoint_url=moto.url,
                function_name=f"bench-{mode.replace('_', '-')}",
                log_path=root / mode / "runtime.log",
                extra_env={"E2E_LOG_GROUP": group, "E2E_DELIVERY": mode},
            )
            runtime.start()
            runtimes[mode] = (runtime, group)
        for count in records:
            samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for round_number in range(WARM_UP + rounds):
                # Interleaved, so that the machine's drift in load falls on all alike.
                for mode, (runtime, group) in runtimes.items():
                    for sink in ("cloudwatch", "format_only"):
                        sample = _invoke(runtime, moto, group, count, sink)
                        if round_number >= WARM_UP:
                            samples.setdefault((mode, sink), []).append(sample)
            for mode in MODES:
                delivered = samples[(mode, "cloudwatch")]
                baseline = samples[(mode, "format_only")]
                rows.append(
                    Row(
                        mode=mode,
                        records=count,
                        caller_ms=statistics.median(s[0] for s in delivered),
                        baseline_ms=statistics.median(s[0] for s in baseline),
                        post_runtime_ms=statistics.median(s[1] for s in delivered),
                        rounds=rounds,
                    )
                )
    finally:
        for runtime, _ in runtimes.values():
            runtime.stop()
    return rows


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table, with the ratio of the two modes' added time."""
    lines = [
        "| delivery | records | caller wait (ms) | format-only (ms) | added (ms) "
        "| post-runtime (ms) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.mode} | {r.records:,} | {r.caller_ms:.2f} | {r.baseline_ms:.2f} | "
        f"{r.added_ms:+.2f} | {r.post_runtime_ms:.2f} |"
        for r in rows
    ]
    by_key = {(r.mode, r.records): r for r in rows}
    for count in sorted({r.records for r in rows}):
        after, before = by_key[("after_response", count)], by_key[("before_return", count)]
        ratio = after.caller_ms / before.caller_ms if before.caller_ms else float("nan")
        lines.append(
            f"\n{count:,} records: the caller waits {ratio:.2f}x as long with delivery after "
            f"the response as before the return; added {after.added_ms:+.2f} ms against "
            f"{before.added_ms:+.2f} ms (medians of {after.rounds} warm invocations each)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--records", type=int, nargs="+", default=list(DEFAULT_RECORDS))
    args = parser.parse_args(argv)
    from lambda_layer.build import build_layer

    with tempfile.TemporaryDirectory() as scratch, running_moto_server() as moto:
        root = Path(scratch)
        layer = unzip_layer(build_layer(root / "layer.zip"), root / "opt")
        rows = measure(layer, moto, root, records=tuple(args.records), rounds=args.rounds)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
