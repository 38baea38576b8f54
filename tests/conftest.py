import os
import pathlib
import sys

import pytest

# The suite compiles about 6,000 small programs and runs most of them for a few steps,
# so it compiles them as cheaply as XLA allows, all four settings read when JAX's CPU
# backend starts (set here, at import: also in the xdist workers and in the
# subprocesses the tests start, which inherit the environment):
# - JAX_DISABLE_MOST_OPTIMIZATIONS: XLA's optimisation passes cost more than they save
#   (tests/control: 114 s to 92 s of user CPU);
# - `--xla_cpu_use_fusion_emitters=false`: XLA's legacy CPU code generator, cheaper to
#   run than its MLIR fusion emitters (tests/nonlinear's quick tests: 38-40 s of user
#   CPU to 23 s; the plasticity and MinAtar replications' tests 63 s to 48 s);
# - `--xla_cpu_max_isa=AVX`: no fused multiply-add, which the legacy generator
#   contracts differently in different programs, so that a chunked run and a
#   step-by-step run (or a resumed one) differ in the last bit; the tests that hold
#   them bit-identical test the library, not the contraction. Same cost.
# - `--xla_cpu_parallel_codegen_split_count=1`: each program's LLVM module compiled
#   whole, not split into parts for a thread pool, which for programs this small costs
#   more than it saves (tests/td, tests/nonlinear and the stream networks' tests, one
#   process, four alternating pairs: 4-11% less user CPU).
# `JAX_DISABLE_MOST_OPTIMIZATIONS=0 pytest` compiles as users do (optimised, the
# default code generator, the machine's full instruction set).
_FAST_COMPILE = os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1") != "0"
if _FAST_COMPILE and "--xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):
    flags = (
        "--xla_cpu_use_fusion_emitters=false --xla_cpu_max_isa=AVX"
        " --xla_cpu_parallel_codegen_split_count=1"
    )
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
if "jax" in sys.modules:  # imported already (by a plugin): tell its config too
    sys.modules["jax"].config.update(
        "jax_disable_most_optimizations", os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] != "0"
    )


@pytest.fixture
def x64():
    """Float64 for one test: the comparisons with the float64 transcriptions."""
    import jax

    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def x64_module():
    """Float64 for a whole module (`pytestmark = pytest.mark.usefixtures("x64_module")`)."""
    import jax

    with jax.enable_x64(True):
        yield


@pytest.fixture(autouse=True)
def _no_persistent_compilation_cache(monkeypatch):
    """The command line's `main`, called in the test process, would turn on JAX's
    persistent compilation cache (in the user's home) for every later test: one of
    those writes crashed the process (a segfault inside JAX's cache writer). The
    cache is tested in subprocesses (tests/sweeps/test_sweep.py)."""
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


@pytest.fixture(autouse=True)
def _optimized(request):
    """A test marked `optimized` spends its time running a few long programs, not
    compiling many: its programs are compiled with XLA's optimisations (for the
    test alone; a program compiled earlier keeps its settings). Per test, in
    seconds of CPU (`pytest -n 0`, unoptimised then optimised): Stream AC on CartPole
    27 -> 19, the 19-state random walk 21 -> 13, Mountain Car 13 -> 4 and 10 -> 3,
    Swift-Sarsa 16 -> 9. Most tests compile more than they run: the MinAtar cases
    and the plasticity replication took more CPU optimised."""
    if not (_FAST_COMPILE and request.node.get_closest_marker("optimized")):
        yield
        return
    import jax

    jax.config.update("jax_disable_most_optimizations", False)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", True)


# Tests that share nothing compiled with their file's other tests (each runs its own
# page from scratch), so that the workers may split them: a unit each.
_INDEPENDENT = ("tests/project/test_doc_blocks.py::test_code_blocks_run[",)


def _unit(nodeid: str) -> str:
    """A test's work unit for the xdist workers: its file (a file's tests share compiled
    programs and module fixtures), or for an `_INDEPENDENT` test the test alone."""
    return nodeid if nodeid.startswith(_INDEPENDENT) else nodeid.split("::")[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` with `_unit` for a file: the long doc pages would otherwise
    run one after another in one worker while the other idles."""
    from xdist.scheduler import LoadFileScheduling

    class _Units(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    return _Units(config, log) if config.getvalue("dist") == "loadfile" else None


def pytest_collection_modifyitems(items):
    """The work units longest first (pyproject's `--no-loadscope-reorder` keeps this
    order), so that no long unit starts while the other worker has nothing left to
    do. The slow tests are the long ones: a unit's expected length is its slow tests
    (ten times) plus its others."""
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(_unit(item.nodeid), []).append(item)

    def length(unit: str) -> int:
        return sum(10 if test.get_closest_marker("slow") else 1 for test in units[unit])

    items[:] = [item for unit in sorted(units, key=length, reverse=True) for item in units[unit]]


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
