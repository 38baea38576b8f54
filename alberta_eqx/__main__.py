"""`python -m alberta_eqx`: a short demo — IDBD and LMS tracking a drifting target."""

import jax

from alberta_eqx import IDBD, LMS, LinearLearner, SuttonExperiment1Stream, run_learning_loop


def main() -> None:
    stream = SuttonExperiment1Stream()
    print("Sutton (1992) Experiment 1: 20 inputs, 5 relevant, one sign flips every 20 steps")
    print("mean squared error over steps 20,000-30,000 (paper: LMS ~3.5, IDBD ~1.5)")
    for name, optimizer in [
        ("LMS  alpha=0.04", LMS(0.04)),
        ("IDBD theta=0.01", IDBD(initial_step_size=0.05, meta_step_size=0.01)),
    ]:
        learner = LinearLearner(stream.feature_dim, optimizer, use_bias=False)
        result = run_learning_loop(
            learner, stream, 30_000, jax.random.key(0), metrics_window=10_000
        )
        print(f"  {name}: {float(result.metrics.squared_error[-1]):.2f}")


if __name__ == "__main__":
    main()
