"""A journaling daemon for `test_journal.py`: it opens (or restores) a
`DurableLearner`, prints how many events it holds and a digest of the learner, then
learns events one after the other, printing each event's index once `update` has
acknowledged it, until it is killed.

    python tests/_workers/durable_daemon.py DIRECTORY POLICY

`test_journal.py` starts it through `run`, as a fork of a process that imported it
once (multiprocessing's fork server).
"""

import hashlib
import os
import sys

import equinox as eqx
import jax
import numpy as np

import alberta_eqx as ae

POLICIES = {
    "event": {"fsync_events": 1},
    "batch": {"fsync_events": 16},
    "time": {"fsync_events": None, "fsync_seconds": 0.005},
}


def learner() -> ae.LinearLearner:
    return ae.LinearLearner(4, ae.IDBD(0.02, meta_step_size=0.01))


def events(n: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    xs = np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)
    noise = np.random.default_rng(1).normal(size=n).astype(np.float32)
    ys = xs @ np.array([1.0, -2.0, 0.5, 0.0], np.float32) + noise
    return xs, ys


def digest(model: ae.LinearLearner) -> str:
    leaves = jax.tree.leaves(eqx.filter(model, eqx.is_array))
    return hashlib.sha256(b"".join(np.asarray(leaf).tobytes() for leaf in leaves)).hexdigest()


def main(directory: str, policy: str) -> None:
    xs, ys = events()
    durable = ae.DurableLearner(learner(), directory, checkpoint_every=97, **POLICIES[policy])
    print("start", durable.events, digest(durable.learner), flush=True)
    while True:
        i = durable.events
        durable.update(xs[i], ys[i])
        print(i, flush=True)


def run(directory: str, policy: str, out) -> None:
    """`main`, printing into `out` (the writing end of a multiprocessing pipe)."""
    sys.stdout = os.fdopen(out.fileno(), "w")
    main(directory, policy)


if __name__ == "__main__":
    main(*sys.argv[1:])
