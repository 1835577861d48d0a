"""Helpers shared by the benchmark scripts, importing nothing but the standard
library: ``peers.py`` copies this module into each queue's throwaway project,
where neither this checkout nor its settings can be imported."""

import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of an already sorted sequence."""
    if not ordered:
        raise ValueError("No values to take a percentile of.")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99, max and mean of latencies in milliseconds, rounded."""
    ordered = sorted(latencies_ms)
    return {
        "p50_ms": round(percentile(ordered, 0.50), 1),
        "p95_ms": round(percentile(ordered, 0.95), 1),
        "p99_ms": round(percentile(ordered, 0.99), 1),
        "max_ms": round(ordered[-1], 1),
        "mean_ms": round(statistics.fmean(ordered), 1),
    }


def timed_run(
    command: Sequence[str], cwd: Path | str, env: Mapping[str, str]
) -> tuple[float, str]:
    """Seconds ``command`` took to exit, and what it wrote (stdout then
    stderr); all of it in the error if it failed, since a worker that crashed
    would otherwise look fast."""
    started = time.perf_counter()
    done = subprocess.run(
        list(command), cwd=cwd, env=dict(env), capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    output = done.stdout + done.stderr
    if done.returncode:
        raise RuntimeError(
            f"{' '.join(command)} exited with status {done.returncode}:\n"
            f"{output[-4000:]}"
        )
    return elapsed, output
