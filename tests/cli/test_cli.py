"""The command line, as a user runs it: output files and their record, your own
streams and learners by import path, comparisons and grids, one-line errors."""

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pandas as pd
import pytest

import alberta_eqx as ae
from alberta_eqx import cli
from alberta_eqx.cli import _learners, main
from alberta_eqx.cli._run import check_window, run_spec
from alberta_eqx.experiments import run_experiment


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "alberta_eqx", *args], capture_output=True, text=True, cwd=cwd
    )


def _run(tmp_path, *args):
    main(["run", "--out", str(tmp_path), "--no-progress", *args])
    with open(tmp_path / "run.json") as f:
        return json.load(f)


@pytest.mark.slow
def test_run_writes_metrics_plot_and_its_record(tmp_path, capsys):
    record = _run(
        tmp_path,
        *("--stream", "drifting-target", "--optimizer", "autostep", "--normalizer", "ema"),
        *("--steps", "2000", "--seeds", "3", "--window", "100"),
    )
    data = np.load(tmp_path / "metrics.npz")
    assert data["autostep/squared_error"].shape == (3, 20)
    frame = pd.read_csv(tmp_path / "metrics.csv")
    assert list(frame.columns[:3]) == ["config", "seed", "step"]
    assert len(frame) == 60
    last = frame[(frame.seed == 2) & (frame.step == 2000)]
    assert float(last.squared_error.iloc[0]) == pytest.approx(
        float(data["autostep/squared_error"][2, -1])
    )
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "final mean squared error over 3 seeds: the mean over the last 200 of 2,000" in out
    # the record holds every setting, the versions and the command line
    assert record["status"] == "complete"
    settings = record["settings"]
    assert settings["stream"] == "drifting-target" and settings["steps"] == 2000
    assert settings["learners"][0]["optimizer"] == "autostep"
    assert settings["learners"][0]["normalizer"] == "ema"
    assert settings["stream_args"] == {"feature_dim": 10}
    assert record["versions"]["jax"] == jax.__version__
    assert sorted(record["outputs"]) == sorted(
        ["learning_curve.png", "metrics.csv", "metrics.npz", "summary.csv"]
    )
    # and show prints it back
    main(["show", str(tmp_path)])
    shown = capsys.readouterr().out
    assert "status: complete" in shown and '"autostep"' in shown and "jax" in shown


USER_MODULE = """
import alberta_eqx as ae


class MyStream(ae.AbstractStream):
    # a drifting target of its own arguments: it wraps the concrete stream (which
    # is final) rather than subclassing it

    inner: ae.DriftingTargetStream

    def __init__(self, width=3, drift=0.01):
        self.inner = ae.DriftingTargetStream(width, drift_rate=drift)

    @property
    def feature_dim(self):
        return self.inner.feature_dim

    def init(self, key):
        return self.inner.init(key)

    def chunk(self, state, t0, num_steps):
        return self.inner.chunk(state, t0, num_steps)


def make_learner(feature_dim, optimizer, use_bias=True):
    return ae.LinearLearner(feature_dim, optimizer, use_bias=use_bias)


def bad_stream():
    return "not a stream"
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "my_research.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(folder))
    return "my_research"


@pytest.mark.slow
def test_run_your_own_stream_and_learner_by_import_path(tmp_path, user_module):
    out = tmp_path / "out"
    _run(
        out,
        *("--stream", f"{user_module}:MyStream", "--stream-arg", "drift=0.02"),
        *("--learner", f"{user_module}:make_learner", "--learner-arg", "use_bias=false"),
        *("--optimizer", "alberta_eqx:LMS", "--optimizer-arg", "step_size=0.05"),
        *("--steps", "1000", "--seeds", "2", "--window", "100", "--no-plot"),
    )
    data = np.load(out / "metrics.npz")
    # the same run through the Python API, seed for seed
    expected = run_experiment(
        {"LMS": ae.LinearLearner(3, ae.LMS(0.05), use_bias=False)},
        ae.DriftingTargetStream(3, drift_rate=0.02),
        1000,
        seeds=2,
        metrics_window=100,
    )
    np.testing.assert_array_equal(data["LMS/squared_error"], expected.curve("LMS"))


@pytest.mark.slow
def test_run_from_a_toml_file_compares_learners_on_paired_seeds(tmp_path, user_module):
    config = tmp_path / "run.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            stream = "{user_module}:MyStream"
            steps = 1000
            seeds = 3
            window = 500

            [stream_args]
            width = 4

            [[learners]]
            name = "LMS"
            optimizer = "lms"
            optimizer_args = {{ step_size = 0.02 }}

            [[learners]]
            name = "IDBD"
            optimizer = "idbd"
            """
        )
    )
    record = _run(tmp_path / "out", "--config", str(config), "--no-plot")
    assert [learner["name"] for learner in record["settings"]["learners"]] == ["LMS", "IDBD"]
    frame = pd.read_csv(tmp_path / "out" / "metrics.csv")
    assert sorted(frame.config.unique()) == ["IDBD", "LMS"]
    expected = run_experiment(
        {"LMS": ae.LinearLearner(4, ae.LMS(0.02)), "IDBD": ae.LinearLearner(4, ae.IDBD())},
        ae.DriftingTargetStream(4, drift_rate=0.01),
        1000,
        seeds=3,
        metrics_window=500,
    )
    data = np.load(tmp_path / "out" / "metrics.npz")
    for name in ("LMS", "IDBD"):
        np.testing.assert_array_equal(data[f"{name}/squared_error"], expected.curve(name))


