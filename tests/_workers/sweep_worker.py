"""Sweeps in a process of their own, for tests/sweeps/test_sweep.py, test_sharding.py and
test_distributed.py (forced host devices must be set before JAX starts).

    python tests/_workers/sweep_worker.py kill OUT    # the sweep; waits after shard 0
    python tests/_workers/sweep_worker.py mesh OUT DEVICES    # the sweep on a mesh of DEVICES
    python tests/_workers/sweep_worker.py process OUT ADDRESS ID    # one of two processes
    python tests/_workers/sweep_worker.py shard OUT    # shard_batch on 4 devices -> OUT.npz
    python tests/_workers/sweep_worker.py control OUT    # a control sweep on 4 devices

`kill` prints `WRITTEN <index>` after each shard and, after the first, waits to be
killed (SIGKILL) by the test.
"""

import os
import sys

MODE, OUT = sys.argv[1], sys.argv[2]
FIXED = {"kill": 1, "process": 2, "shard": 4, "control": 4}
DEVICES = int(sys.argv[3]) if MODE == "mesh" else FIXED[MODE]
# Beside the flags the test suite set (tests/conftest.py), not in place of them.
FORCED = f"--xla_force_host_platform_device_count={DEVICES}"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FORCED}".strip()

import time  # noqa: E402

import jax  # noqa: E402

if MODE == "process":
    # CPU collectives (for the barriers between shards) go through gloo.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=sys.argv[3],
        num_processes=2,
        process_id=int(sys.argv[4]),
        initialization_timeout=60,
    )

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import alberta_eqx as ae  # noqa: E402
from alberta_eqx.sweeps import make_mesh, run_sweep, shard_batch  # noqa: E402
from tests._workers.sweep_worker_spec import SPEC, learner  # noqa: E402

SHARD = 4


def killed_after_first_shard(index, start, stop):
    print(f"WRITTEN {index}", flush=True)
    if index == 0:
        time.sleep(600)  # the test kills this process now


if MODE == "kill":
    run_sweep(SPEC, OUT, shard_size=2, on_shard=killed_after_first_shard)
elif MODE in ("mesh", "process"):
    mesh = make_mesh(seed_devices=2)
    run_sweep(SPEC, OUT, shard_size=SHARD, mesh=mesh)
    print(f"DONE {jax.process_index()}", flush=True)
elif MODE == "shard":
    alphas = jnp.asarray([0.003, 0.01, 0.03, 0.1])
    learners = eqx.filter_vmap(lambda a: learner(a, 0.01))(alphas)
    keys = jax.random.split(jax.random.key(0), 6)
    stream = SPEC.stream

    def run(learners, keys):
        return ae.run_learning_loop_batched(learners, stream, 400, keys, metrics_window=100)

    one_device = run(learners, keys)  # unsharded: everything on device 0
    mesh = make_mesh(seed_devices=2)
    sharded = run(*shard_batch(mesh, learners, keys))
    errors = sharded.metrics.squared_error
    # One device's block, run alone on one device.
    block = run(jax.tree.map(lambda a: a[2:4] if eqx.is_array(a) else a, learners), keys[3:6])
    np.savez(
        OUT,
        sharded=np.asarray(errors),
        one_device=np.asarray(one_device.metrics.squared_error),
        block=np.asarray(block.metrics.squared_error),
        spec=[str(axis) for axis in errors.sharding.spec],
        devices=len(errors.sharding.device_set),
        one_device_devices=len(one_device.metrics.squared_error.sharding.device_set),
        weights_devices=len(sharded.learner.weights.sharding.device_set),
        weights_spec=[str(axis) for axis in sharded.learner.weights.sharding.spec],
        shards=len(errors.addressable_shards),
    )
elif MODE == "control":
    from tests.sweeps.test_control_sweep import control_spec

    spec = control_spec((1e-4, 0.01, 0.1, 1.0))
    run_sweep(spec, OUT, shard_size=2, mesh=make_mesh(seed_devices=2))
    print("DONE", len(jax.devices()), flush=True)
