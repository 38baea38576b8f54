"""One sweep over two processes (`jax.distributed.initialize`, CPU collectives
through gloo), each with two forced host devices, against one process.

Both processes run `run_sweep` with a mesh over the 4 global devices (configs 2 x
seeds 2: each process owns one row of configurations) and write their own blocks of
every shard into the same store."""

import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

xr = pytest.importorskip("xarray")
pytest.importorskip("zarr")

HERE = pathlib.Path(__file__).parents[1]
ENV = {**os.environ, "PYTHONPATH": str(HERE.parent)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _worker(*args):
    return subprocess.Popen(
        [sys.executable, str(HERE / "_workers" / "sweep_worker.py"), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def _finish(process, timeout=300):
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    assert process.returncode == 0, err[-3000:]
    return out


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
    address = f"localhost:{_free_port()}"
    workers = [_worker("process", tmp_path / "two", address, i) for i in (0, 1)]
    one = _worker("mesh", tmp_path / "one", 4)  # one process, the same 4-device mesh
    outputs = [_finish(w) for w in workers]
    assert "DONE 0" in outputs[0] and "DONE 1" in outputs[1]
    _finish(one)

    from alberta_eqx.sweeps import run_sweep
    from tests._workers.sweep_worker_spec import SPEC

    two = xr.open_zarr(tmp_path / "two" / "sweep.zarr")
    four = xr.open_zarr(tmp_path / "one" / "sweep.zarr")
    single = run_sweep(SPEC, tmp_path / "single", shard_size=4)  # one device
    assert bool(two.completed.all())
    for name in ("squared_error", "error", "mean_step_size"):
        # bit for bit the one-process run on the same mesh ...
        np.testing.assert_array_equal(two[name].values, four[name].values, err_msg=name)
        # ... and the one-device sweep's to float32 rounding
        np.testing.assert_allclose(two[name].values, single[name].values, rtol=1e-4, atol=1e-7)
    assert np.isfinite(two.squared_error.values).all()
