"""Run every contender side by side against one local endpoint and report: `python -m bench.run`.

One moto server on 127.0.0.1 serves the whole run; each contender runs in its own process
(`bench.worker`), to deliver, to sustain and during an outage, in each of five repetitions. Each
repetition runs one mode for every contender before the next mode (`MODES`), so that the figures
a ratio compares are taken seconds apart, and the contenders' order rotates from one repetition
to the next so that drift in the machine's load spreads over all of them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import endpoint, imports, neighbour, report, summary, targets
from bench.peers import ARTICLE, CONTENDERS, DELIVER_ONLY, DELIVERS, LABELS, OUTAGE_ONLY
from bench.worker import FORMAT, MESSAGE, RESULT_PREFIX

DEFAULT_OUT = imports.REPO_ROOT / "bench" / "results"
_WORKER_TIMEOUT_S = 600


@dataclass(frozen=True)
class Settings:
    """How much each repetition does."""

    reps: int
    calls: int
    """Timed logging calls per contender (enough for a steady p99.9)."""
    article_calls: int
    """Fewer for the article's handler: each call waits ~2 ms for its own PutLogEvents."""
    outage_records: int
    outage_deadline_s: float
    latency_records: int
    latency_deadline_s: float
    """Longer than watchtower's default 60 s send interval, so that its figure is real."""
    import_reps: int
    quick: bool
    sustained_records: int
    """Records of the sustained-throughput run, per contender (not the article's handler)."""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        """Full counts by default; tiny ones with ``--quick``; explicit flags win over both."""
        quick = cls(1, 2_000, 20, 5_000, 20.0, 100, 5.0, 1, True, 5_000)
        full = cls(5, 20_000, 500, 100_000, 60.0, 1_000, 75.0, 3, False, 200_000)
        base = quick if args.quick else full
        return cls(
            reps=args.reps or base.reps,
            calls=args.calls or base.calls,
            article_calls=args.article_calls or base.article_calls,
            outage_records=args.outage_records or base.outage_records,
            outage_deadline_s=base.outage_deadline_s,
            latency_records=base.latency_records,
            latency_deadline_s=base.latency_deadline_s,
            import_reps=args.reps or base.import_reps,
            quick=base.quick,
            sustained_records=args.sustained_records or base.sustained_records,
        )

    def calls_for(self, contender: str) -> int:
        """Return how many timed calls ``contender`` makes per repetition."""
        return self.article_calls if contender == ARTICLE else self.calls


