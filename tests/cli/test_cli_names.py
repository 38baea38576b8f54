"""`alberta-eqx run` knows the library's own names (issue 22, items 4 and 7; issue 21,
item 15): every rule and learner by a short name with its defaults in `--help`,
`--step-size` as each rule's own step-size, each learner on a stream it can learn
from, one-line errors that leave nothing on disk, titled figures and a stated final
window."""

import json

import numpy as np
import pytest

from alberta_eqx import cli
from alberta_eqx.cli import _learners, _report, main
from alberta_eqx.cli._run import run_spec
from alberta_eqx.sweeps import spec

RUN = ("--seeds", "1", "--steps", "200", "--window", "100", "--no-progress", "--no-plot")


def _run(tmp_path, *args):
    main(["run", "--out", str(tmp_path), *RUN, *args])
    with open(tmp_path / "run.json") as f:
        return json.load(f)


def _error(args, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alberta-eqx: error: "), lines
    return lines[0]


def test_help_lists_every_rule_and_learner_with_its_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the lines
    for rule in ("lms", "idbd", "autostep", "obgd", "adaptive-obgd", "trace-sgd"):
        assert f"{rule} (" in text, rule
    for learner in ("linear", "mlp", "multihead", "td-linear", "td-mlp", "horde"):
        assert learner in text, learner
    assert "obgd (step_size=1.0, kappa=2.0;" in text
    assert "idbd (initial_step_size=0.01, meta_step_size=0.01;" in text
    assert "trace-sgd (step_size=1.0; mlp, multihead, td-mlp)" in text
    assert "mlp (hidden_sizes=[32])" in text
    assert "imported and called: code" in text  # an import path is code


@pytest.mark.parametrize("name", sorted(_learners.RULES))
def test_step_size_is_each_rules_own(name):
    """`--step-size` sets the rule's own step-size argument, for every learner that
    takes the rule, and the learner builds."""
    rule = _learners.RULES[name]
    for learner, kind in _learners.LEARNERS.items():
        if rule.form(kind.form) is None:
            continue
        args = cli.parser().parse_args(
            ["run", "--learner", learner, "--optimizer", name, "--step-size", "0.05"]
        )
        settings = run_spec(args)
        (config,) = settings.learners
        assert config.optimizer_args == {rule.step_size: 0.05}, (name, learner)
        stream = _learners.build_stream(settings)
        make = _learners.learner_factory(config, stream, settings.stream)
        assert make is not None


@pytest.mark.parametrize(
    ("learner", "stream"),
    [
        ("linear", "drifting-target"),
        ("td-linear", "random-walk-chain"),
        ("horde", "random-walk-chain"),
        pytest.param("mlp", "drifting-target", marks=pytest.mark.slow),
        pytest.param("td-mlp", "random-walk-chain", marks=pytest.mark.slow),
        pytest.param("multihead", "bitflip", marks=pytest.mark.slow),
    ],
)
def test_every_learner_runs_with_the_default_optimizer_on_its_stream(learner, stream, tmp_path):
    """Each learner runs with no other option: `run` gives the learners of transitions
    a TD stream and `multihead` a stream of several targets (issue 21, item 15:
    `--learner mlp` with the default optimizer)."""
    small = ("--learner-arg", "hidden_sizes=[4]") if "mlp" in learner or "multi" in learner else ()
    settings = _run(tmp_path, "--learner", learner, *small)["settings"]
    assert settings["stream"] == stream
    curve = np.load(tmp_path / "metrics.npz")["idbd/squared_error"]
    assert curve.shape[:2] == (1, 2) and np.isfinite(curve).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--learner", "td-mlp", "--stream", "drifting-target"],
            "learner 'td-mlp' learns from transitions and stream 'drifting-target' gives "
            "examples: td-linear, td-mlp, horde take a TD stream",
        ),
        (
            ["--learner", "mlp", "--stream", "random-walk-chain"],
            "learner 'mlp' learns from examples and stream 'random-walk-chain' gives transitions",
        ),
        (["--learner", "multihead", "--stream", "drifting-target"], "--stream bitflip"),
        (
            ["--optimizer", "trace-sgd"],
            "optimizer 'trace-sgd' has no form for learner 'linear'; learner linear takes "
            "lms, idbd, autostep, obgd, adaptive-obgd",
        ),
        (["--learner", "td-linear", "--optimizer", "obgd"], "learners td-linear and horde take"),
        (["--optimizer", "obgd", "--tau", "5"], "optimizer 'obgd' takes no tau"),
        (["--learner", "oops"], "learner 'oops' is neither a built-in (linear, mlp, multihead"),
        (["--optimizer", "oops"], "optimizer 'oops' is neither a built-in (lms, idbd"),
        (["--learner", "horde", "--normalizer", "ema"], "learner 'horde' takes no normalizer"),
    ],
)
def test_wrong_combinations_give_one_line_and_leave_nothing(args, message, tmp_path, capsys):
    out = tmp_path / "out"
    line = _error(["run", "--out", str(out), *args], capsys)
    assert message in line, line
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('learners = "oops"', "learners must be a list of tables ([[learners]] with name,"),
        ("learners = [1, 2]", "learners must be a list of tables"),
        ('[[learners]]\nlearner_args = "x"', "learners[0].learner_args must be a table"),
        ("[[learners]]\noptimizer_args = [1]", "learners[0].optimizer_args must be a table"),
        ("[[learners]]\noptimizer = 3", "learners[0].optimizer must be a string, got 3"),
        ('[[learners]]\nlearner = "nope"', "learner 'nope' is neither a built-in"),
    ],
)
def test_malformed_learner_tables_give_one_line(text, message, tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text(text)
    out = tmp_path / "out"
    line = _error(["run", "--config", str(config), "--out", str(out)], capsys)
    assert message in line, line
    assert not out.exists()


def test_figure_title_and_final_window(tmp_path, monkeypatch, capsys):
    """The figure names the stream, learner, optimizer and normalizer; the final
    performance is the mean over the last tenth of the run, and says so."""
    figures = []
    monkeypatch.setattr(_report, "save_figure", lambda fig, *a: figures.append(fig))
    options = ("--normalizer", "ema", "--optimizer", "obgd,lms", "--steps", "2000")
    main(["run", "--out", str(tmp_path), "--no-progress", *options, "--seeds", "2"])
    (figure,) = figures
    title = figure.axes[0].get_title()
    assert "stream drifting-target; learner linear; optimizer obgd, lms; normalizer ema" in title
    out = capsys.readouterr().out
    assert "over 2 seeds: the mean over the last 200 of 2,000 steps (the final tenth; 2 " in out
    with open(tmp_path / "run.json") as f:
        record = json.load(f)
    assert record["results"]["final_steps"] == 200
    data = np.load(tmp_path / "metrics.npz")
    for row in record["results"]["final"]:
        expected = data[f"{row['config']}/squared_error"][:, -2:].mean(axis=1).mean()
        assert row["final MSE"] == pytest.approx(expected, rel=1e-6)


def test_short_runs_average_at_least_one_window():
    class Result:
        num_steps, metrics_window = 500, 100

    assert _report.final_windows(Result()) == 1
    Result.num_steps = 100_000
    assert _report.final_windows(Result()) == 100


def test_documented_learner_names_are_the_registered_ones():
    """The LearnerSpec's built-in optimizer names that `run` records are the CLI's."""
    assert set(spec.OPTIMIZERS) <= set(_learners.RULES)
