"""Real worker processes for tests: started on the test database, watched
until something holds."""

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_worker(env: dict, *args: str) -> subprocess.Popen:
    """``manage.py run_database_tasks *args`` in a process of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "django", "run_database_tasks", *args],
        cwd=ROOT,
        env=env | {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, worker: subprocess.Popen, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail if the worker exits first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline or worker.poll() is not None:
            worker.kill()
            raise AssertionError(f"worker did not get there: {worker.communicate()}")
        time.sleep(0.05)
