"""The run's outputs: a printed table, the raw figures as JSON, and one PNG picture."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.peers import LABELS, OUTAGE_ONLY
from bench.targets import Verdict

_ROWS: tuple[tuple[str, str, str], ...] = (
    # (row label, metric, format)
    ("caller p50 (us)", "caller_p50_us", "{:.2f}"),
    ("caller p99 (us)", "caller_p99_us", "{:.2f}"),
    ("caller p99.9 (us)", "caller_p999_us", "{:.2f}"),
    ("caller max (us)", "caller_max_us", "{:.0f}"),
    ("CPU per event (us)", "cpu_per_event_us", "{:.2f}"),
    ("events/s, the calls above + flush()", "throughput_eps", "{:,.0f}"),
    ("events/s, sustained (one process)", "sustained_eps", "{:,.0f}"),
    ("PutLogEvents calls", "put_calls", "{:.0f}"),
    ("  minimum possible", "put_calls_min", "{:.0f}"),
    ("flush() after last call (s)", "flush_s", "{:.3f}"),
    ("all visible, with flush() (s)", "visible_s", "{:.3f}"),
    ("all visible, no flush() (s)*", "visible_unflushed_s", "{:.2f}"),
    ("outage: peak RSS rise (MiB)", "outage_peak_delta_mib", "{:.1f}"),
    ("  of it in the 2nd half (MiB)", "outage_second_half_mib", "{:.1f}"),
    ("outage: records logged", "outage_records", "{:.0f}"),
)
_RATIO_ROWS: tuple[tuple[str, str], ...] = (
    ("p50 / floor p50", "p50_x_floor"),
    ("p99 / floor p99", "p99_x_floor"),
    ("p99.9 / floor p99.9", "p999_x_floor"),
    ("CPU / floor CPU", "cpu_x_floor"),
    ("p50 / floor (time once a second)", "p50_x_floor_once"),
    ("p99 / floor (time once a second)", "p99_x_floor_once"),
    ("CPU / floor (time once a second)", "cpu_x_floor_once"),
    ("CPU / ours (defaults) CPU", "cpu_x_ours"),
    ("events/s / watchtower", "throughput_x_watchtower"),
    ("sustained events/s / watchtower", "sustained_x_watchtower"),
    ("p50 / watchtower p50", "p50_x_watchtower"),
    ("p99 / watchtower p99", "p99_x_watchtower"),
    ("CPU / watchtower CPU", "cpu_x_watchtower"),
    ("outage RSS / watchtower", "outage_mem_x_watchtower"),
)


def _fmt(value: float | None, pattern: str) -> str:
    return "n/a" if value is None else pattern.format(value)


def _span(spread: dict[str, Any], pattern: str) -> str:
    if spread["min"] is None:
        return "n/a"
    return f"{pattern.format(spread['min'])}-{pattern.format(spread['max'])}"


def _grid(header: Sequence[str], rows: list[list[str]]) -> str:
    table = [list(header), *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def table(summary: dict[str, Any], calls: dict[str, int], *, spans: bool = False) -> str:
    """Return one column per contender, one row per figure: medians, or with ``spans`` ranges.

    Contenders are columns so that the table stays readable in a terminal and in a note.
    """
    contenders = list(summary)
    header = ["median" if not spans else "min-max", *contenders]
    rows = [["timed calls per repetition", *(str(calls.get(c, "-")) for c in contenders)]]
    for label, metric, pattern in _ROWS:
        spreads = [summary[c]["metrics"][metric] for c in contenders]
        cells = [_span(s, pattern) if spans else _fmt(s["median"], pattern) for s in spreads]
        rows.append([label, *cells])
    for label, name in _RATIO_ROWS:
        spreads = [summary[c]["ratios"][name] for c in contenders]
        cells = [_span(s, "{:.2f}") if spans else _fmt(s["median"], "{:.2f}x") for s in spreads]
        rows.append([label, *cells])
    return _grid(header, rows)


def legend() -> str:
    """Name each column's contender in full."""
    return "; ".join(f"{name} = {label}" for name, label in LABELS.items())