def test_grid_makes_one_configuration_per_value(tmp_path, capsys):
    record = _run(
        tmp_path,
        *("--grid", "meta_step_size=0.001,0.01,0.1", "--steps", "500", "--seeds", "2"),
        *("--window", "100", "--no-plot"),
    )
    names = [learner["name"] for learner in record["settings"]["learners"]]
    assert names == [
        "idbd meta_step_size=0.001",
        "idbd meta_step_size=0.01",
        "idbd meta_step_size=0.1",
    ]
    thetas = [
        learner["optimizer_args"]["meta_step_size"] for learner in record["settings"]["learners"]
    ]
    assert thetas == [0.001, 0.01, 0.1]
    out = capsys.readouterr().out
    assert "paired comparisons" in out and "idbd meta_step_size=0.1" in out


@pytest.mark.slow
def test_td_and_mlp_learners(tmp_path):
    td = _run(
        tmp_path / "td",
        *("--stream", "random-walk-chain", "--stream-arg", "num_states=7"),
        *("--learner", "td-linear", "--optimizer", "idbd", "--learner-arg", "lambda_=0.5"),
        *("--steps", "1000", "--seeds", "2", "--window", "100", "--no-plot"),
    )
    assert td["status"] == "complete"
    assert np.load(tmp_path / "td" / "metrics.npz")["idbd/squared_error"].shape == (2, 10)
    mlp = _run(
        tmp_path / "mlp",
        *("--stream", "nonlinear-teacher", "--feature-dim", "4", "--learner", "mlp"),
        *("--optimizer", "autostep", "--learner-arg", "hidden_sizes=[8]"),
        *("--steps", "500", "--seeds", "2", "--window", "100", "--no-plot"),
    )
    assert mlp["settings"]["learners"][0]["learner_args"] == {"hidden_sizes": [8]}
    curve = np.load(tmp_path / "mlp" / "metrics.npz")["autostep/squared_error"]
    assert curve.shape == (2, 5) and np.all(np.isfinite(curve))
    # seeds give the MLP different initial weights (it takes the seed's learner key)
    assert not np.array_equal(curve[0], curve[1])


def test_every_seed_diverging_still_writes_a_plot_and_says_so(tmp_path, capsys):
    _run(
        tmp_path,
        *("--optimizer", "lms", "--step-size", "10", "--steps", "2000", "--seeds", "2"),
    )
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "diverged (seeds" in line]
    assert len(lines) == 1 and "every seed diverged" in lines[0], out
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000


