"""Sweeps: specification (Python and TOML), the Zarr store, resuming after SIGKILL, and
results as labelled arrays."""

import json
import logging
import os
import pathlib
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

xr = pytest.importorskip("xarray")
pytest.importorskip("zarr")

import alberta_eqx as ae  # noqa: E402
from alberta_eqx.experiments import run_experiment, seed_keys  # noqa: E402
from alberta_eqx.sweeps import SweepSpec, load_spec, run_sweep, to_xarray  # noqa: E402

HERE = pathlib.Path(__file__).parents[1]
from tests._workers import sweep_worker_spec  # noqa: E402

SPEC = sweep_worker_spec.SPEC
METRICS = ["error", "mean_step_size", "squared_error"]
ENV = {**os.environ, "PYTHONPATH": str(HERE.parent)}


def _data(ds) -> dict[str, np.ndarray]:
    return {name: ds[name].values for name in sorted(ds.data_vars)}


def test_toml_spec_is_the_python_spec(tmp_path):
    """A sweep file describes the same sweep as the `SweepSpec` written in Python."""
    path = tmp_path / "sweep.toml"
    path.write_text(sweep_worker_spec.SPEC_TOML)
    spec = load_spec(path)
    assert spec.describe() == SPEC.describe()
    assert spec.num_configs == 8
    configs = spec.configurations
    # the last hyperparameter varies fastest
    np.testing.assert_array_equal(configs["meta_step_size"][:3], [0.001, 0.01, 0.001])
    np.testing.assert_array_equal(configs["initial_step_size"][:3], [0.003, 0.003, 0.01])


