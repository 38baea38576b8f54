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
    import alberta_eqx.sweeps.cache as cache

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


_ROOT = pathlib.Path(__file__).resolve().parents[1]
_TREE_BEFORE = pytest.StashKey[set[str] | None]()


def changed_paths(root: pathlib.Path) -> set[str] | None:
    """The paths `git status` reports as untracked, modified or deleted under `root`
    (every untracked file, not just its folder; ignored files left out), or None
    where `root` is not in a git checkout or git is missing."""
    import subprocess

    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all", "-z"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    # -z: "XY path\0", a rename adds its source as the next entry; the status letters
    # are part of each entry, so a path that changes from modified to deleted counts
    return {entry for entry in status.split("\0") if entry}


def pytest_sessionstart(session):
    """Note the working tree's changes before the suite (the controller only: xdist
    workers carry `workerinput`), so that the finish can tell the suite's own."""
    if not hasattr(session.config, "workerinput"):
        session.config.stash[_TREE_BEFORE] = changed_paths(_ROOT)


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when the suite left files in the working tree (tests and doc
    examples write only into temporary folders); a developer's own uncommitted edits,
    there before the run, do not count."""
    before = session.config.stash.get(_TREE_BEFORE, None)
    if before is None:
        return
    after = changed_paths(_ROOT)
    new = sorted((after or set()) - before)
    if new:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "the test suite changed the working tree: " + ", ".join(new)
        if reporter is not None:
            reporter.write_sep("!", message, red=True, bold=True)
        else:
            print(message, file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
