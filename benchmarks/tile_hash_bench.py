"""The hashed tile coder's cost against the number of inputs: microseconds per step of
`TileCoder(1, [100] * d, size=2**14).indices` inside a compiled scan, and the first
call's time (tracing and compilation included), for d inputs and one integer input.

A step hashes a tuple of `d + 2` coordinates (CPython's tuple hash in 32-bit words,
`python_tuple_hash_mod`). Written as one unrolled expression, the hash's compiled
step grew with d far faster than linearly (bsuite's umbrella_distract, 70 to 100
inputs, stalled); as a loop it grows linearly.

    python benchmarks/tile_hash_bench.py [--dims 1 10 40 60 70 100] [--steps 2000]
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from alberta_eqx.streams.tiles import TileCoder


def rate(d: int, steps: int, repeats: int) -> tuple[float, float]:
    """(first call's seconds, median microseconds per step of `repeats` calls)."""
    coder = TileCoder(1, [100.0] * d, size=2**14)

    @jax.jit
    def run(x):
        def body(x, _):  # the next input depends on the index: nothing is hoisted
            return x + 0.001 * coder.indices(x, jnp.asarray([1]))[0], None

        return jax.lax.scan(body, x, length=steps)[0]

    x = jnp.linspace(0.0, 1.0, d)
    began = time.perf_counter()
    run(x).block_until_ready()
    first = time.perf_counter() - began
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run(x).block_until_ready()
        times.append(time.perf_counter() - began)
    return first, 1e6 * statistics.median(times) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[1, 10, 40, 60, 70, 100])
    parser.add_argument("--steps", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'inputs':>7} {'first call s':>13} {'us/step':>8}")
    for d in args.dims:
        first, per_step = rate(d, args.steps, args.repeats)
        print(f"{d:>7} {first:>13.2f} {per_step:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
