"""Every script in benchmarks/ runs: a smoke run at a tiny size (numbers not asserted:
timed tests on a shared machine would be noise), and a usage message. The side-by-side
halves need alberta-framework (another package, Python >= 3.13, not a dependency);
where it is not installed they are skipped, or the script times alberta_eqx alone."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))
HAS_FRAMEWORK = importlib.util.find_spec("alberta_framework") is not None
# Scripts that time another package beside ours, and nothing without it.
NEEDS = {"swifttd_bench.py": "swifttd"}
NEEDS.update({"bsuite_run.py": "bsuite", "forager.py": "foragax"})
NEEDS["csuite_catch_check.py"] = "csuite"  # its source on PYTHONPATH (the docstring)
NO_FRAMEWORK = "alberta-framework (the side-by-side half) is not installed"


def _run(*args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def _tiny(name: str, tmp: pathlib.Path) -> list[str]:
    """The script's arguments for a smoke run writing only into `tmp`."""
    spec = tmp / "sweep.toml"
    spec.write_text(
        "num_steps = 200\nseeds = 2\nmetrics_window = 100\n[stream]\n"
        'type = "DriftingTargetStream"\n'
        'feature_dim = 3\n[learner]\ntype = "LinearLearner"\noptimizer = "IDBD"\n'
        "[grid]\ninitial_step_size = [0.01, 0.02]\n"
    )
    results = tmp / "results.json"
    results.write_text(
        json.dumps({"rows": [{"case": "idbd d=10", "steps_per_s": 2e6, "first_call_s": 1.5}]})
    )
    return {
        "csuite_catch_check.py": ["--steps", "50"],
        "bench.py": ["--quick", "--dims", "3", "--batched-only", "--no-floor",
                     "--out", str(tmp / "bench.json")],
        "horde_bench.py": ["--demons", "4", "--steps", "100", "--rounds", "1",
                           "--out", str(tmp / "horde.json")],
        "mlp_layout.py": ["--rounds", "1", "--steps", "10", "--out", str(tmp / "layout.json")],
        "tile_hash_bench.py": ["--dims", "2", "--steps", "10", "--repeats", "1"],
        "mlp_online.py": ["--steps", "4", "--seeds", "2", "--features", "2", "--hidden", "4",
                          "--teacher-hidden", "2", "--initial-step-sizes", "0.01",
                          "--out", str(tmp / "mlp.json")],
        "multihead_bench.py": ["--rounds", "1", "--events", "20"],
        "obgd_vs_017.py": [str(tmp / "obgd.json")],
        "plasticity_bench.py": ["--rounds", "1", "--steps", "10",
                                "--out", str(tmp / "plasticity.json")],
        "plasticity_label_permuted.py": ["--steps", "200", "--interval", "100"],
        "plasticity_methods.py": ["--seeds", "2", "--steps", "10", "--rounds", "1",
                                  "--hidden", "4", "--out", str(tmp / "methods.json")],
        "swift_sarsa_operant.py": ["--signals", "20", "--steps", "200", "--seeds", "1",
                                   "--step-sizes", "0.01"],
        "streamx_minatar_speed.py": ["--seeds", "1", "--segment-steps", "20", "--repeats", "1",
                                     "--out", str(tmp / "streamx.txt")],
        "swifttd_bench.py": ["--quick", "--repeats", "1", "--out", str(tmp / "swifttd.json")],
        "online_bench.py": ["--events", "20", "--rounds", "1", "--durable-events", "10",
                            "--out", str(tmp / "online.json")],
        "soak.py": ["--steps", "20", "--segment", "10", "--window", "5", "--feature-dim", "2",
                    "--out", str(tmp / "soak.json")],
        "sweep.py": [str(spec), "--out", str(tmp / "store")],
        "table.py": [str(results)],
        "tracking_bench.py": ["--steps", "1000", "--rounds", "1"],
        "bsuite_run.py": ["--results", str(tmp / "bsuite"), "--episodes", "12", "--ids", "1",
                          "--experiments", "catch", "bandit", "--segment", "50",
                          "--agents", "sarsa_lambda"],
        "forager.py": ["--steps", "40", "--seeds", "1", "--segment", "20",
                       "--agents", "stream_q", "--centering", "none", "value"],
    }[name]  # fmt: skip


