"""A grid x seeds batch over every device: the mesh and the shardings.

The runners need nothing special to run on many devices: `jit` propagates the
shardings of its inputs. Put a grid of learners (a leading configurations axis)
on a mesh axis `configs` and the seeds' keys on an axis `seeds`, call
`run_learning_loop_batched` as usual, and every output comes back sharded
`P('configs', 'seeds')`, each device computing its own block, identical to the
one-device run. The same holds across processes started with
`jax.distributed.initialize` (JAX's multi-controller runtime): `jax.devices()` then
lists every process's devices, and each process holds its own devices' blocks.
"""

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Key, UInt32

from alberta_eqx._checks import positive_int
from alberta_eqx.learners import AbstractLearner

CONFIGS, SEEDS = "configs", "seeds"


def make_mesh(devices: Sequence[jax.Device] | None = None, *, seed_devices: int = 1) -> Mesh:
    """A 2-D `Mesh` with axes `('configs', 'seeds')` over `devices`.

    **Arguments:**

    - `devices`: the devices, by default `jax.devices()` (every process's, after
      `jax.distributed.initialize`). They are laid out row by row, so a row of
      `seed_devices` devices stays within one process when each process's devices
      are consecutive (as `jax.devices()` lists them).
    - `seed_devices`: the size of the `seeds` axis (it must divide the number of
      devices); the `configs` axis takes the rest. Grids usually have more
      configurations than seeds, so the default puts every device on `configs`.
    """
    devices = list(jax.devices() if devices is None else devices)
    seed_devices = positive_int("seed_devices", seed_devices)
    if len(devices) % seed_devices:
        raise ValueError(
            f"seed_devices ({seed_devices}) must divide the number of devices ({len(devices)})"
        )
    grid = np.asarray(devices, dtype=object).reshape(len(devices) // seed_devices, seed_devices)
    return Mesh(grid, (CONFIGS, SEEDS))


def _put(value: np.ndarray, sharding: NamedSharding) -> Array:
    """A global array from a host value every process holds in full: each process
    places only the blocks of its own devices (`jax.device_put` would do for one
    process; this also works across processes)."""
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def shard_batch(
    mesh: Mesh, learners: AbstractLearner, keys: Key[Array, " seeds"] | UInt32[Array, "seeds 2"]
) -> tuple[AbstractLearner, Key[Array, " seeds"] | UInt32[Array, "seeds 2"]]:
    """Place a grid of learners on the mesh's `configs` axis and a batch of keys on
    its `seeds` axis, ready for `run_learning_loop_batched`.

    **Arguments:**

    - `mesh`: a mesh with axes `configs` and `seeds` (see `make_mesh`).
    - `learners`: learners with a leading configurations axis (built with
      `eqx.filter_vmap`); its length must be a multiple of the `configs` axis's size.
    - `keys`: one key per seed; their number must be a multiple of the `seeds`
      axis's size.

    **Returns:** `(learners, keys)` as global arrays sharded over the mesh.
    """
    if not isinstance(learners, AbstractLearner) or len(learners.batch_shape) != 1:
        raise ValueError(
            "learners must be a grid of learners with one leading configurations axis, "
            f"got batch shape {getattr(learners, 'batch_shape', None)}"
        )
    num_configs = learners.batch_shape[0]
    if num_configs % mesh.shape[CONFIGS]:
        raise ValueError(
            f"the grid's {num_configs} configurations must be a multiple of the mesh's "
            f"'configs' axis ({mesh.shape[CONFIGS]} devices)"
        )
    if keys.shape[0] % mesh.shape[SEEDS]:
        raise ValueError(
            f"the {keys.shape[0]} keys must be a multiple of the mesh's 'seeds' axis "
            f"({mesh.shape[SEEDS]} devices)"
        )
    return place(mesh, learners, keys)


def place(mesh: Mesh, grid: Any, keys: Array) -> tuple[Any, Array]:
    """Place `grid`'s arrays (a leading configurations axis: learners, or each
    hyperparameter's values) on the mesh's `configs` axis and `keys` on its `seeds`
    axis, as global arrays; the sizes must divide (`shard_batch` checks them)."""
    over_configs = NamedSharding(mesh, PartitionSpec(CONFIGS))
    dynamic, static = eqx.partition(grid, eqx.is_array)
    dynamic = jax.tree.map(lambda a: _put(np.asarray(a), over_configs), dynamic)
    typed = jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key)
    data = np.asarray(jax.random.key_data(keys) if typed else keys)
    sharded = _put(data, NamedSharding(mesh, PartitionSpec(SEEDS, None)))
    if typed:
        sharded = jax.random.wrap_key_data(sharded, impl=jax.random.key_impl(keys))
    return eqx.combine(dynamic, static), sharded
