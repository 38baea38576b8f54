"""The control tests' one way to write a transition from plain values."""

import jax.numpy as jnp

from alberta_eqx.control import ControlTransition


def make_transition(s, a, r, s_next, terminated=False, truncated=False) -> ControlTransition:
    """`ControlTransition` of arrays from Python or NumPy values."""
    return ControlTransition(
        jnp.asarray(s),
        jnp.asarray(a),
        jnp.asarray(r),
        jnp.asarray(s_next),
        jnp.asarray(terminated),
        jnp.asarray(truncated),
    )