@dataclass(frozen=True)
class WorkerJob:
    """One worker process: a contender, a mode, and where and how much it logs."""

    contender: str
    mode: str
    url: str
    group: str
    calls: int
    deadline_s: float

    def start(self) -> subprocess.Popen[str]:
        """Start the worker; it inherits an environment that can only reach ``url``."""
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.worker",
                *("--contender", self.contender, "--mode", self.mode, "--endpoint", self.url),
                *("--group", self.group, "--calls", str(self.calls)),
                *("--deadline-s", str(self.deadline_s)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=endpoint.fake_aws_environment(self.url),
            cwd=imports.REPO_ROOT,
        )

    def result(self, process: subprocess.Popen[str]) -> dict[str, Any]:
        """Wait for the worker and return its figures (or why it could not run)."""
        try:
            stdout, stderr = process.communicate(timeout=_WORKER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return _failed(self.contender, self.mode, f"timed out after {_WORKER_TIMEOUT_S} s")
        for line in reversed(stdout.splitlines()):
            if line.startswith(RESULT_PREFIX):
                result: dict[str, Any] = json.loads(line.removeprefix(RESULT_PREFIX))
                return result
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        return _failed(self.contender, self.mode, f"worker exited {process.returncode}: {tail}")

    def run(self) -> dict[str, Any]:
        """Run the worker alone, to completion."""
        return self.result(self.start())


def _failed(contender: str, mode: str, reason: str) -> dict[str, Any]:
    return {"contender": contender, "mode": mode, "available": False, "reason": reason}


def _latency_line(result: dict[str, Any]) -> str:
    seconds = result.get("visible_unflushed_s")
    if seconds is None:
        return "not all visible without flush() within the deadline"
    return f"all visible without flush() after {seconds:.2f} s"


def _sustain_line(result: dict[str, Any]) -> str:
    eps = result.get("sustained_eps")
    if eps is None:
        return "not every event delivered"
    return f"{eps:,.0f} events/s over {result['calls']:,} records"


def _deliver_line(result: dict[str, Any]) -> str:
    return (
        f"p50 {result['caller_p50_us']:.2f} us, p99 {result['caller_p99_us']:.2f} us, "
        f"CPU/event {result['cpu_per_event_us']:.2f} us"
    )


def _outage_line(result: dict[str, Any]) -> str:
    return f"peak +{result.get('outage_peak_delta_mib', float('nan')):.1f} MiB"


_PROGRESS_LINES = {
    "latency": _latency_line,
    "sustain": _sustain_line,
    "deliver": _deliver_line,
    "outage": _outage_line,
}


def _progress(rep: int, result: dict[str, Any]) -> str:
    name = f"rep {rep + 1} {result['contender']:<13} {result['mode']:<8}"
    if not result.get("available"):
        return f"{name} n/a: {result.get('reason')}"
    return f"{name} {_PROGRESS_LINES[result['mode']](result)}"


MODES: tuple[str, ...] = ("deliver", "sustain", "outage")
"""A repetition runs every contender in one mode before the next mode, so that the runs a ratio
compares (this handler's deliver run and the floor's) are seconds apart, not minutes: a slow
stretch of a shared machine then tends to fall on both sides of the ratio."""


def rep_jobs(settings: Settings, chosen: tuple[str, ...], rep: int) -> list[tuple[str, str, int]]:
    """Return (contender, mode, records) in the order repetition ``rep`` runs them.

    Mode by mode; within a mode the contenders' order rotates from one repetition to the next,
    so that drift in the machine's load spreads over all of them alike.
    """
    order = chosen[rep % len(chosen) :] + chosen[: rep % len(chosen)]
    jobs = []
    for mode in MODES:
        for contender in order:
            if mode != "deliver" and contender in DELIVER_ONLY:
                continue
            if mode == "outage":
                jobs.append((contender, mode, settings.outage_records))
            elif contender in OUTAGE_ONLY:
                continue
            elif mode == "deliver":
                jobs.append((contender, mode, settings.calls_for(contender)))
            elif contender != ARTICLE:  # 2 ms a call: 200,000 would take minutes
                jobs.append((contender, mode, settings.sustained_records))
    return jobs


def measure(
    settings: Settings, chosen: tuple[str, ...], defer_puts: bool = False
) -> list[dict[str, Any]]:
    """Run every repetition against one moto server and return every worker's figures.

    ``defer_puts``: moto answers PutLogEvents at once and applies it before the next other call
    (`local_aws.keep_alive_moto`), so that its parsing of each batch is off the host while the
    contenders are timed; every delivery check still reads the events back from it."""
    runs: list[dict[str, Any]] = []
    run_id = time.strftime("%Y%m%dT%H%M%S")
    with endpoint.moto_server(defer_puts) as url, endpoint.dead_endpoint() as dead:
        for rep in range(settings.reps):
            endpoint.reset(url)  # each repetition writes into an empty endpoint
            for contender, mode, count in rep_jobs(settings, chosen, rep):
                # A group per run: a handler whose stream name is fixed (watchtower's) would
                # otherwise find the deliver run's events in the stream the reader counts.
                group = f"/bench/{run_id}/rep{rep}/{contender}/{mode}"
                result = WorkerJob(
                    contender,
                    mode,
                    dead if mode == "outage" else url,
                    group,
                    count,
                    settings.outage_deadline_s,
                ).run()
                result["rep"] = rep
                runs.append(result)
                print(_progress(rep, result), flush=True)
        runs += _latencies(settings, chosen, url, run_id)
    return runs


def _latencies(
    settings: Settings, chosen: tuple[str, ...], url: str, run_id: str
) -> list[dict[str, Any]]:
    """Measure visibility without flush() once, for all delivering contenders at once.

    They spend this time waiting on their own schedules (watchtower's is 60 s), so running them
    side by side costs one wait instead of one per contender, and disturbs no CPU figure.
    """
    jobs = [
        WorkerJob(
            contender,
            "latency",
            url,
            f"/bench/{run_id}/latency/{contender}",
            settings.latency_records,
            settings.latency_deadline_s,
        )
        for contender in chosen
        if contender in DELIVERS and contender not in OUTAGE_ONLY
    ]
    started = [(job, job.start()) for job in jobs]
    results = []
    for job, process in started:
        result = job.result(process)
        result["rep"] = 0
        results.append(result)
        print(_progress(0, result), flush=True)
    return results


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _print_report(
    settings: Settings,
    *,
    chosen: tuple[str, ...],
    figures: dict[str, Any],
    import_spreads: dict[str, Any],
    layer_bytes: int | None,
    verdicts: list[targets.Verdict],
    notes: list[str],
    meta: dict[str, Any],
) -> None:
    load_before, load_after = meta["loadavg_before"], meta["loadavg_after"]
    calls = {c: settings.calls_for(c) for c in chosen if c not in OUTAGE_ONLY}
    print()
    print(f"Medians of {settings.reps} repetition(s); ratios are same-repetition pairs.")
    print(report.table(figures, calls))
    print(
        f"* one run, delivering contenders side by side: {settings.latency_records} records, "
        f"no flush(), n/a if not all visible within {settings.latency_deadline_s:g} s"
    )
    print()
    print("Ranges (min-max over repetitions):")
    print(report.table(figures, calls, spans=True))
    print(report.legend())
    print()
    print(
        f"Import time, ms, {settings.import_reps} fresh process(es) each: "
        + "; ".join(
            f"{name} {report.fmt_spread(spread, '{:.1f}')}"
            for name, spread in import_spreads.items()
        )
    )
    layer = f"{layer_bytes:,} bytes" if layer_bytes is not None else "n/a (not built)"
    print(f"Layer zip ({imports.LAYER_ZIP.relative_to(imports.REPO_ROOT)}): {layer}")
    print(
        f"Load average before/after: {load_before[0]:.2f}/{load_after[0]:.2f}; formatter {FORMAT!r}"
    )
    for contender, entry in figures.items():
        for reason in entry["not_available"]:
            print(f"n/a {LABELS[contender]}: {reason}")
    for note in notes:
        print(f"note: {note}")
    print()
    if verdicts:
        caution = " (quick run: indicative only)" if settings.quick else ""
        print(f"Performance targets{caution}:")
        print(report.verdicts_text(verdicts))


def main(argv: list[str] | None = None) -> int:
    """Measure, then print the table and verdicts and write results.json and results.png."""
    parser = argparse.ArgumentParser(description="Benchmark this handler against its peers.")
    parser.add_argument("--quick", action="store_true", help="tiny counts, one repetition")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for outputs")
    parser.add_argument("--reps", type=int, help="repetitions (default 5)")
    parser.add_argument("--calls", type=int, help="timed calls per contender (default 20,000)")
    parser.add_argument("--article-calls", type=int, help="for the article's handler (500)")
    parser.add_argument("--outage-records", type=int, help="records during the outage (100,000)")
    parser.add_argument(
        "--sustained-records", type=int, help="records of the sustained run (200,000)"
    )
    parser.add_argument(
        "--neighbour", action="store_true", help="run beside a process busy on one core"
    )
    parser.add_argument(
        "--defer-puts",
        action="store_true",
        help="moto answers each batch at once and parses it later, off the timed calls",
    )
    parser.add_argument("--contenders", help=f"comma-separated subset of {','.join(CONTENDERS)}")
    args = parser.parse_args(argv)
    settings = Settings.from_args(args)
    chosen = tuple(args.contenders.split(",")) if args.contenders else CONTENDERS
    unknown = set(chosen) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders: {', '.join(sorted(unknown))}")

    started = time.time()
    load_before = os.getloadavg()
    with neighbour.busy_neighbour(args.neighbour):
        runs = measure(settings, chosen, args.defer_puts)
    load_after = os.getloadavg()
    import_env = endpoint.fake_aws_environment("http://127.0.0.1:9")
    import_ms = imports.import_times(settings.import_reps, import_env)
    layer_bytes = imports.layer_size_bytes()

    figures = summary.summarize(runs, chosen)
    verdicts = targets.judge(figures, runs) if set(CONTENDERS) <= set(chosen) else []
    notes = targets.memory_accounting(runs)
    import_spreads = {
        name: summary.Spread.of(list(values)).as_json() for name, values in import_ms.items()
    }
    meta = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": time.time() - started,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "settings": settings.__dict__,
        "formatter": FORMAT,
        "cpu_bound_neighbour": args.neighbour,
        "moto_defers_puts": args.defer_puts,
        "message": MESSAGE,
        "versions": {
            name: _version(name)
            for name in ("aws-cloudwatch-logs-handler", "watchtower", "boto3", "botocore", "moto")
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    report.write_json(
        args.out / "results.json",
        {
            "meta": meta,
            "runs": runs,
            "summary": figures,
            "imports_ms": import_spreads,
            "layer_zip_bytes": layer_bytes,
            "targets": [verdict.as_json() for verdict in verdicts],
            "notes": notes,
        },
    )
    title = (
        f"{settings.reps} repetition(s), {settings.calls} calls "
        f"({settings.article_calls} for the article's handler), medians with min-max; "
        f"Python {meta['python']}, {os.cpu_count()} CPUs, moto on 127.0.0.1"
        + (", one core kept busy by a neighbour" if args.neighbour else "")
        + (", batches parsed after the timed calls" if args.defer_puts else "")
    )
    report.draw(args.out / "results.png", figures, title)
    report.draw_latency(args.out / "latency.png", runs, title)

    _print_report(
        settings,
        chosen=chosen,
        figures=figures,
        import_spreads=import_spreads,
        layer_bytes=layer_bytes,
        verdicts=verdicts,
        notes=notes,
        meta=meta,
    )
    print(f"\nWrote {args.out / 'results.json'}, {args.out / 'results.png'} and latency.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
