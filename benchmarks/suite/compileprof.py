"""A pytest plugin: XLA compilations, their seconds and the tests' seconds per test file.

    PYTHONPATH=$PWD:$PWD/benchmarks/suite pytest -p compileprof -m "not slow" -q

Each process (the controller and every xdist worker) writes
`$COMPILEPROF_DIR/compile_<worker>.json` (default: the system's temporary folder):
`{file: [compilations, compile seconds, test seconds]}`; sum the workers' files. The
count is exact; the seconds depend on the machine's load. It listens to JAX's
`/jax/core/compile/backend_compile_duration` event (`jax.monitoring`).
"""

import collections
import json
import os
import tempfile
import time

import jax.monitoring
import pytest

_stats: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
_current = ["<collection>"]


def _listener(event: str, duration: float, **kwargs) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        stats = _stats[_current[0]]
        stats[0] += 1
        stats[1] += duration


jax.monitoring.register_event_duration_secs_listener(_listener)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _current[0] = item.nodeid.split("::")[0]
    start = time.perf_counter()
    yield
    _stats[_current[0]][2] += time.perf_counter() - start


def pytest_sessionfinish(session):
    folder = os.environ.get("COMPILEPROF_DIR", tempfile.gettempdir())
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(os.path.join(folder, f"compile_{worker}.json"), "w") as f:
        json.dump(dict(_stats), f, indent=1)
