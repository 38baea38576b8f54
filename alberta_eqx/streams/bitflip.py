"""The bit-flipping (slowly-changing regression) problem of Dohare, Sutton & Mahmood
(2021, "Continual backprop: stochastic gradient descent with persistent randomness",
sec. 3), on which plain backprop loses plasticity."""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx.streams._base import AbstractStream, TimeStep, step_keys
from alberta_eqx.streams._draws import default_float


class BitFlipState(NamedTuple):
    """The problem after the latest step.

    **Fields:**

    - `key`: the stream's key; step `t` draws its random bits from `fold_in(key, t)`.
    - `flip_key`: period `p`'s flip (or flipping bits) comes from `fold_in(flip_key, p)`.
    - `bits`: the flipping bits of the current period, shape `(f,)`.
    - `period`: the period (`t // flip_interval`) those bits belong to.
    - `hidden_weights`, `hidden_biases`, `thresholds`: the target networks' LTU layer,
      shapes `(k, H, m)`, `(k, H)`, `(k, H)`.
    - `output_weights`, `output_biases`: their output layer, `(k, H)`, `(k,)`.
    """

    key: PRNGKeyArray
    flip_key: PRNGKeyArray
    bits: Float[Array, " f"]
    period: Int[Array, ""]
    hidden_weights: Float[Array, "k H m"]
    hidden_biases: Float[Array, "k H"]
    thresholds: Float[Array, "k H"]
    output_weights: Float[Array, "k H"]
    output_biases: Float[Array, " k"]


