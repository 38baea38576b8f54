"""A grid x seeds batch over 4 forced host devices through `shard_batch`: the outputs
stay sharded over all 4 devices and their numbers are the one-device run's.

Runs in a subprocess (`sweep_worker.py shard`): the device count is fixed when JAX
starts."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from alberta_eqx.sweeps import make_mesh, shard_batch

HERE = pathlib.Path(__file__).parents[1]


@pytest.mark.slow
def test_grid_and_seeds_shard_over_four_devices(tmp_path):
    out = tmp_path / "sharded.npz"
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    done = subprocess.run(
        [sys.executable, str(HERE / "_workers" / "sweep_worker.py"), "shard", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    r = np.load(out)
    # jit propagated the inputs' shardings: metrics and learners span the 4 devices
    assert int(r["devices"]) == 4 and int(r["shards"]) == 4
    assert list(r["spec"]) == ["configs", "seeds"]
    assert int(r["weights_devices"]) == 4
    assert list(r["weights_spec"])[:2] == ["configs", "seeds"]
    assert int(r["one_device_devices"]) == 1
    # Each device's block is bit for bit that block run alone on one device ...
    np.testing.assert_array_equal(r["sharded"][2:4, 3:6], r["block"])
    # ... and the whole equals the one-device run of the whole batch to float32
    # rounding (XLA vectorises a 4 x 6 batch differently from a 2 x 3 one).
    np.testing.assert_allclose(r["sharded"], r["one_device"], rtol=1e-5)
    assert r["sharded"].shape == (4, 6, 4)


def test_shard_batch_names_what_does_not_divide():
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import alberta_eqx as ae

    mesh = make_mesh()  # one device here: configs 1, seeds 1
    assert mesh.axis_names == ("configs", "seeds")
    learners = eqx.filter_vmap(lambda a: ae.LinearLearner(2, ae.LMS(a)))(jnp.ones(3))
    with pytest.raises(ValueError, match="seed_devices"):
        make_mesh(seed_devices=len(jax.devices()) + 1)
    with pytest.raises(ValueError, match="learners"):
        shard_batch(mesh, ae.LinearLearner(2, ae.LMS(0.1)), jax.random.split(jax.random.key(0)))
    placed, keys = shard_batch(mesh, learners, jax.random.split(jax.random.key(0), 2))
    assert placed.batch_shape == (3,) and keys.shape == (2,)
