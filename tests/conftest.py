import pathlib
import sys

import pytest

# `reference.py` (the float64 transcriptions of the papers) sits beside the tests.
sys.path.insert(0, str(pathlib.Path(__file__).parent))


@pytest.fixture(autouse=True)
def _no_persistent_compilation_cache(monkeypatch):
    """The command line's `main`, called in the test process, would turn on JAX's
    persistent compilation cache (in the user's home) for every later test: one of
    those writes crashed the process (a segfault inside JAX's cache writer). The
    cache is tested in subprocesses (tests/test_sweep.py)."""
    import alberta_eqx.experiments.cache as cache

    monkeypatch.setattr(cache, "enable_compilation_cache", lambda path=None: None)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module: one process compiles
    thousands over the suite, and on CPU each keeps its code mapped, which after
    about 700 tests ended the process inside XLA's compiler (an abort, then a
    segfault, in two CI-like runs)."""
    yield
    import jax

    jax.clear_caches()