def _signs(key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
    """Weights drawn uniformly from {-1, +1}."""
    return jnp.where(jax.random.bernoulli(key, 0.5, shape), 1.0, -1.0).astype(default_float())


class BitFlipStream(AbstractStream[TimeStep]):
    """The bit-flipping problem (Dohare et al. 2021, sec. 3; called the
    slowly-changing regression problem in Dohare et al. 2024).

    The input is `m` bits. The first `f` are *flipping bits*: constant for
    `flip_interval` (`T`) steps, after which one of them, chosen uniformly, is flipped
    (with `flip_one=False`, all `f` are drawn afresh, as the authors' code does by
    default). The other `m - f` bits are drawn uniformly at every step. The target is
    the output of a fixed random network with one hidden layer of `H` linear threshold
    units (LTUs): every weight and bias is drawn uniformly from {-1, +1}, and LTU `i`
    outputs 1 when its input exceeds `theta_i = (m + 1) beta - S_i`, `S_i` the number of
    its `m + 1` incoming weights (the bias counted) that are negative, else 0. The
    target is `y = v . LTU(W x + b) + c`, without noise.

    The paper's settings: `m = 20`, `f = 15`, `T = 10,000`, `H = 100`, `beta = 0.7`
    (the defaults). With `num_targets = k` the stream gives `k` targets per step from
    `k` independent target networks on the same input (a vector target, for
    `MultiHeadLearner`); `target_probability < 1` leaves each of them out (NaN) with
    probability `1 - target_probability`.

    ```python
    import jax
    from alberta_eqx import BitFlipStream

    # 6 input bits, of which 3 flipping bits (one flips every 100 steps); 8 LTUs
    stream = BitFlipStream(num_bits=6, num_flipping_bits=3, flip_interval=100, num_hidden=8)
    state = stream.init(jax.random.key(0))
    timestep, state = stream.step(state, 0)
    timestep.observation  # the 6 bits, as floats
    ```

    **Arguments:**

    - `num_bits`: `m`.
    - `num_flipping_bits`: `f`, `0 <= f <= m`.
    - `flip_interval`: `T`.
    - `num_hidden`: `H`, the target network's LTUs.
    - `beta`: the LTU threshold parameter, in `[0, 1]`.
    - `flip_one`: flip one bit per period (the paper) or redraw all `f` (the code).
    - `num_targets`: None for a scalar target; an int `k` for a vector of `k`.
    - `target_probability`: the probability that each of the `k` targets is given
      (vector targets only).
    """

    num_bits: int = eqx.field(static=True)
    num_flipping_bits: int = eqx.field(static=True)
    flip_interval: int = eqx.field(static=True)
    num_hidden: int = eqx.field(static=True)
    flip_one: bool = eqx.field(static=True)
    num_targets: int | None = eqx.field(static=True)
    beta: Float[Array, ""]
    target_probability: Float[Array, ""]

    def __init__(
        self,
        num_bits: int = 20,
        num_flipping_bits: int = 15,
        flip_interval: int = 10_000,
        num_hidden: int = 100,
        beta: ArrayLike = 0.7,
        flip_one: bool = True,
        num_targets: int | None = None,
        target_probability: ArrayLike = 1.0,
    ):
        self.num_bits = _checks.positive_int("num_bits", num_bits)
        self.num_flipping_bits = _checks.non_negative_int("num_flipping_bits", num_flipping_bits)
        if self.num_flipping_bits > self.num_bits:
            raise ValueError(
                f"num_flipping_bits must be <= num_bits ({num_bits}), got {num_flipping_bits}"
            )
        self.flip_interval = _checks.positive_int("flip_interval", flip_interval)
        self.num_hidden = _checks.positive_int("num_hidden", num_hidden)
        self.beta = _checks.non_negative("beta", beta)
        _checks.ordered("beta", self.beta, "1", jnp.asarray(1.0))
        self.flip_one = bool(flip_one)
        self.num_targets = (
            None if num_targets is None else _checks.positive_int("num_targets", num_targets)
        )
        self.target_probability = _checks.in_unit_interval(
            "target_probability", target_probability
        )
        if self.num_targets is None and float(self.target_probability) != 1.0:
            raise ValueError("target_probability < 1 needs vector targets (num_targets)")

    @property
    def feature_dim(self) -> int:
        return self.num_bits

    def init(self, key: PRNGKeyArray) -> BitFlipState:
        key, flip_key, w_key, b_key, v_key, c_key = jax.random.split(key, 6)
        k, h, m = self.num_targets or 1, self.num_hidden, self.num_bits
        w, b = _signs(w_key, (k, h, m)), _signs(b_key, (k, h))
        # S_i: the negative weights among the m + 1 incoming ones (the bias counted).
        negatives = (m + 1 - jnp.sum(w, -1) - b) / 2
        return BitFlipState(
            key=key,
            flip_key=flip_key,
            bits=self._period_bits(flip_key, 0),
            period=jnp.zeros((), jnp.int32),
            hidden_weights=w,
            hidden_biases=b,
            thresholds=(m + 1) * self.beta.astype(default_float()) - negatives,
            output_weights=_signs(v_key, (k, h)),
            output_biases=_signs(c_key, (k,)),
        )

    def _period_bits(self, key: PRNGKeyArray, period) -> Float[Array, " f"]:
        """Uniform flipping bits for `period` (the first period, or every period
        with `flip_one=False`)."""
        key = jax.random.fold_in(key, period)
        return jax.random.bernoulli(key, 0.5, (self.num_flipping_bits,)).astype(default_float())

    def chunk(
        self, state: BitFlipState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, BitFlipState]:
        f, T = self.num_flipping_bits, self.flip_interval
        t = jnp.asarray(t0) + jnp.arange(num_steps)
        # The periods this chunk spans: at most num_steps // T + 2 of them.
        first = jnp.asarray(t0) // T
        periods = first + jnp.arange(num_steps // T + 2)
        flip_key = state.flip_key
        if self.flip_one:
            # Period p >= 1 flips one bit, drawn from the period's key; the bits of
            # the periods after the state's are its bits with those flips applied.
            chosen = jax.vmap(
                lambda p: jax.random.randint(jax.random.fold_in(flip_key, p), (), 0, max(f, 1))
            )(periods)
            flips = jax.nn.one_hot(chosen, f, dtype=jnp.int32)
            flips = flips * (periods > state.period)[:, None]
            period_bits = (state.bits.astype(jnp.int32) + jnp.cumsum(flips, axis=0)) % 2
            period_bits = period_bits.astype(default_float())
        else:
            period_bits = jax.vmap(lambda p: self._period_bits(flip_key, p))(periods)
        index = t // T - first
        flipping = period_bits[index]
        keys = step_keys(state.key, t0, num_steps)
        random_bits = jax.vmap(lambda key: jax.random.bernoulli(key, 0.5, (self.num_bits - f,)))(
            keys
        ).astype(default_float())
        x = jnp.concatenate([flipping, random_bits], axis=1)
        # y = v . LTU(W x + b) + c, one per target network.
        pre = jnp.einsum("khm,tm->tkh", state.hidden_weights, x) + state.hidden_biases
        ltu = (pre > state.thresholds).astype(default_float())
        y = jnp.sum(ltu * state.output_weights, -1) + state.output_biases  # (t, k)
        num_targets = self.num_targets  # a local: mypy narrows it inside the lambda
        if num_targets is None:
            y = y[:, 0]
        else:
            given = jax.vmap(
                lambda key: jax.random.bernoulli(
                    jax.random.fold_in(key, 2), self.target_probability, (num_targets,)
                )
            )(keys)
            y = jnp.where(given, y, jnp.nan)
        last = index[-1]
        new_state = state._replace(bits=period_bits[last], period=periods[last])
        return TimeStep(x, y), new_state
