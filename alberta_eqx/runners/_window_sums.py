"""Metrics windows longer than a block: each window's sums are carried from block to
block (compensated), so memory stays within one block whatever the window."""

import equinox as eqx
import jax
import jax.numpy as jnp

from alberta_eqx.runners._plan import _Plan
from alberta_eqx.runners._scan import _block, _blocks, _filter_scan, _flatten
from alberta_eqx.streams import AbstractStream


def _kahan_add(total, x):
    """Add `x` to the compensated sum `total = (sum, compensation)` (Kahan): a window
    of 10^9 steps sums 10^5 block sums, which plain float32 addition would round
    away."""
    s, c = total
    y = jax.tree.map(jnp.subtract, x, c)
    t = jax.tree.map(jnp.add, s, y)
    return t, jax.tree.map(lambda t, s, y: (t - s) - y, t, s, y)


def _windows(inner, stream: AbstractStream, start, plan: _Plan):
    """The run as a scan over metrics windows longer than a block: each window is a
    scan over blocks whose metrics' sums are carried, so memory stays within one
    block whatever the window's length."""

    def fold(total, metrics):
        return _kahan_add(total, jax.tree.map(lambda a: a.sum(axis=0), metrics)), None

    shapes = eqx.filter_eval_shape(lambda i: _block(i, stream, start, plan.block, plan)[1], inner)
    zero = jax.tree.map(lambda a: jnp.zeros(a.shape[1:], a.dtype), shapes)

    def window(inner, w0):
        (inner, (total, _)), _, records = _blocks(
            (inner, (zero, zero)), stream, w0, plan.window, plan, fold
        )
        return inner, (jax.tree.map(lambda a: a / plan.window, total), records)

    starts = start + jnp.arange(plan.num_steps // plan.window, dtype=jnp.int32) * plan.window
    inner, (metrics, records) = _filter_scan(window, inner, starts)
    return inner, metrics, _flatten(records)
