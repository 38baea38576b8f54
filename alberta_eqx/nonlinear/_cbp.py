"""Continual backprop (Dohare et al. 2024, Nature, "Loss of plasticity in deep
continual learning", Algorithm 1): a utility and an age per hidden unit, and the
replacement of the least useful mature units by freshly initialised ones.

Everything here works on fixed shapes (masks over units, no Python loop over units),
so it runs inside the runners' compiled scans.
"""

from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx._checks import ArrayLike
from alberta_eqx.nonlinear._resets import AbstractUnitReset

# Ages are int32 (JAX's default integer without x64): the largest is 2**31 - 1.
_MAX_AGE = 2**31 - 1


def contribution_utility(
    hidden: Float[Array, " n"], outgoing: Float[Array, "m n"]
) -> Float[Array, " n"]:
    """The instantaneous contribution utility of each unit of a hidden layer,
    `|h_i| sum_k |w_ik|` over its outgoing weights `w_ik` (Dohare et al. 2024,
    Algorithm 1).

    **Arguments:**

    - `hidden`: the layer's activations `h`, shape `(n,)`.
    - `outgoing`: the next layer's weights, shape `(m, n)` (row `k`: unit `k` of the
      next layer), as `eqx.nn.Linear.weight` holds them.
    """
    return jnp.abs(hidden) * jnp.sum(jnp.abs(outgoing), axis=0)


