"""The small sweep that tests/sweeps/test_sweep.py, test_sharding.py, test_distributed.py
and their worker processes (`sweep_worker.py`) run."""

import alberta_eqx as ae
from alberta_eqx.sweeps import SweepSpec

FEATURES = 3


def learner(initial_step_size, meta_step_size):
    return ae.LinearLearner(FEATURES, ae.IDBD(initial_step_size, meta_step_size=meta_step_size))


# 4 x 2 = 8 configurations, 4 seeds: shards of 4 split over 2 or 4 devices.
SPEC = SweepSpec(
    stream=ae.DriftingTargetStream(FEATURES, drift_rate=0.01),
    learner=learner,
    grid={"initial_step_size": [0.003, 0.01, 0.03, 0.1], "meta_step_size": [0.001, 0.01]},
    num_steps=400,
    seeds=4,
    metrics_window=100,
)

# The same sweep as a sweep file (what `alberta-eqx sweep` reads).
SPEC_TOML = """
num_steps = 400
seeds = 4
metrics_window = 100

[stream]
type = "DriftingTargetStream"
feature_dim = 3
drift_rate = 0.01

[learner]
optimizer = "IDBD"

[grid]
initial_step_size = [0.003, 0.01, 0.03, 0.1]
meta_step_size = [0.001, 0.01]
"""
