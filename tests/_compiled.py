"""Compiled calls for the tests.

Run eagerly, every operation of a network's initialisation or of a learner's update
compiles a small program of its own (hundreds per test file, most of the suite's
time); compiled, the whole call is one program per structure of its arguments.
"""

import equinox as eqx
import jax.numpy as jnp


@eqx.filter_jit
def compiled(f, *args, **kwargs):
    """`f(*args, **kwargs)` as one compiled program: its arrays traced, everything
    else (sizes, options, functions) static. `f` may be a module's bound method."""
    return f(*args, **kwargs)


def update(learner, x, y):
    """`learner.update(x, y)`, compiled; `x` and `y` may be NumPy arrays or floats."""
    return compiled(learner.update, jnp.asarray(x), jnp.asarray(y))