class ContinualBackprop(AbstractUnitReset):
    """Continual backprop's per-unit bookkeeping, for every hidden layer of a network
    (Dohare et al. 2024, Algorithm 1). Per hidden unit `i` of layer `l`, each step:

        u_i <- eta u_i + (1 - eta) |h_i| sum_k |w_ik|        (contribution utility)
        a_i <- a_i + 1                                      (age)

    then `rho` times the number of mature units (`a_i > m`) is added to a running count
    of units to replace; when that count reaches whole units, that many of the mature
    units with the lowest utility are replaced (the count keeps the fraction). A
    replaced unit's incoming weights are drawn again from the network's initial
    distribution, its outgoing weights are set to 0 (so the network's output does not
    change), and its utility and age are reset to 0. The learner that uses this module
    also resets the optimizer's state of the replaced weights to its initial value.

    Build it with the hyperparameters only and pass it to a learner
    (`MLPLearner(model, optimizer, key=key, unit_reset=ContinualBackprop())`, or
    any learner of an MLP), which calls `init` with its hidden sizes and, after every
    gradient step, `step` with its network (`select` is the bookkeeping alone).

    ```python
    import jax
    import jax.numpy as jnp
    import optax
    from alberta_eqx import ContinualBackprop, MLPLearner
    from alberta_eqx.nn import MLP

    model = MLP(3, "scalar", (8,), key=jax.random.key(0))
    cbp = ContinualBackprop(replacement_rate=1e-4, decay_rate=0.99, maturity_threshold=100)
    learner = MLPLearner(model, optax.sgd(0.01), unit_reset=cbp, key=jax.random.key(1))
    learner, _ = learner.update(jnp.array([1.0, 0.5, -1.0]), 2.0)
    learner.unit_reset.age  # one age per hidden layer's unit: 1 after a step
    learner.unit_reset.utility  # the units' contribution utilities
    ```

    **Arguments:**

    - `replacement_rate`: `rho >= 0`, the fraction of the mature units replaced per
      step (the paper's `1e-4` on the bit-flipping problem).
    - `decay_rate`: `eta` in `[0, 1)`, the utility's decay (the paper's `0.99`).
    - `maturity_threshold`: `m >= 0`, the age in steps before a unit may be replaced
      (the paper's `100`), below `2**31 - 1`: ages are int32 counts that saturate
      at `2**31 - 1` instead of wrapping, so a mature unit stays mature.
    """

    replacement_rate: Float[Array, ""]
    decay_rate: Float[Array, ""]
    maturity_threshold: int = eqx.field(static=True)
    utility: tuple[Float[Array, " _"], ...] | None
    age: tuple[Int[Array, " _"], ...] | None
    to_replace: tuple[Float[Array, ""], ...] | None
    key: PRNGKeyArray | None

    def __init__(
        self,
        replacement_rate: ArrayLike = 1e-4,
        decay_rate: ArrayLike = 0.99,
        maturity_threshold: int = 100,
    ):
        self.replacement_rate = _checks.non_negative("replacement_rate", replacement_rate)
        self.decay_rate = _checks.non_negative("decay_rate", decay_rate)
        concrete = _checks._concrete(self.decay_rate)
        if concrete is not None and not concrete < 1:
            raise ValueError(f"decay_rate must be in [0, 1), got {float(concrete)}")
        self.maturity_threshold = _checks.non_negative_int(
            "maturity_threshold", maturity_threshold
        )
        if self.maturity_threshold >= _MAX_AGE:
            raise ValueError(
                f"maturity_threshold must be < 2**31 - 1 (ages saturate there), got "
                f"{self.maturity_threshold}"
            )
        self.utility = self.age = self.to_replace = self.key = None

    def init(
        self, hidden_sizes: Sequence[int], key: PRNGKeyArray, dtype=None
    ) -> "ContinualBackprop":
        """This module with zero utilities, ages and counts for hidden layers of
        `hidden_sizes` units, and the key its re-initialisations draw from."""
        dtype = dtype or _checks.default_float()
        this = _checks.cast_floating(self, dtype)
        state = (
            tuple(jnp.zeros(n, dtype) for n in hidden_sizes),
            tuple(jnp.zeros(n, jnp.int32) for n in hidden_sizes),
            tuple(jnp.zeros((), dtype) for _ in hidden_sizes),
            key,
        )
        return eqx.tree_at(
            lambda c: (c.utility, c.age, c.to_replace, c.key),
            this,
            state,
            is_leaf=lambda x: x is None,
        )

    def select(
        self,
        hidden: Sequence[Float[Array, " _"]],
        outgoing: Sequence[Float[Array, "_ _"]],
    ) -> tuple["ContinualBackprop", tuple[Bool[Array, " _"], ...]]:
        """One step of the bookkeeping: update the utilities and ages from this step's
        activations `hidden[l]` and the weights `outgoing[l]` leaving layer `l`; return
        the new module and, per layer, the mask of the units to replace now (their
        utility and age already reset)."""
        if self.utility is None or self.age is None or self.to_replace is None:
            raise ValueError("ContinualBackprop has no state yet: call init (a learner does)")
        eta, rho = self.decay_rate, self.replacement_rate
        utilities, ages, counts, masks = [], [], [], []
        for u, a, count, h, w in zip(
            self.utility, self.age, self.to_replace, hidden, outgoing, strict=True
        ):
            u = eta * u + (1 - eta) * contribution_utility(h, w)
            # Age only decides maturity (a > m, m < 2**31 - 1): it saturates rather than
            # wrap to a negative int32, which would make a mature unit immature forever.
            a = optax.safe_increment(a)
            mature = a > self.maturity_threshold
            count = count + rho * jnp.sum(mature)
            number = jnp.floor(count)  # whole units to replace now; the fraction waits
            # The rank of each unit by utility among the mature ones (immature last).
            rank = jnp.argsort(jnp.argsort(jnp.where(mature, u, jnp.inf)))
            replace = mature & (rank < number)
            count = count - number
            utilities.append(jnp.where(replace, 0, u))
            ages.append(jnp.where(replace, 0, a))
            counts.append(count)
            masks.append(replace)
        new = eqx.tree_at(
            lambda c: (c.utility, c.age, c.to_replace),
            self,
            (tuple(utilities), tuple(ages), tuple(counts)),
        )
        return new, tuple(masks)