def verdicts_text(verdicts: list[Verdict]) -> str:
    """Return one line per target: MET, MISSED or n/a, with the figure and how it was taken."""
    lines = []
    for verdict in verdicts:
        state = {True: "MET   ", False: "MISSED", None: "n/a   "}[verdict.met]
        measured = _fmt(verdict.measured, "{:.2f}")
        lines.append(
            f"[{state}] {verdict.target} -- {verdict.contender}: {measured} "
            f"(limit {verdict.limit:g}; {verdict.how})"
        )
    return "\n".join(lines)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write the raw figures, the summary and the verdicts as one JSON document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def draw(path: Path, summary: dict[str, Any], title: str) -> None:
    """Draw every headline figure per contender, medians with min-max ranges: the caller's cost
    (p50, p99, p99.9 and max, log scale), CPU per event (log scale), delivered events per second,
    and the peak memory rise during an outage."""
    import matplotlib

    matplotlib.use("Agg")  # no display here or on CI
    import matplotlib.pyplot as plt

    def having(metric: str) -> list[str]:
        return [c for c in summary if summary[c]["metrics"][metric]["median"] is not None]

    delivering = [c for c in having("caller_p50_us") if c not in OUTAGE_ONLY]
    figure, grid = plt.subplots(2, 2, figsize=(13, 9.5), layout="constrained")
    (cost, cpu), (rate, memory) = grid

    def bars(axes: Any, shown: list[str], metric: str, offset: float, width: float) -> None:
        spreads = [summary[c]["metrics"][metric] for c in shown]
        medians = [s["median"] for s in spreads]
        below = [s["median"] - s["min"] for s in spreads]
        above = [s["max"] - s["median"] for s in spreads]
        drawn = axes.bar(
            [p + offset for p in range(len(shown))],
            medians,
            width,
            yerr=[below, above],
            capsize=3,
            label=metric.removeprefix("caller_").removesuffix("_us").replace("p999", "p99.9"),
        )
        texts = [f"{m:,.0f}" if m >= 100 else f"{m:.3g}" for m in medians]
        axes.bar_label(drawn, labels=texts, fontsize=6, padding=2)
        axes.set_xticks(
            range(len(shown)), [LABELS[c] for c in shown], rotation=25, ha="right", fontsize=8
        )
        axes.grid(axis="y", which="both", alpha=0.3)

    for index, metric in enumerate(
        ("caller_p50_us", "caller_p99_us", "caller_p999_us", "caller_max_us")
    ):
        bars(cost, delivering, metric, -0.3 + 0.2 * index, 0.2)
    cost.set_title("caller cost of one logger.info call (us)")
    cost.legend(fontsize=8)
    bars(cpu, delivering, "cpu_per_event_us", 0.0, 0.6)
    cpu.set_title("process CPU per event, first call to completed flush() (us)")
    for axes in (cost, cpu):
        axes.set_yscale("log")
    bars(rate, having("sustained_eps"), "sustained_eps", 0.0, 0.6)
    rate.set_title("sustained delivered events per second, one process (then flush())")
    bars(memory, having("outage_peak_delta_mib"), "outage_peak_delta_mib", 0.0, 0.6)
    memory.set_title("outage: peak RSS rise while records wait (MiB)")
    figure.suptitle(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def fmt_spread(spread: dict[str, Any], pattern: str) -> str:
    """Return ``median [min-max]``, or n/a."""
    if spread["median"] is None:
        return "n/a"
    return f"{pattern.format(spread['median'])} [{_span(spread, pattern)}]"


def percentile_medians(runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Return, per delivering contender, the median over repetitions of each caller percentile."""
    by_contender: dict[str, list[list[float]]] = {}
    for run in runs:
        if run.get("available") and run["mode"] == "deliver" and "caller_percentiles_us" in run:
            by_contender.setdefault(run["contender"], []).append(run["caller_percentiles_us"])
    return {
        contender: [statistics.median(column) for column in zip(*rows, strict=True)]
        for contender, rows in by_contender.items()
    }


def draw_latency(path: Path, runs: list[dict[str, Any]], title: str) -> None:
    """Draw each contender's caller latency percentiles (p50 to max), log scale."""
    import matplotlib

    matplotlib.use("Agg")  # no display here or on CI
    import matplotlib.pyplot as plt

    from bench.worker import PERCENTILES

    figure, axes = plt.subplots(figsize=(9, 5.2), layout="constrained")
    positions = list(range(len(PERCENTILES)))
    for contender, values in percentile_medians(runs).items():
        axes.plot(positions, values, marker="o", label=LABELS[contender])
    axes.set_xticks(positions, [f"p{q:g}" if q < 100 else "max" for q in PERCENTILES])
    axes.set_yscale("log")
    axes.set_ylabel("caller latency of one logger.info call (us)")
    axes.grid(which="both", alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
