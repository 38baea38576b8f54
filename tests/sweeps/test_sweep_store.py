"""Sweep stores that can be trusted: the configuration table keyed in order, a store
whose creation was cut off, damage found through checksums (and run again), every
mistake in a sweep file refused in one line before anything is written, and the
`sweep`/`show` summaries. One small sweep (2 x 2 configurations, 2 seeds, 200 steps,
shards of 2) is run once; the tests damage copies of it, so one program compiles."""

import json
import os
import shutil

import numpy as np
import pytest

xr = pytest.importorskip("xarray")
zarr = pytest.importorskip("zarr")

import alberta_eqx as ae  # noqa: E402
from alberta_eqx.cli import main  # noqa: E402
from alberta_eqx.sweeps import (  # noqa: E402
    SweepError,
    SweepSpec,
    best_configurations,
    check_sweep,
    load_spec,
    run_sweep,
    store,
    verify_store,
)
from alberta_eqx.sweeps.store import STORE  # noqa: E402


def learner(initial_step_size, meta_step_size):
    return ae.LinearLearner(3, ae.IDBD(initial_step_size, meta_step_size=meta_step_size))


GRID = {"initial_step_size": [0.01, 0.1], "meta_step_size": [0.001, 0.01]}
SPEC = SweepSpec(
    ae.DriftingTargetStream(3), learner, GRID, num_steps=200, seeds=2, metrics_window=100
)
TOML = """
num_steps = 200
seeds = 2
metrics_window = 100

[stream]
feature_dim = 3

[learner]
optimizer = "IDBD"

[grid]
initial_step_size = [0.01, 0.1]
meta_step_size = [0.001, 0.01]
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished sweep's folder and its results (never changed: tests copy it)."""
    out = tmp_path_factory.mktemp("finished")
    ds = run_sweep(SPEC, out, shard_size=2)
    return out, {name: ds[name].values.copy() for name in ds.data_vars}


def _copy(finished, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished[0], out)
    return out


def _chunk(out, name, *index):
    return out / STORE / name / "c" / os.path.join(*map(str, index))


def _flip(path, offset=None):
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if offset is None else offset] ^= 0x10
    path.write_bytes(data)


def test_toml_is_the_python_spec(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(TOML)
    assert load_spec(path).describe() == SPEC.describe()


def test_every_array_is_checksummed(finished):
    group = zarr.open_group(finished[0] / STORE, mode="r")
    arrays = dict(group.arrays())
    assert {"completed", "squared_error", "initial_step_size", "seed", "step"} <= set(arrays)
    for name, array in arrays.items():
        assert any(isinstance(c, zarr.codecs.Crc32cCodec) for c in array.compressors), name


def test_resume_with_the_grid_in_another_order_is_refused(finished, tmp_path):
    """The same keys in another order number the configurations differently: 2 of the
    4 would be stored under the other's labels. The store keeps its ordered table."""
    out = _copy(finished, tmp_path)
    swapped = SweepSpec(
        SPEC.stream,
        learner,
        {"meta_step_size": GRID["meta_step_size"], "initial_step_size": GRID["initial_step_size"]},
        num_steps=200,
        seeds=2,
        metrics_window=100,
    )
    # the configuration tables really differ
    assert not np.array_equal(
        swapped.configurations["initial_step_size"], SPEC.configurations["initial_step_size"]
    )
    for call in (lambda: check_sweep(swapped, out), lambda: run_sweep(swapped, out)):
        with pytest.raises(SweepError, match=r"order \['initial_step_size', 'meta_step_size'\]"):
            call()
    ds = xr.open_zarr(out / STORE)
    assert ds.attrs["hyperparameters"] == ["initial_step_size", "meta_step_size"]
    np.testing.assert_array_equal(ds.initial_step_size, [0.01, 0.01, 0.1, 0.1])
    np.testing.assert_array_equal(ds.meta_step_size, [0.001, 0.01, 0.001, 0.01])


def test_creation_cut_off_is_finished_on_resume(finished, tmp_path, monkeypatch):
    """A sweep killed while creating its store (here: just before the rename that
    puts the whole store in place) leaves only the `.creating` folder; the next run
    builds the store again and completes."""

    def killed(src, dst):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(store.os, "rename", killed)
        with pytest.raises(KeyboardInterrupt):
            run_sweep(SPEC, tmp_path, shard_size=2)
    assert sorted(os.listdir(tmp_path)) == [STORE + store.PARTIAL]
    assert store.open_store(str(tmp_path / STORE)) is None
    ds = run_sweep(SPEC, tmp_path, shard_size=2)
    assert sorted(os.listdir(tmp_path)) == [STORE]
    for name, values in finished[1].items():
        np.testing.assert_array_equal(ds[name].values, values, err_msg=name)


def test_half_made_store_of_an_older_version_names_the_folder(tmp_path):
    """Before stores were renamed into place, a kill could leave the attributes
    without the arrays (`KeyError: 'completed'` on every resume)."""
    path = tmp_path / STORE
    group = zarr.open_group(path, mode="w-", zarr_format=3)
    group.attrs["spec"] = json.dumps({**SPEC.describe(), "shard_size": 2})
    for call in (lambda: run_sweep(SPEC, tmp_path), lambda: verify_store(tmp_path)):
        with pytest.raises(store.StoreError, match=f"{path}.*remove it"):
            call()


def test_damage_is_found_and_run_again(finished, tmp_path, capsys):
    """A flipped byte in a result chunk and a deleted chunk (read as NaN, marked
    complete): `verify_store` and `sweep --verify` name both, and resuming runs
    exactly those two shards again, giving the undamaged results back."""
    out = _copy(finished, tmp_path)
    _flip(_chunk(out, "squared_error", 0, 0, 0))  # shard 1
    os.remove(_chunk(out, "error", 1, 0, 0))  # shard 2
    with pytest.raises(SystemExit):
        main(["show", str(out)])  # the damaged results are one line, not a traceback
    assert "results unreadable" in capsys.readouterr().err
    problems = verify_store(out)
    assert problems == [
        "shard 1 (configurations 0-1): chunk squared_error/c/0/0/0: checksum mismatch",
        "shard 2 (configurations 2-3): chunk error/c/1/0/0: missing",
    ]
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "--verify", str(out)])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.out.count("DAMAGED") == 2 and "2 problem(s)" in captured.err
    rerun = []
    ds = run_sweep(SPEC, out, on_shard=lambda i, a, b: rerun.append(i))
    assert rerun == [0, 1]
    for name, values in finished[1].items():
        np.testing.assert_array_equal(ds[name].values, values, err_msg=name)
    assert verify_store(out) == []
    main(["sweep", "--verify", str(out)])
    assert "every checksum holds; 4/4 configurations completed" in capsys.readouterr().out


