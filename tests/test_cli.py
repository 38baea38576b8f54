"""The command line, as a user runs it: output files, and one-line errors."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from alberta_eqx.cli import main


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "alberta_eqx", *args], capture_output=True, text=True, cwd=cwd
    )


def test_run_writes_metrics_and_plot(tmp_path, capsys):
    main(
        [
            "run",
            "--stream",
            "random-walk",
            "--optimizer",
            "autostep",
            "--steps",
            "2000",
            "--seeds",
            "3",
            "--window",
            "100",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    data = np.load(tmp_path / "metrics.npz")
    assert data["squared_error"].shape == (3, 20)
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 60
    assert float(rows[-1]["squared_error"]) == pytest.approx(float(data["squared_error"][2, -1]))
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000
    assert "final-window MSE over 3 seeds" in capsys.readouterr().out


def test_replicate_experiment_1_prints_the_table_and_the_figure(tmp_path, capsys):
    main(["replicate", "sutton1992-exp1", "--seeds", "3", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "Sutton (1992), Fig. 3" in out and "best LMS" in out and "IDBD" in out
    assert (tmp_path / "sutton1992_exp1.png").stat().st_size > 1000


def test_replicate_autostep_scale_draws_one_curve_per_scale(tmp_path, capsys):
    main(["replicate", "autostep-scale", "--seeds", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "target x1000: Autostep" in out and "largest relative difference" in out
    assert (tmp_path / "autostep_scale.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--stream", "no-such-stream"], "invalid choice"),
        (["run", "--steps", "-5"], "must be > 0"),
        (["run", "--steps", "ten"], "expected a number"),
        (["replicate", "sutton1993"], "invalid choice"),
    ],
)
def test_bad_options_give_one_line(args, message):
    result = _cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


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