def test_one_seed_prints_no_nan(tmp_path, capsys):
    _run(tmp_path, "--steps", "500", "--seeds", "1", "--window", "100", "--no-plot")
    out = capsys.readouterr().out
    assert not re.search(r"\bnan\b", out, re.IGNORECASE), out


def test_an_interrupted_run_never_looks_complete(tmp_path, monkeypatch, capsys):
    _run(tmp_path, "--steps", "500", "--seeds", "2", "--window", "100", "--no-plot")
    assert (tmp_path / "metrics.csv").exists()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("alberta_eqx.experiments.run_experiment", interrupted)
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--out", str(tmp_path), "--steps", "500", "--window", "100"])
    assert exit_.value.code == 130
    with open(tmp_path / "run.json") as f:
        assert json.load(f)["status"] == "running"
    # the earlier run's outputs are gone, not left to look like this run's
    assert not (tmp_path / "metrics.csv").exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    capsys.readouterr()
    main(["show", str(tmp_path)])
    assert "INCOMPLETE" in capsys.readouterr().out


def test_steps_accept_scientific_notation():
    args = cli.parser().parse_args(["run", "--steps", "1e5", "--seeds", "1_000"])
    assert args.steps == 100_000 and args.seeds == 1000


@pytest.mark.slow
def test_help_shows_defaults_and_the_default_command():
    text = cli.parser().format_help()
    assert "replicate sutton1992-exp1" in text and "(default: alberta-eqx-out)" in text
    run_help = _cli("run", "--help").stdout
    assert "(default: 10)" in run_help and "(default: idbd)" in run_help


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--stream", "no-such-stream"], "neither a built-in"),
        (["run", "--steps", "-5"], "must be > 0"),
        (["run", "--steps", "ten"], "expected a number"),
        (["run", "--steps", "1.5"], "whole number"),
        (["run", "--step-size", "inf"], "must be finite and > 0"),
        (["run", "--tau", "inf"], "must be finite and > 0"),
        (["run", "--seed", str(2**70)], "must be in [0, 2**32)"),
        (["run", "--steps", "200003"], "use --window 1 or 200,003, or --steps 200,000 or 200,100"),
        (
            ["run", "--stream", "sutton1992", "--feature-dim", "5"],
            "takes no argument 'feature_dim'",
        ),
        (["run", "--optimizer", "idbd", "--tau", "5"], "optimizer 'idbd' takes no tau"),
        (["run", "--seeds", "10000000", "--steps", "1e6"], "this run needs about"),
        (["run", "--stream", "nope.module:Thing"], "cannot import 'nope.module'"),
        (["run", "--grid", "nonsense=1,2"], "--grid nonsense"),
        (["replicate", "sutton1993"], "invalid choice"),
        (["replicate", "sutton1992-exp1", "--steps", "1000"], "nearest are 999 and 1,002"),
        (["show", "/nonexistent-folder"], "holds no run.json"),
        (["run", "--config", "/nonexistent.toml"], "No such file"),
    ],
)
def test_bad_options_give_one_line(args, message, tmp_path, capsys):
    if args[0] != "show":
        args = [*args, "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert lines[0].startswith("alberta-eqx: error: ")


@pytest.mark.slow
def test_errors_through_the_entry_point_have_no_traceback(tmp_path):
    for args in (["run", "--step-size", "inf"], ["run", "--steps", "200003"]):
        result = _cli(*args, "--out", str(tmp_path / "out"))
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_out_naming_a_file(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("")
    result = _cli("run", "--steps", "100", "--out", str(target))
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"alberta-eqx: error: --out {str(target)!r} is a file, not a folder"
    )


@pytest.mark.slow
def test_unwritable_output_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    target = locked / "out"
    if os.access(locked, os.W_OK):  # root ignores permissions: use a file as the parent
        target = tmp_path / "a-file"
        target.write_text("")
        target = target / "out"
    result = _cli("run", "--steps", "100", "--out", str(target))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write to --out" in lines[0], result.stderr


@pytest.mark.slow
def test_the_readmes_flagship_run_learns(tmp_path):
    """The README's `run` example (Autostep with an EMA normalizer on scale-drift),
    shortened: it learns, where the same run without the normalizer does not."""
    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    line = next(
        line
        for line in readme.splitlines()
        if line.startswith("alberta-eqx run --stream scale-drift")
    )
    args = line.split()[1:]
    args[args.index("--steps") + 1] = "50000"
    args[args.index("--seeds") + 1] = "2"
    args[args.index("--out") + 1] = str(tmp_path / "ema")
    main([*args, "--no-progress", "--no-plot"])
    ema = np.load(tmp_path / "ema" / "metrics.npz")["autostep/squared_error"]
    args[args.index("--normalizer") + 1] = "none"
    args[args.index("--out") + 1] = str(tmp_path / "none")
    main([*args, "--no-progress", "--no-plot"])
    raw = np.load(tmp_path / "none" / "metrics.npz")["autostep/squared_error"]
    last = slice(-50, None)  # the last 5,000 steps
    assert ema[:, last].mean() < 0.1
    assert ema[:, last].mean() < raw[:, last].mean() / 3


@pytest.mark.slow
def test_float64_runs_in_float64(tmp_path):
    result = _cli(
        *("run", "--float64", "--steps", "500", "--seeds", "2", "--window", "100"),
        *("--no-plot", "--no-progress", "--out", str(tmp_path)),
    )
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "metrics.npz")["idbd/squared_error"].dtype == np.float64
    with open(tmp_path / "run.json") as f:
        assert json.load(f)["settings"]["float64"] is True