# Scripts that are side by side throughout (nothing to time without the other package).
SIDE_BY_SIDE_ONLY = {"obgd_vs_017.py"}


def test_every_script_has_a_smoke_run(tmp_path):
    for name in SCRIPTS:
        assert _tiny(name, tmp_path) is not None, name


# Runs scripts as `python SCRIPT ARGS...` would (as __main__, its folder first on the
# path, in its own working directory), one after another in one interpreter: one start
# of JAX for all of them instead of one each. Reads the plan
# [[script, [args...], working directory], ...] from the JSON file named by its first
# argument and writes {script: [exit code, stdout, stderr]} to the second.
_RUN_EACH = """
import contextlib, io, json, os, runpy, sys, traceback
plan, path = sys.argv[1:]
out = {}
for script, args, cwd in json.load(open(plan)):
    stdout, stderr, code = io.StringIO(), io.StringIO(), 0
    sys.argv, sys.path[0] = [script, *args], os.path.dirname(script)
    os.chdir(cwd)
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as exit_:
            code = exit_.code or 0
        except BaseException:
            code = traceback.format_exc()
    out[os.path.basename(script)] = [code, stdout.getvalue(), stderr.getvalue()]
with open(path, "w") as f:
    json.dump(out, f)
"""


def _run_each(tmp: pathlib.Path, plan: list) -> dict:
    """`_RUN_EACH` over `plan`: {script name: [exit code, stdout, stderr]}."""
    (tmp / "plan.json").write_text(json.dumps(plan))
    result = _run("-c", _RUN_EACH, str(tmp / "plan.json"), str(tmp / "out.json"), cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((tmp / "out.json").read_text())


def _skip_reason(name: str) -> str | None:
    if name in SIDE_BY_SIDE_ONLY and not HAS_FRAMEWORK:
        return NO_FRAMEWORK
    if name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None:
        return f"{NEEDS[name]} (the side-by-side package) is not installed"
    return None


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Each runnable script's smoke run at its tiny size, each writing only into a
    temporary folder of its own: [exit code, stdout, stderr] by name."""
    tmp = tmp_path_factory.mktemp("smoke")
    plan = []
    for name in SCRIPTS:
        if _skip_reason(name) is None:
            folder = tmp / name.removesuffix(".py")
            folder.mkdir()
            plan.append([str(ROOT / "benchmarks" / name), _tiny(name, folder), str(folder)])
    return _run_each(tmp, plan)


@pytest.mark.slow
@pytest.mark.parametrize("name", SCRIPTS)
def test_a_smoke_run_at_a_tiny_size(name, smoke_runs):
    if reason := _skip_reason(name):
        pytest.skip(reason)
    code, stdout, stderr = smoke_runs[name]
    # soak.py exits 1 when a pair became non-finite, as pairs without a normalizer on
    # the scaled streams do (benchmarks/soak-10M.txt): its finding, not a failure to run
    ok = (0, 1) if name == "soak.py" else (0,)
    assert code in ok, (code, stderr[-3000:])
    assert stdout.strip(), "prints its numbers"
    if name == "soak.py":
        assert "largest memory growth" in stdout


@pytest.fixture(scope="module")
def usages(tmp_path_factory):
    """Each script's `--help`: [exit code, stdout, stderr] by name."""
    tmp = tmp_path_factory.mktemp("usage")
    scripts = [name for name in SCRIPTS if HAS_FRAMEWORK or name not in SIDE_BY_SIDE_ONLY]
    return _run_each(tmp, [[str(ROOT / "benchmarks" / n), ["--help"], str(tmp)] for n in scripts])


@pytest.mark.slow
@pytest.mark.parametrize("name", SCRIPTS)
def test_a_usage_message(name, usages):
    if name in SIDE_BY_SIDE_ONLY and not HAS_FRAMEWORK:
        pytest.skip(NO_FRAMEWORK)
    code, stdout, stderr = usages[name]
    assert code == 0 and stdout.startswith("usage:"), (code, stderr)


def test_table_without_its_argument_prints_its_usage(tmp_path):
    """It died with an IndexError; now argparse says what it needs."""
    result = _run(str(ROOT / "benchmarks" / "table.py"), cwd=tmp_path)
    assert result.returncode == 2
    assert "usage:" in result.stderr and "results" in result.stderr, result.stderr
