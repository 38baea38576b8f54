"""Experiment trackers: what a run logs to TensorBoard and to Weights & Biases (offline)
is read back and equals the run's windowed metrics; the command line's `--log`."""

import glob
import json
import os
import pathlib
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from alberta_eqx import IDBD, DriftingTargetStream, LinearLearner
from alberta_eqx.cli import main
from alberta_eqx.experiments import run_experiment
from alberta_eqx.experiments import runner as runner_module
from alberta_eqx.experiments.loggers import (
    AbstractLogger,
    TensorBoardLogger,
    WandbLogger,
    make_logger,
)

tbparse = pytest.importorskip("tbparse", reason="reading event files back needs tbparse")
pytest.importorskip("tensorboardX", reason="the TensorBoard logger needs tensorboardX")
pytest.importorskip("wandb", reason="the W&B logger needs wandb")

# Three segments of the runner's 10,000-step block: one compiled program.
FEATURES, STEPS, WINDOW, SEEDS = 3, 30_000, 1_000, 2
CONFIGS = {"slow": (0.01, 0.0), "fast": (0.05, 0.02)}
METRICS = ("squared_error", "error", "mean_step_size")


class Recorder(AbstractLogger):
    """Keeps what it is given, for the tests."""

    def __init__(self) -> None:
        self.settings: dict = {}
        self.metrics: list[tuple[int, dict]] = []
        self.closed = False

    def log_settings(self, settings):
        self.settings.update(settings)

    def log_metrics(self, step, metrics):
        self.metrics.append((step, dict(metrics)))

    def close(self):
        self.closed = True


def _configs():
    return {
        name: LinearLearner(FEATURES, IDBD(alpha, meta_step_size=theta))
        for name, (alpha, theta) in CONFIGS.items()
    }


def _run(loggers):
    return run_experiment(
        _configs(),
        DriftingTargetStream(FEATURES, drift_rate=0.01),
        STEPS,
        SEEDS,
        metrics_window=WINDOW,
        loggers=loggers,
    )


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """One run logged to TensorBoard, to an offline W&B run and to a `Recorder`."""
    folder = tmp_path_factory.mktemp("trackers")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")  # no network, no login
        mp.setenv("WANDB_SILENT", "true")
        mp.setenv("WANDB_CONSOLE", "off")
        # everything W&B writes (its run, its service's logs) stays in the temporary folder
        for variable in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
            mp.setenv(variable, str(folder))
        mp.setenv("XDG_CACHE_HOME", str(folder / "cache"))
        loggers = [
            TensorBoardLogger(folder / "tb"),
            WandbLogger("alberta-eqx-tests", dir=str(folder)),
            Recorder(),
        ]
        try:
            result = _run(loggers)
        finally:
            for logger in loggers:
                logger.close()
    return result, folder, loggers[2]


def _expected(result):
    """Each configuration's metrics per window, the mean over the seeds (float64)."""
    return {
        f"{config}/{metric}": result.curve(config, metric).astype(np.float64).mean(axis=0)
        for config in result.configs
        for metric in METRICS
    }


def _scalars(logdir):
    frame = tbparse.SummaryReader(str(logdir)).scalars
    return {
        tag: (rows["step"].to_numpy(), rows["value"].to_numpy())
        for tag, rows in frame.groupby("tag")
    }


@pytest.mark.slow
def test_tensorboard_scalars_equal_the_windowed_metrics(logged):
    result, folder, _ = logged
    scalars = _scalars(folder / "tb")
    expected = _expected(result)
    assert set(scalars) == set(expected)
    for tag, values in expected.items():
        steps, logged_values = scalars[tag]
        np.testing.assert_array_equal(steps, result.steps)
        # event files hold float32
        np.testing.assert_allclose(logged_values, values, rtol=1e-6, err_msg=tag)


def test_tensorboard_holds_the_settings(logged):
    _, folder, _ = logged
    text = tbparse.SummaryReader(str(folder / "tb")).text
    settings = json.loads(text[text["tag"] == "settings"]["value"].iloc[-1])
    assert settings == {
        "configs": list(CONFIGS),
        "seeds": list(range(SEEDS)),
        "num_steps": STEPS,
        "metrics_window": WINDOW,
    }


def _wandb_records(path):
    """The records of a `.wandb` file: W&B's LevelDB-style log (a 7-byte header
    `:W&B` + magic + version, then 32 KiB blocks of records, each a 7-byte header
    checksum/length/type and a piece of a protobuf `Record`)."""
    from wandb.proto import wandb_internal_pb2

    raw = pathlib.Path(path).read_bytes()
    assert raw[:4] == b":W&B"
    block, position, pieces, records = 32768, 7, [], []
    while position + 7 <= len(raw):
        left = block - position % block
        if left < 7:  # too short for a header: the block's padding
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", raw[position : position + 7])
        if kind == 0 and length == 0:
            break
        pieces.append(raw[position + 7 : position + 7 + length])
        position += 7 + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(pieces))
            records.append(record)
            pieces = []
    return records