def test_damaged_marks_rerun_and_damaged_coordinates_refuse(finished, tmp_path):
    out = _copy(finished, tmp_path)
    _flip(_chunk(out, "completed", 1))
    assert verify_store(out) == [
        "shard 2 (configurations 2-3): its completion marks: checksum mismatch"
    ]
    rerun = []
    run_sweep(SPEC, out, on_shard=lambda i, a, b: rerun.append(i))
    assert rerun == [1]
    _flip(_chunk(out, "initial_step_size", 0))
    with pytest.raises(store.StoreError, match="checksum"):
        run_sweep(SPEC, out)
    with pytest.raises(store.StoreError, match="checksum"):
        verify_store(out)


@pytest.mark.parametrize("name", ["seed", "step", "meta_step_size"])
def test_missing_coordinate_chunk_is_refused(finished, tmp_path, name):
    """A deleted coordinate chunk reads as its fill value: refused, not resumed."""
    out = _copy(finished, tmp_path)
    os.remove(_chunk(out, name, 0))
    for call in (lambda: run_sweep(SPEC, out), lambda: verify_store(out)):
        with pytest.raises(ValueError, match=f"{out / STORE}.*{name}.*remove it"):
            call()


def test_best_configurations_rank_by_final_error(finished):
    ds = xr.open_zarr(finished[0] / STORE)
    rows = best_configurations(ds, top=3)
    final = finished[1]["squared_error"][:, :, -1].astype(np.float64)
    order = np.argsort(final.mean(axis=1))
    assert [row["config"] for row in rows] == list(order[:3])
    best = rows[0]
    assert best["final"] == pytest.approx(final[order[0]].mean())
    assert best["low"] <= best["final"] <= best["high"]
    assert best["initial_step_size"] == SPEC.configurations["initial_step_size"][order[0]]
    assert best["diverged"] == 0


