"""Measures of a network's plasticity: dormant units (Sokar et al. 2023), the effective
rank (Roy and Vetterli 2007) and srank (Kumar et al. 2021) of a layer's features over a
probe batch, the stable rank of each weight matrix, and the weight norm."""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from alberta_eqx import _checks
from alberta_eqx._checks import ArrayLike
from alberta_eqx.nn import MLP


def dormancy_scores(features: Float[Array, "b h"]) -> Float[Array, " h"]:
    """Each unit's dormancy score (ReDo, Sokar, Agarwal, Castro and Evci 2023,
    Definition 3.1),

        s_i = E|h_i| / ((1/H) sum_k E|h_k|),

    the expectations over the batch. When every unit of the layer is silent (the
    denominator is 0) every `s_i` is taken as 0.

    **Arguments:**

    - `features`: the layer's activations over a batch, `(batch, units)`.
    """
    score = jnp.mean(jnp.abs(features), axis=0)
    average = jnp.mean(score)
    positive = average > 0
    return jnp.where(positive, score / jnp.where(positive, average, 1), 0)


def dormant_fraction(features: Float[Array, "b h"], tau: ArrayLike = 0.0) -> Float[Array, ""]:
    """The fraction of tau-dormant units of a layer, those whose `dormancy_scores`
    `s_i <= tau` (ReDo, Sokar et al. 2023); all units when every one is silent.

    **Arguments:**

    - `features`: the layer's activations over a probe batch, `(batch, units)`.
    - `tau`: `tau >= 0` (default 0: a unit is dormant when it is exactly silent).
    """
    tau = _checks.non_negative("tau", tau)
    return jnp.mean((dormancy_scores(features) <= tau).astype(features.dtype))


def _singular_values(matrix: Float[Array, "m n"]) -> Float[Array, " k"]:
    return jnp.linalg.svd(matrix, compute_uv=False)


def effective_rank(features: Float[Array, "b h"]) -> Float[Array, ""]:
    """The effective rank of a matrix (Roy and Vetterli 2007): `exp(H(p))`, the
    exponential of the entropy of its normalised singular values `p_k = sigma_k /
    sum_j sigma_j` (with `0 log 0 = 0`). It is 0 for the zero matrix (no singular
    value carries weight) and `k` for `k` equal nonzero singular values.

    **Arguments:**

    - `features`: the layer's activations over a probe batch, `(batch, units)`.
    """
    sigma = _singular_values(features)
    total = jnp.sum(sigma)
    nonzero = total > 0
    p = sigma / jnp.where(nonzero, total, 1)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1)), 0))
    return jnp.where(nonzero, jnp.exp(entropy), 0)


def srank(features: Float[Array, "b h"], delta: ArrayLike = 0.01) -> Float[Array, ""]:
    """The srank of Kumar, Agarwal, Ghosh and Levine (2021):
    `min {k : sum_{i<=k} sigma_i / sum_i sigma_i >= 1 - delta}`, the singular values
    in decreasing order; 0 for the zero matrix.

    **Arguments:**

    - `features`: the layer's activations over a probe batch, `(batch, units)`.
    - `delta`: in `[0, 1)` (default 0.01, the paper's).
    """
    delta = _checks.unit_interval_open("delta", delta)
    sigma = _singular_values(features)
    total = jnp.sum(sigma)
    cumulative = jnp.cumsum(sigma) / jnp.where(total > 0, total, 1)
    # The count of prefixes still short of 1 - delta, plus one; a zero matrix has none.
    k = jnp.sum(cumulative < 1 - delta) + 1
    return jnp.where(total > 0, k, 0).astype(features.dtype)


def stable_rank(matrix: Float[Array, "m n"]) -> Float[Array, ""]:
    """The stable rank `||W||_F^2 / ||W||_2^2 = sum_k sigma_k^2 / sigma_max^2`; `n` for
    the `n x n` identity, 0 for the zero matrix.

    **Arguments:**

    - `matrix`: a weight matrix, any layout (the singular values do not depend on it).
    """
    sigma = _singular_values(matrix)
    top = sigma[0] ** 2
    return jnp.where(top > 0, jnp.sum(sigma**2) / jnp.where(top > 0, top, 1), 0)


def weight_norm(params: PyTree) -> Float[Array, ""]:
    """The L2 norm of every floating-point array in `params` together (every weight
    and bias of a model).

    **Arguments:**

    - `params`: any pytree, e.g. a model; its non-array leaves are ignored.
    """
    leaves = jax.tree.leaves(eqx.filter(params, eqx.is_inexact_array))
    return jnp.sqrt(sum(jnp.sum(jnp.square(p)) for p in leaves))


class PlasticityDiagnostics(NamedTuple):
    """`plasticity_diagnostics`' measures of an MLP, one per hidden layer where it says
    "per layer".

    **Fields:**

    - `dormant_fraction`: the fraction of tau-dormant units, per hidden layer.
    - `effective_rank`: the features' effective rank, per hidden layer.
    - `srank`: the features' srank, per hidden layer.
    - `stable_rank`: the stable rank of every linear layer's weight matrix, the output
      layer's included.
    - `weight_norm`: the L2 norm of all the parameters.
    """

    dormant_fraction: tuple[Float[Array, ""], ...]
    effective_rank: tuple[Float[Array, ""], ...]
    srank: tuple[Float[Array, ""], ...]
    stable_rank: tuple[Float[Array, ""], ...]
    weight_norm: Float[Array, ""]


def plasticity_diagnostics(
    model: MLP, probe: Float[Array, "b n"], tau: ArrayLike = 0.0, delta: ArrayLike = 0.01
) -> PlasticityDiagnostics:
    """Every measure of this module for an `alberta_eqx.nn.MLP` (a learner's
    `.model`) on a probe batch of inputs. The hidden layers' features are their
    activations after the activation function (`MLP.forward`).

    **Arguments:**

    - `model`: the network.
    - `probe`: inputs `(batch, in_size)`, e.g. a fixed sample of the stream's inputs.
    - `tau`: the dormancy threshold (`dormant_fraction`).
    - `delta`: srank's threshold (`srank`).
    """
    if not isinstance(model, MLP):
        raise TypeError(f"model must be an alberta_eqx.nn.MLP, got {type(model).__name__}")
    hidden = jax.vmap(lambda x: model.forward(x)[1])(probe)
    return PlasticityDiagnostics(
        dormant_fraction=tuple(dormant_fraction(h, tau) for h in hidden),
        effective_rank=tuple(effective_rank(h) for h in hidden),
        srank=tuple(srank(h, delta) for h in hidden),
        stable_rank=tuple(stable_rank(layer.weight) for layer in model.layers),
        weight_norm=weight_norm(model),
    )