@pytest.mark.slow
def test_replicate_quick_with_steps_and_its_record(tmp_path):
    result = _cli(
        *("replicate", "sutton1992-exp1", "--steps", "3000", "--seeds", "2"),
        *("--no-progress", "--out", str(tmp_path)),
    )
    assert result.returncode == 0, result.stderr
    assert "Sutton (1992), Fig. 3" in result.stdout and "best stable LMS" in result.stdout
    assert (tmp_path / "sutton1992_exp1.png").stat().st_size > 1000
    with open(tmp_path / "run.json") as f:
        record = json.load(f)
    assert record["status"] == "complete" and record["settings"]["steps"] == 3000
    # 3,000 steps cannot test Figure 3's claims (the error after 30,000 examples)
    verdicts = record["results"]["verdicts"]
    assert [v["outcome"] for v in verdicts] == ["not tested at this length"] * 2
    for verdict in verdicts:
        assert f"{verdict['claim']} — not tested at this length (" in result.stdout
    assert record["results"]["report"][0].split() == [
        "value",
        "MSE",
        "+-",
        "s.e.",
        "diverged",
        "unstable",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps = -3", "steps must be a whole number >= 1, got -3"),
        ("stepz = 3", "unknown keys ['stepz']"),
        ('[[learners]]\noptimiser = "idbd"', "learners[0] has unknown keys ['optimiser']"),
        ("steps = [", "is not valid TOML"),
    ],
)
def test_bad_specification_files_give_one_line(tmp_path, text, message, capsys):
    config = tmp_path / "run.toml"
    config.write_text(text)
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--config", str(config), "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def _documented_run_lines():
    root = pathlib.Path(__file__).parents[2]
    for page in (root / "README.md", *sorted((root / "docs").glob("*.md"))):
        text = page.read_text(encoding="utf-8").replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split("#")[0].strip()
            if (
                line.startswith("alberta-eqx run ")
                and "mypkg" not in line
                and "--config" not in line
            ):
                yield pytest.param(line, id=f"{page.name}: {line[16:60]}")


@pytest.mark.parametrize("line", list(_documented_run_lines()))
def test_documented_run_commands_build(line):
    """Every `alberta-eqx run` line of the README and docs (but those naming a
    user's package or a file) parses and builds its stream and learners."""
    args = cli.parser().parse_args(line.split()[1:])
    settings = run_spec(args)
    stream = _learners.build_stream(settings)
    for learner in settings.learners:
        _learners.learner_factory(learner, stream, settings.stream)
    check_window(settings.steps, settings.window)