def test_toml_names_what_is_wrong(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('num_steps = 10\n[stream]\ntype = "NoSuchStream"\n[grid]\nx = [1.0]\n')
    with pytest.raises(ValueError, match="NoSuchStream"):
        load_spec(path)
    path.write_text("num_steps = 10\nstep = 3\n[stream]\nfeature_dim = 3\n[grid]\nx = [1.0]\n")
    with pytest.raises(ValueError, match="step"):
        load_spec(path)
    with pytest.raises(ValueError, match="metrics_window"):
        SweepSpec(SPEC.stream, SPEC.learner, SPEC.grid, num_steps=400, metrics_window=300)
    with pytest.raises(ValueError, match=r"grid\['a'\]"):
        SweepSpec(SPEC.stream, SPEC.learner, {"a": []}, num_steps=400)


@pytest.mark.slow
def test_store_holds_each_run_labelled(tmp_path):
    """The store opens with `xarray.open_zarr`: dims `(config, seed, window)`,
    hyperparameters as coordinates, and each cell is the run of that configuration on
    that seed (checked against `run_learning_loop` of the one learner on the seed's
    stream key)."""
    ds = run_sweep(SPEC, tmp_path, shard_size=2)
    assert ds.squared_error.dims == ("config", "seed", "window")
    assert dict(ds.sizes) == {"config": 8, "seed": 4, "window": 4}
    assert sorted(ds.data_vars) == ["completed", *METRICS]
    assert bool(ds.completed.all())
    np.testing.assert_array_equal(ds.step, [100, 200, 300, 400])
    np.testing.assert_array_equal(ds.seed, [0, 1, 2, 3])
    spec = json.loads(ds.attrs["spec"])
    assert spec["grid"]["initial_step_size"] == [0.003, 0.01, 0.03, 0.1]
    assert spec["shard_size"] == 2
    assert json.loads(ds.attrs["stream"])["drift_rate"] == pytest.approx(0.01)
    assert ds.attrs["jax_version"] == jax.__version__
    assert ds.attrs["alberta_eqx_version"] == ae.__version__
    cell = ds.sel(config=(ds.initial_step_size == 0.03) & (ds.meta_step_size == 0.01), seed=2)
    single = ae.run_learning_loop(
        ae.LinearLearner(3, ae.IDBD(0.03, meta_step_size=0.01)),
        SPEC.stream,
        400,
        seed_keys(2)[0],
        metrics_window=100,
    )
    np.testing.assert_allclose(
        cell.squared_error.values[0], single.metrics.squared_error, rtol=1e-5
    )


@pytest.mark.slow
def test_sigkill_then_resume_skips_finished_shards(tmp_path, caplog):
    """A sweep killed (SIGKILL) after its first shard is written resumes without
    recomputing that shard, says so in its log, and ends with the store an
    uninterrupted sweep writes."""
    killed = tmp_path / "killed"
    worker = subprocess.Popen(
        [sys.executable, str(HERE / "_workers" / "sweep_worker.py"), "kill", str(killed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    try:
        line = worker.stdout.readline()
        assert line.strip() == "WRITTEN 0", line
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=30) == -signal.SIGKILL
    finally:
        worker.kill()
        worker.stdout.close()
    partial = xr.open_zarr(killed / "sweep.zarr")
    np.testing.assert_array_equal(partial.completed, [True] * 2 + [False] * 6)
    assert np.isnan(partial.squared_error.values[2:]).all()
    first_shard = partial.squared_error.values[:2].copy()

    computed = []
    with caplog.at_level(logging.INFO, logger="alberta_eqx.sweep"):
        resumed = run_sweep(
            SPEC, killed, shard_size=2, on_shard=lambda i, a, b: computed.append(i)
        )
    assert computed == [1, 2, 3]
    assert "shard 1/4 (configurations 0-1) is already in the store: skipped" in caplog.text
    np.testing.assert_array_equal(resumed.squared_error.values[:2], first_shard)

    whole = run_sweep(SPEC, tmp_path / "whole", shard_size=2)
    for name, values in _data(whole).items():
        np.testing.assert_array_equal(_data(resumed)[name], values, err_msg=name)
    for name in ("config", "seed", "window", "step", "initial_step_size", "meta_step_size"):
        np.testing.assert_array_equal(resumed[name], whole[name])
    assert resumed.attrs["spec"] == whole.attrs["spec"]


def test_store_needs_only_xarray_to_read(tmp_path):
    """Someone without alberta_eqx reads the store with plain `xarray.open_zarr`."""
    run_sweep(SPEC, tmp_path, shard_size=2)
    code = (
        "import sys, json, xarray\n"
        f"ds = xarray.open_zarr({str(tmp_path / 'sweep.zarr')!r})\n"
        "best = ds.squared_error.isel(window=-1).mean('seed').argmin('config')\n"
        "print(float(ds.initial_step_size[best]), json.loads(ds.attrs['spec'])['num_steps'])\n"
        "assert not any(m.startswith('alberta_eqx') for m in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    value, steps = out.stdout.split()
    assert float(value) in SPEC.grid["initial_step_size"] and steps == "400"


def test_resume_refuses_another_sweep(tmp_path):
    run_sweep(SPEC, tmp_path, shard_size=2)
    other = SweepSpec(SPEC.stream, SPEC.learner, SPEC.grid, num_steps=800, seeds=4)
    with pytest.raises(ValueError, match="num_steps"):
        run_sweep(other, tmp_path)


def test_run_result_to_xarray():
    """A grid x seeds `RunResult` labelled: dims, hyperparameters, settings."""
    alphas = [0.01, 0.1]
    learners = jax.vmap(lambda a: ae.LinearLearner(3, ae.LMS(a)))(np.asarray(alphas))
    keys = jax.random.split(jax.random.key(0), 2)
    result = ae.run_learning_loop_batched(learners, SPEC.stream, 40, keys, metrics_window=10)
    ds = to_xarray(
        result,
        metrics_window=10,
        hyperparameters={"step_size": alphas},
        stream=SPEC.stream,
        learner=ae.LinearLearner(3, ae.LMS(0.01)),
    )
    assert ds.squared_error.dims == ("config", "seed", "window")
    np.testing.assert_array_equal(ds.squared_error.values, result.metrics.squared_error)
    np.testing.assert_array_equal(ds.step, [10, 20, 30, 40])
    np.testing.assert_array_equal(ds.step_size, alphas)
    assert json.loads(ds.attrs["learner"])["optimizer"]["type"].endswith("LMS")
    assert ds.attrs["metrics_window"] == 10
    single = ae.run_learning_loop(ae.LinearLearner(3, ae.LMS(0.1)), SPEC.stream, 40, keys[0])
    one = to_xarray(single, start_step=100)
    assert one.squared_error.dims == ("window",)
    np.testing.assert_array_equal(one.step, np.arange(101, 141))
    with pytest.raises(ValueError, match="hyperparameters"):
        to_xarray(result, hyperparameters={"step_size": [0.1]})


def test_experiment_result_to_xarray():
    configs = {"lms": ae.LinearLearner(3, ae.LMS(0.1)), "idbd": SPEC.learner(0.01, 0.01)}
    result = run_experiment(configs, SPEC.stream, 40, seeds=[3, 5], metrics_window=20)
    ds = to_xarray(result, stream=SPEC.stream)
    assert list(ds.config.values) == ["lms", "idbd"]
    np.testing.assert_array_equal(ds.seed, [3, 5])
    np.testing.assert_array_equal(ds.squared_error.sel(config="idbd").values, result.curve("idbd"))
    assert ds.attrs["metrics_window"] == 20


@pytest.mark.slow
def test_command_line_sweep_and_compilation_cache(tmp_path, capsys):
    """`alberta-eqx sweep SPEC --out DIR` fills the store and the compilation cache
    (a fresh process, with the cache in `$ALBERTA_EQX_CACHE_DIR`); run again with
    `--no-compile-cache` it resumes, skipping every shard, and leaves JAX's cache
    setting alone."""
    from alberta_eqx.cli import main

    spec, out, cache = tmp_path / "sweep.toml", tmp_path / "out", tmp_path / "cache"
    spec.write_text(sweep_worker_spec.SPEC_TOML)
    first = subprocess.run(
        [sys.executable, "-m", "alberta_eqx", "sweep", str(spec), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**ENV, "ALBERTA_EQX_CACHE_DIR": str(cache)},
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert "8/8 configurations x 4 seeds x 400 steps" in first.stdout
    assert any(cache.iterdir()), "the compilation cache stayed empty"
    ds = xr.open_zarr(out / "sweep.zarr")
    assert bool(ds.completed.all()) and np.isfinite(ds.squared_error.values).all()

    before = jax.config.jax_compilation_cache_dir
    main(["sweep", str(spec), "--out", str(out), "--no-compile-cache"])
    printed = capsys.readouterr().out
    assert "shard 1/1 (configurations 0-7) is already in the store: skipped" in printed
    assert jax.config.jax_compilation_cache_dir == before