def _finished_run(folder):
    """The records of the offline run in `folder`, once W&B's service has written
    its last (`exit`) record: `finish` returns before the file is complete."""
    (path,) = glob.glob(os.path.join(folder, "wandb", "offline-run-*", "run-*.wandb"))
    deadline = time.monotonic() + 60
    while True:
        records = _wandb_records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        assert time.monotonic() < deadline, f"{path} has no exit record after 60 s"
        time.sleep(0.1)


def test_wandb_offline_run_holds_the_history_and_the_settings(logged):
    result, folder, _ = logged
    history: dict[str, list[tuple[int, float]]] = {}
    config = {}
    for record in _finished_run(folder):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            row = {
                item.key or "/".join(item.nested_key): json.loads(item.value_json)
                for item in record.history.item
            }
            for name, value in row.items():
                if not name.startswith("_") and name != "step":
                    history.setdefault(name, []).append((row["step"], value))
        updates = record.config.update if kind == "config" else ()
        if kind == "run":
            updates = record.run.config.update
        for item in updates:
            config[item.key] = json.loads(item.value_json)
    expected = _expected(result)
    assert set(history) == set(expected)
    for name, values in expected.items():
        steps, logged_values = zip(*history[name], strict=True)
        np.testing.assert_array_equal(steps, result.steps)
        np.testing.assert_allclose(logged_values, values, rtol=1e-12, err_msg=name)
    assert config["num_steps"] == STEPS and config["configs"] == list(CONFIGS)


def test_each_segment_is_logged_when_it_returns(logged, monkeypatch):
    result, _, recorder = logged
    assert [step for step, _ in recorder.metrics] == [*result.steps, *result.steps]
    # a second run (the programs compiled already): the windows of each segment are
    # logged by the time the segment's hook returns, not at the end
    seen = []
    again = Recorder()
    segments = runner_module.in_segments

    def spy(*args, on_segment, **kwargs):
        def hook(start, segment):
            before = len(again.metrics)
            on_segment(start, segment)
            windows = segment.metrics.squared_error.shape[1]
            seen.append((start, windows, len(again.metrics) - before))

        return segments(*args, on_segment=hook, **kwargs)

    monkeypatch.setattr(runner_module, "in_segments", spy)
    rerun = _run([again])
    # per configuration: segments that continue one another from step 0 to the end,
    # each segment's windows logged by the time its hook returns
    per_config = len(seen) // len(CONFIGS)
    assert per_config >= 2 and len(seen) == per_config * len(CONFIGS)
    for c in range(len(CONFIGS)):
        step = 0
        for start, windows, logged in seen[c * per_config : (c + 1) * per_config]:
            assert start == step and logged == windows
            step += windows * WINDOW
        assert step == STEPS
    assert again.metrics == recorder.metrics
    for config in CONFIGS:
        np.testing.assert_array_equal(rerun.curve(config), result.curve(config))


def test_cli_run_logs_to_tensorboard(tmp_path, capsys):
    out, logdir = tmp_path / "out", tmp_path / "tb"
    main(
        [
            "run", "--out", str(out), "--no-progress", "--no-plot", "--steps", "2000",
            "--window", "500", "--seeds", "2", "--feature-dim", "3",
            "--log", f"tensorboard:{logdir}",
        ]
    )  # fmt: skip
    arrays = np.load(out / "metrics.npz")
    scalars = _scalars(logdir)
    assert set(scalars) == {f"idbd/{m}" for m in METRICS}
    for metric in METRICS:
        steps, values = scalars[f"idbd/{metric}"]
        np.testing.assert_array_equal(steps, [500, 1000, 1500, 2000])
        expected = arrays[f"idbd/{metric}"].astype(np.float64).mean(axis=0)
        np.testing.assert_allclose(values, expected, rtol=1e-6)
    text = tbparse.SummaryReader(str(logdir)).text
    settings = json.loads(text[text["tag"] == "settings"]["value"].iloc[-1])
    assert (
        settings["stream"] == "drifting-target" and settings["learners"][0]["optimizer"] == "idbd"
    )