BAD = [  # (the sweep file's text, replaced by, the error says)
    (
        "[grid]\ninitial_step_size",
        "[grid]\ninital_step_size",
        "[grid] key 'inital_step_size': IDBD takes initial_step_size, meta_step_size",
    ),
    (
        'optimizer = "IDBD"',
        'optimizer = "IDBD"\n[optimizer]\nmeta_stepsize = 0.1',
        "[optimizer] key 'meta_stepsize': IDBD takes initial_step_size, meta_step_size",
    ),
    ("[0.01, 0.1]", "[0.01, nan]", "grid['initial_step_size'][1] must be a finite number"),
    ("[0.01, 0.1]", '[0.01, "x"]', "grid['initial_step_size'][1] must be a finite number"),
    ("[0.01, 0.1]", "[0.01, -0.1]", "grid initial_step_size = -0.1: initial_step_size must"),
    ("feature_dim = 3", "feature_dim = 100_000_000_000", "too large: one configuration's 2 "),
    ("seeds = 2", "seeds = 100_000_000_000", "too large: one configuration's 100000000000 "),
    ("num_steps = 200", "num_steps = 10_000_000_000_000", "num_steps must be at most 2**31"),
]


@pytest.mark.parametrize(("old", "new", "message"), BAD)
def test_sweep_file_mistakes_are_one_line_and_leave_nothing(tmp_path, capsys, old, new, message):
    spec, out = tmp_path / "sweep.toml", tmp_path / "out"
    assert old in TOML
    spec.write_text(TOML.replace(old, new, 1))
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", str(spec), "--out", str(out), "--no-plot"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"alberta-eqx: error: {spec}: ")
    assert message in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "it must be a JSON object, got list"),
        ('{"status": "complete", "settings": [1]}', "'settings' must be an object, got [1]"),
        ('{"status": "complete", "argv": "x"}', "'argv' must be a list"),
        ('{"results": {"report": 3}}', "'report' must be a list, got 3"),
        (b"\xff\xfe{", "run.json is malformed ('utf-8' codec can't decode"),
        ("{", "run.json is malformed (Expecting property name"),
    ],
)
def test_show_malformed_record_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "run.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SystemExit) as exit_:
        main(["show", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_command_line_sweep_records_summarises_and_show_reads_it(finished, tmp_path, capsys):
    """`sweep` prints the best configurations and writes them to run.json (`--no-plot`:
    no PNG); resumed with plots, it writes sweep.png; `show` reads the folder: the
    record, the store's progress and its best configurations."""
    spec, out = tmp_path / "sweep.toml", tmp_path / "out"
    spec.write_text(TOML)
    main(["sweep", str(spec), "--out", str(out), "--shard-size", "2", "--no-plot"])
    printed = capsys.readouterr().out
    assert "4/4 configurations x 2 seeds x 200 steps" in printed
    assert "best 4 of 4 configurations by final squared_error" in printed
    best = best_configurations(xr.open_zarr(finished[0] / STORE), top=1)[0]
    assert f"best: configuration {best['config']} (initial_step_size=" in printed
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete" and record["command"] == "sweep"
    assert record["settings"]["grid"] == GRID and record["outputs"] == []
    assert record["results"]["best"][0]["config"] == best["config"]
    assert not (out / "sweep.png").exists()

    main(["sweep", str(spec), "--out", str(out)])
    printed = capsys.readouterr().out
    assert "shard 2/2 (configurations 2-3) is already in the store: skipped" in printed
    assert (out / "sweep.png").stat().st_size > 0
    assert json.loads((out / "run.json").read_text())["outputs"] == ["sweep.png"]

    main(["show", str(out)])
    shown = capsys.readouterr().out
    assert "status: complete" in shown and 'grid: {"initial_step_size"' in shown
    assert "progress: 4/4 configurations completed (2/2 shards of 2)" in shown
    assert f"best: configuration {best['config']}" in shown

    # a store written from Python has no run.json: show reads the store alone
    main(["show", str(finished[0])])
    shown = capsys.readouterr().out
    assert "stream:" in shown and "progress: 4/4 configurations completed" in shown


def test_show_reports_progress_of_a_partial_sweep(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path)
    store.mark_completed(str(out / STORE), 2, 4, False)
    main(["show", str(out)])
    shown = capsys.readouterr().out
    assert "progress: 2/4 configurations completed (1/2 shards of 2)" in shown
    assert "best 2 of 4 configurations" in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sweep"], "sweep needs a sweep file (or --verify DIR)"),
        (["sweep", "x.toml", "--verify", "y"], "give a sweep file or --verify DIR, not both"),
        (["sweep", "--verify", "/nonexistent-folder"], "/nonexistent-folder holds no sweep store"),
        (["sweep", "/nonexistent.toml"], "/nonexistent.toml: No such file or directory"),
    ],
)
def test_sweep_arguments_are_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
