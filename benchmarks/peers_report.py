"""The report of ``benchmarks/peers.py``: ratios, Markdown tables and a chart,
from the figures alone, so that a saved run can be reported again."""

from pathlib import Path
from typing import Any

DATABASE_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL", "mariadb": "MariaDB"}

# Key, label (``{rows}``: the history size), and whether lower is better.
ROWS: list[tuple[str, str, bool]] = [
    ("enqueue_per_s", "enqueue(), one by one, tasks/s", False),
    ("bulk_enqueue_per_s", "bulk enqueue, tasks/s", False),
    ("process_per_s", "no-op tasks, one worker, tasks/s", False),
    ("processes_per_s", "no-op tasks, `--processes 2`, tasks/s", False),
    ("io_per_s", "50 ms sync tasks, `--concurrency 32`, tasks/s", False),
    ("async_io_per_s", "50 ms async tasks, `--concurrency 100`, tasks/s", False),
    ("latency_p50_ms", "enqueue-to-start latency, idle worker, p50 ms", True),
    ("latency_p95_ms", "enqueue-to-start latency, p95 ms", True),
    ("latency_p99_ms", "enqueue-to-start latency, p99 ms", True),
    (
        "history_per_s",
        "no-op tasks, {rows:,} finished rows in the table, tasks/s",
        False,
    ),
    ("history_ratio", "rate with {rows:,} finished rows / with none", False),
]

# The rates the chart draws, with their short labels.
CHART = [
    ("enqueue_per_s", "enqueue"),
    ("bulk_enqueue_per_s", "bulk\nenqueue"),
    ("process_per_s", "one\nworker"),
    ("processes_per_s", "--processes\n2"),
    ("history_per_s", "one worker,\n{rows} rows"),
]


def ratios(results: dict[str, dict[str, dict]], ours: str) -> dict[str, dict]:
    """Per database and peer, our figure over the peer's for every measure
    both have (null otherwise)."""
    report: dict[str, dict] = {}
    for database, queues in results.items():
        mine = queues.get(ours)
        if mine is None:
            continue
        report[database] = {}
        for name, theirs in queues.items():
            if name == ours:
                continue
            report[database][f"vs {name}"] = {
                key: _ratio(mine.get(key), theirs.get(key)) for key, _, _ in ROWS
            }
    return report


def _ratio(mine: Any, theirs: Any) -> float | None:
    numbers = (int, float)
    if isinstance(mine, numbers) and isinstance(theirs, numbers) and theirs:
        ratio = mine / theirs
        # Two significant digits below 0.1: a latency can be 1/1000 of another.
        return round(ratio, 2) if ratio >= 0.1 else float(f"{ratio:.2g}")
    return None


def _figure(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value < 100:
        return f"{value:,.2f}" if value < 10 else f"{value:,.1f}"
    return f"{value:,.0f}"


def markdown(report: dict[str, Any]) -> str:
    """One table per database: the queues' figures, each peer's followed by
    this checkout's figure over it."""
    rows = report["sizes"]["history_rows"]
    lines: list[str] = []
    for database, queues in report["results"].items():
        names = list(queues)
        ours, peers = names[0], names[1:]
        lines += [f"**{DATABASE_NAMES.get(database, database)}**", ""]
        lines.append("| | " + " | ".join(names) + " |")
        lines.append("| --- |" + " ---: |" * len(names))
        versus = report["ratios"].get(database, {})
        for key, label, _ in ROWS:
            cells = [_figure(queues[ours].get(key))]
            for peer in peers:
                cell = _figure(queues[peer].get(key))
                ratio = versus.get(f"vs {peer}", {}).get(key)
                cells.append(cell if ratio is None else f"{cell} ({ratio:g}x)")
            if set(cells) != {"—"}:
                lines.append(
                    f"| {label.format(rows=rows)} | " + " | ".join(cells) + " |"
                )
        for name, figures in queues.items():
            for error in figures.get("errors", []):
                last = error.strip().splitlines()[-1]
                lines.append(f"\n{name} failed: `{last}`")
            for warning in figures.get("warnings", []):
                lines.append(f"\n{name}: {warning}")
        lines.append("")
    lines.append(
        "(n x): this checkout's figure over the peer's; for latency, lower is "
        "better. —: the queue has no such feature."
    )
    sizes = report["sizes"]
    if "peer_tasks" in sizes:
        lines.append(
            f"Workers drain {sizes['tasks']:,} tasks of this checkout and "
            f"{sizes['peer_tasks']:,} of each peer; rates exclude start-up."
        )
    return "\n".join(lines)


def require_matplotlib() -> None:
    """Checked before a run of many minutes rather than after it."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "--chart needs matplotlib: pip install -e '.[bench]'"
        ) from None
    matplotlib.use("Agg")


def chart(report: dict[str, Any], path: Path) -> None:
    """Grouped bars of the rates, one panel per database on one log scale;
    a measure a queue lacks is marked with a dash."""
    require_matplotlib()
    import matplotlib.pyplot as plt

    results = report["results"]
    rows = report["sizes"]["history_rows"]
    short_rows = f"{rows / 1e6:g}M" if rows >= 1e6 else f"{rows:,}"
    keys = [key for key, _ in CHART]
    rates = [
        value
        for queues in results.values()
        for figures in queues.values()
        for key in keys
        if isinstance(value := figures.get(key), int | float)
    ]
    figure, axes = plt.subplots(
        1, len(results), figsize=(5 * len(results), 4.8), squeeze=False, sharey=True
    )
    for axis, (database, queues) in zip(axes[0], results.items(), strict=True):
        width = 0.8 / max(len(queues), 1)
        for index, (name, figures) in enumerate(queues.items()):
            shift = (index - (len(queues) - 1) / 2) * width
            values = [figures.get(key) or 0 for key in keys]
            bars = axis.bar([x + shift for x in range(len(keys))], values, width)
            bars.set_label(name)
            for bar, value in zip(bars, values, strict=True):
                axis.annotate(
                    _figure(value) if value else "—",
                    (bar.get_x() + bar.get_width() / 2, max(value, 10)),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    rotation=90 if value else 0,
                )
        axis.set_yscale("log")
        axis.set_ylim(10, max([100, *rates]) * 4)
        axis.set_title(DATABASE_NAMES.get(database, database))
        axis.set_xticks(range(len(keys)))
        axis.set_xticklabels(
            [label.format(rows=short_rows) for _, label in CHART], fontsize=8
        )
        axis.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("tasks per second (log scale)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9)
    figure.suptitle("Tasks per second, higher is better", fontsize=11)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