@pytest.mark.parametrize("value", ["tensorbored:/tmp/x", "wandb:", "tensorboard", "mlflow:x"])
def test_a_bad_log_value_is_one_line_naming_the_forms(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--out", str(tmp_path / "out"), "--log", value])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "tensorboard:DIR or wandb:PROJECT" in lines[0] and repr(value) in lines[0]
    assert not (tmp_path / "out").exists()


def test_make_logger_names_the_extra_when_the_tracker_is_missing(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails
    with pytest.raises(ImportError, match=r"pip install 'alberta_eqx\[tensorboard\]'"):
        make_logger(f"tensorboard:{tmp_path}")
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ImportError, match=r"pip install 'alberta_eqx\[wandb\]'"):
        make_logger("wandb:project")
    with pytest.raises(ValueError, match="expected tensorboard:DIR or wandb:PROJECT"):
        make_logger("neptune:project")


def test_cli_missing_tracker_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(SystemExit):
        main(["run", "--out", str(tmp_path / "out"), "--steps", "100", "--log", "wandb:p"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "alberta-eqx: error: --log wandb:p: logging to wandb needs wandb: "
        "pip install 'alberta_eqx[wandb]'"
    ]


def test_cli_tracker_that_cannot_start_is_one_line(tmp_path, capsys):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(SystemExit):
        main(["run", "--out", str(tmp_path / "out"), "--log", f"tensorboard:{blocked}/tb"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alberta-eqx: error: --log tensorboard:")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_library_imports_no_tracker():
    code = (
        "import sys, alberta_eqx, alberta_eqx.experiments, alberta_eqx.cli; "
        "print(sorted({'tensorboardX', 'wandb', 'tensorboard'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


SWEEP = """
num_steps = 400
seeds = 2
metrics_window = 100

[stream]
type = "DriftingTargetStream"
feature_dim = 3
drift_rate = 0.01

[learner]
optimizer = "IDBD"

[grid]
initial_step_size = [0.01, 0.05]
"""


def test_cli_sweep_logs_each_configuration_after_its_shard(tmp_path, capsys):
    xr = pytest.importorskip("xarray", reason="sweeps need the sweep extra")
    spec, out, logdir = tmp_path / "sweep.toml", tmp_path / "out", tmp_path / "tb"
    spec.write_text(SWEEP)
    main(
        [
            "sweep", str(spec), "--out", str(out), "--no-plot", "--no-progress",
            "--shard-size", "1", "--log", f"tensorboard:{logdir}",
        ]
    )  # fmt: skip
    ds = xr.open_zarr(out / "sweep.zarr")
    scalars = _scalars(logdir)
    labels = ["config_0-initial_step_size_0.01", "config_1-initial_step_size_0.05"]
    assert set(scalars) == {f"{label}/{m}" for label in labels for m in METRICS}
    for config, label in enumerate(labels):
        for metric in METRICS:
            steps, values = scalars[f"{label}/{metric}"]
            np.testing.assert_array_equal(steps, [100, 200, 300, 400])
            expected = ds[metric].values[config].astype(np.float64).mean(axis=0)
            np.testing.assert_allclose(values, expected, rtol=1e-6)
    text = tbparse.SummaryReader(str(logdir)).text
    settings = json.loads(text[text["tag"] == "settings"]["value"].iloc[-1])
    assert settings["grid"] == {"initial_step_size": [0.01, 0.05]}


def test_cli_replicate_logs_its_settings_and_verdicts(tmp_path, monkeypatch, capsys):
    """`replicate --log`: the settings, each verdict's line, and `verdict/N` (1 PASS,
    0 FAIL, no number for a claim not tested) at the run's last step. A stand-in
    replication (registered for the test) keeps it free of any compiled run."""
    from alberta_eqx.replications.registry import REPLICATIONS
    from alberta_eqx.replications.verdicts import Check, Replication

    checks = (
        Check("the error is below 1", lambda r: (r["error"] < 1, f"{r['error']}")),
        Check("the error is below 0.1", lambda r: (r["error"] < 0.1, f"{r['error']}")),
        Check("the error after a million steps", lambda r: (True, "-"), min_steps=10**6),
    )
    stand_in = Replication(
        title="a stand-in",
        paper="a stand-in paper",
        run=lambda seeds, steps, progress: {"error": 0.5},
        seeds=2,
        steps=100,
        quick_steps=10,
        steps_multiple=10,
        total=lambda steps: steps,
        report=lambda result: [f"error {result['error']}"],
        figure=lambda result: None,
        filename="stand_in.png",
        checks=checks,
    )
    monkeypatch.setitem(REPLICATIONS, "stand-in", stand_in)
    out, logdir = tmp_path / "out", tmp_path / "tb"
    main(
        [
            "replicate", "stand-in", "--out", str(out), "--no-progress", "--no-plot",
            "--log", f"tensorboard:{logdir}",
        ]
    )  # fmt: skip
    scalars = _scalars(logdir)
    assert set(scalars) == {"verdict/1", "verdict/2"}
    for tag, value in (("verdict/1", 1.0), ("verdict/2", 0.0)):
        np.testing.assert_array_equal(scalars[tag][0], [100])
        np.testing.assert_array_equal(scalars[tag][1], [value])
    text = tbparse.SummaryReader(str(logdir)).text
    settings = json.loads(text[text["tag"] == "settings"]["value"].iloc[-1])
    assert settings["replication"] == "stand-in" and settings["steps"] == 100
    assert settings["verdicts"] == [
        "the error is below 1 — PASS (0.5)",
        "the error is below 0.1 — FAIL (0.5)",
        "the error after a million steps — not tested at this length (-); the claim "
        "needs 1,000,000 steps, this run has 100",
    ]
