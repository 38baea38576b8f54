"""Network pieces for streaming learning: sparse initialisation and the MLP of the
streaming-RL papers (Elsayed, Vasan and Mahmood 2024, "Streaming Deep Reinforcement
Learning Finally Works").

- `sparse_init`: LeCun-uniform weights `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, then in
  every output unit (row) a random `ceil(sparsity * fan_in)` of its incoming weights
  set to zero (the paper's Algorithm 1, `sparse_init.py` of the authors' code);
  `sparse_linear` applies it to any `eqx.nn.Linear`, with its bias set to zero.
- `MLP`: hidden layers of any widths, each `Linear -> LayerNorm -> activation`, where
  the LayerNorm is Equinox's without a learned scale or shift (optional), then a
  linear output layer; optionally sparse-initialised. It exposes its linear layers
  and every hidden layer's activations (continual backprop's utility needs them).
- `MinAtarNetwork`: the streaming-RL papers' MinAtar network, `Conv2d(3x3, 16) ->
  LayerNorm -> LeakyReLU -> flatten -> Linear(128) -> LayerNorm -> LeakyReLU -> Linear`.
- `sparse_network`: every linear and convolution layer of a network sparse-initialised,
  biases zero (the authors' `initialize_weights`, applied with `nn.Module.apply`).
- `check_network`: the check of a network argument, for the learners and agents that
  take a network (`MLP`, `eqx.nn.MLP` or any module with the same interface).
"""

import math
from collections.abc import Callable, Sequence
from typing import Literal, Protocol, cast, runtime_checkable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from alberta_eqx import _checks

__all__ = [
    "MLP",
    "MinAtarNetwork",
    "Network",
    "check_network",
    "sparse_init",
    "sparse_linear",
    "sparse_network",
]


def _sparsity(value: float) -> float:
    """A Python float in `[0, 1)` (a construction-time setting, never traced)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"sparsity must be a float in [0, 1), got {value!r}")
    if not 0 <= value < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {value}")
    return float(value)


def sparse_init(
    key: PRNGKeyArray, shape: tuple[int, int], sparsity: float = 0.9, *, dtype=None
) -> Float[Array, "fan_out fan_in"]:
    """A sparse weight matrix of shape `(fan_out, fan_in)` (Equinox's and PyTorch's
    layout: one row per output unit).

    Every weight is drawn from LeCun's uniform `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`;
    then in every row `ceil(sparsity * fan_in)` weights, chosen uniformly at random
    and independently per row, are set to zero (Elsayed et al. 2024, Algorithm 1; the
    count is computed as the authors' code computes it, `math.ceil` of the floating
    product).

    **Arguments:**

    - `key`: the randomness of the values and of the zeroed positions.
    - `shape`: `(fan_out, fan_in)`, both `>= 1`.
    - `sparsity`: the fraction of each unit's incoming weights set to zero, in
      `[0, 1)` (the paper uses 0.9).
    - `dtype`: the floating-point dtype (default: JAX's default float).
    """
    if len(shape) != 2:
        raise ValueError(f"shape must be (fan_out, fan_in), got {shape}")
    fan_out = _checks.positive_int("shape[0] (fan_out)", shape[0])
    fan_in = _checks.positive_int("shape[1] (fan_in)", shape[1])
    sparsity = _sparsity(sparsity)
    dtype = dtype or _checks.default_float()
    num_zeros = math.ceil(sparsity * fan_in)
    value_key, mask_key = jax.random.split(key)
    bound = 1 / math.sqrt(fan_in)
    weights = jax.random.uniform(value_key, (fan_out, fan_in), dtype, -bound, bound)
    # Per unit, the inputs with the num_zeros smallest of fan_in uniform draws: a
    # uniformly random subset, as the authors' randperm(fan_in)[:num_zeros], from one
    # sort (jax.random.permutation's rounds of sorting compile several times slower).
    order = jnp.argsort(jax.random.uniform(mask_key, (fan_out, fan_in)), axis=1)
    rows = jnp.arange(fan_out)[:, None]
    zeroed = jnp.zeros((fan_out, fan_in), bool).at[rows, order[:, :num_zeros]].set(True)
    return jnp.where(zeroed, jnp.zeros((), dtype), weights)


def _sparse_layer(
    layer: eqx.nn.Linear | eqx.nn.Conv, key: PRNGKeyArray, sparsity: float
) -> eqx.nn.Linear | eqx.nn.Conv:
    """`layer` with `sparse_init` weights, one row per output unit (a convolution's
    fan-in is its input channels times its kernel's size, as the authors'
    `sparse_init.py` counts it), and a zero bias."""
    fan_out = layer.weight.shape[0]
    fan_in = math.prod(layer.weight.shape[1:])
    weight = sparse_init(key, (fan_out, fan_in), sparsity, dtype=layer.weight.dtype)
    bias = None if layer.bias is None else jnp.zeros_like(layer.bias)
    return eqx.tree_at(
        lambda m: (m.weight, m.bias),
        layer,
        (weight.reshape(layer.weight.shape), bias),
        is_leaf=lambda x: x is None,
    )


def sparse_linear(
    linear: eqx.nn.Linear, *, key: PRNGKeyArray, sparsity: float = 0.9
) -> eqx.nn.Linear:
    """`linear` with sparse-initialised weights (`sparse_init`) and a zero bias.

    **Arguments:**

    - `linear`: any `eqx.nn.Linear` (its shape and dtype are kept).
    - `key`: the randomness of the weights.
    - `sparsity`: the fraction of each output unit's incoming weights set to zero, in
      `[0, 1)`.
    """
    if not isinstance(linear, eqx.nn.Linear):
        raise TypeError(f"linear must be an eqx.nn.Linear, got {type(linear).__name__}")
    return cast(eqx.nn.Linear, _sparse_layer(linear, key, _sparsity(sparsity)))


def _is_layer(node: object) -> bool:
    return isinstance(node, eqx.nn.Linear | eqx.nn.Conv)


def _layers_of(network: eqx.Module) -> list:
    return [node for node in jax.tree.leaves(network, is_leaf=_is_layer) if _is_layer(node)]


def sparse_network(network: eqx.Module, *, key: PRNGKeyArray, sparsity: float = 0.9):
    """`network` with every `eqx.nn.Linear` and `eqx.nn.Conv` layer sparse-initialised
    (`sparse_init`; a convolution's rows are its output channels, its fan-in the input
    channels times the kernel's size) and every bias zero: the authors'
    `initialize_weights` applied to every layer (Elsayed et al. 2024, Algorithm 1).

    **Arguments:**

    - `network`: any module; its other parts are kept.
    - `key`: the randomness, one key per layer in the order of the network's leaves.
    - `sparsity`: the fraction of each output unit's incoming weights set to zero, in
      `[0, 1)`.
    """
    sparsity = _sparsity(sparsity)
    layers = _layers_of(network)
    if not layers:
        raise ValueError(
            f"network must hold eqx.nn.Linear or eqx.nn.Conv layers, got a "
            f"{type(network).__name__} without any"
        )
    keys = jax.random.split(key, len(layers))
    new = [_sparse_layer(layer, k, sparsity) for layer, k in zip(layers, keys, strict=True)]
    return eqx.tree_at(_layers_of, network, new)


class _StaticFunction(eqx.Module):
    """A function held as a module without leaves (`eqx.nn.Lambda` holds its function as
    a leaf)."""

    fn: Callable[[Array], Array] = eqx.field(static=True)

    def __call__(self, x: Array) -> Array:
        return self.fn(x)


class MLP(eqx.Module):
    """A multilayer perceptron as the streaming-RL papers build it:
    `[Linear -> LayerNorm -> activation] x len(hidden_sizes) -> Linear`.

    The LayerNorm is `eqx.nn.LayerNorm(width, use_weight=False, use_bias=False)`:
    no learned scale or shift, `eps = 1e-5`. Without `sparsity` the layers keep
    `eqx.nn.Linear`'s initialisation, and the weights equal `eqx.nn.MLP`'s for the
    same key (the same key per layer).

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx.nn import MLP

    net = MLP(3, "scalar", (8, 8), key=jax.random.key(0))  # 3 -> 8 -> 8 -> 1
    net(jnp.array([1.0, 0.5, -1.0])).shape  # (): a scalar
    sparse = MLP(3, 2, (8,), key=jax.random.key(0), sparsity=0.9)  # the papers' init
    ```

    **Arguments:**

    - `in_size`: the number of inputs.
    - `out_size`: the number of outputs, or `"scalar"` for a scalar output.
    - `hidden_sizes`: the hidden layers' widths, any number of them and any widths,
      e.g. `(128, 64)`; `()` for a linear model.
    - `key`: initialises the weights.
    - `activation`: the hidden layers' activation (default LeakyReLU with slope
      0.01, `jax.nn.leaky_relu`, as the papers use); one function, or a module with
      parameters of its own (e.g. `eqx.nn.PReLU()`, trained with the weights), shared
      by every hidden layer. A function is held static (in a module without leaves).
    - `layer_norm`: parameterless LayerNorm after every hidden linear layer, before
      the activation (default True).
    - `sparsity`: sparse-initialise every linear layer with this sparsity
      (`sparse_linear`), biases zero; None (the default) keeps Equinox's
      initialisation. The papers use 0.9.
    - `dtype`: the parameters' floating-point dtype (default: JAX's default float).
    """

    layers: tuple[eqx.nn.Linear, ...]
    norms: tuple[eqx.nn.LayerNorm, ...] | None
    # A dynamic field, as in `eqx.nn.MLP`: an activation that is a module with
    # parameters (a learnt activation) is trained with the layers.
    activation: Callable[[Array], Array]
    in_size: int = eqx.field(static=True)
    out_size: int | Literal["scalar"] = eqx.field(static=True)
    hidden_sizes: tuple[int, ...] = eqx.field(static=True)
    sparsity: float | None = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int | Literal["scalar"],
        hidden_sizes: Sequence[int],
        *,
        key: PRNGKeyArray,
        activation: Callable[[Array], Array] = jax.nn.leaky_relu,
        layer_norm: bool = True,
        sparsity: float | None = None,
        dtype=None,
    ):
        self.in_size = _checks.positive_int("in_size", in_size)
        if out_size != "scalar":
            out_size = _checks.positive_int("out_size", out_size)
        self.out_size = out_size
        self.hidden_sizes = tuple(_checks.positive_int("hidden_sizes", h) for h in hidden_sizes)
        if not callable(activation):
            raise TypeError(f"activation must be callable, got {activation!r}")
        if sparsity is not None:
            sparsity = _sparsity(sparsity)
        self.sparsity = sparsity
        dtype = dtype or _checks.default_float()
        sizes = (self.in_size, *self.hidden_sizes, out_size)
        # One key per layer, split as eqx.nn.MLP splits them.
        keys = jax.random.split(key, len(sizes) - 1)
        layers = []
        for fan_in, fan_out, layer_key in zip(sizes[:-1], sizes[1:], keys, strict=True):
            linear = eqx.nn.Linear(fan_in, fan_out, dtype=dtype, key=layer_key)
            if sparsity is not None:
                linear = sparse_linear(
                    linear, key=jax.random.fold_in(layer_key, 1), sparsity=sparsity
                )
            layers.append(linear)
        self.layers = tuple(layers)
        self.norms = (
            tuple(
                eqx.nn.LayerNorm(h, use_weight=False, use_bias=False, dtype=dtype)
                for h in self.hidden_sizes
            )
            if layer_norm
            else None
        )
        # A plain function is held static: the network's leaves stay its arrays (a
        # `lax.scan` carries it as it is).
        self.activation = (
            activation if isinstance(activation, eqx.Module) else _StaticFunction(activation)
        )

    def config_arguments(self) -> dict:
        """The activation as given (`to_config` writes a function by name)."""
        activation = self.activation
        return {
            "activation": activation.fn if isinstance(activation, _StaticFunction) else activation
        }

    @property
    def layer_norm(self) -> bool:
        """Whether every hidden layer has a LayerNorm."""
        return self.norms is not None

    @property
    def biases(self) -> tuple[Float[Array, "*batch o"], ...]:
        """Every linear layer's bias, in order."""
        # `eqx.nn.Linear` types its bias Optional (for `use_bias=False`); an MLP builds
        # every layer with a bias, which that type cannot say.
        return tuple(cast(Array, layer.bias) for layer in self.layers)

    def forward(self, x: Float[Array, " n"]) -> tuple[Array, tuple[Array, ...]]:
        """The output for `x` and every hidden layer's activations (after the
        activation function), in order."""
        hidden = []
        for i, layer in enumerate(self.layers[:-1]):
            x = layer(x)
            if self.norms is not None:
                x = self.norms[i](x)
            x = self.activation(x)
            hidden.append(x)
        return self.layers[-1](x), tuple(hidden)

    def __call__(self, x: Float[Array, " n"]) -> Array:
        """The output for `x`: shape `()` for `out_size="scalar"`, else `(out_size,)`."""
        return self.forward(x)[0]


@runtime_checkable
class Network(Protocol):
    """What a learner or an agent reads from the network it is given (`MLP` and
    `eqx.nn.MLP` have it): the input and output sizes, the linear layers (the first
    gives the parameters' dtype, the last is the output layer), and the call."""

    @property
    def in_size(self) -> int | Literal["scalar"]: ...

    @property
    def out_size(self) -> int | Literal["scalar"]: ...

    @property
    def layers(self) -> tuple[eqx.nn.Linear, ...]: ...

    def __call__(self, x: Array) -> Array: ...


def check_network(
    name: str, network: object, *, out_size: int | Literal["scalar"] | None = None
) -> Network:
    """`network`, checked as the network argument `name` of a learner or an agent:
    an `eqx.Module` with an integer `in_size`, an `out_size` (`out_size` when given)
    and `layers`, a non-empty sequence of `eqx.nn.Linear` (the first gives the
    parameters' dtype, the last is the output layer). `MLP` and `eqx.nn.MLP` are
    such networks.

    **Arguments:**

    - `name`: the argument's name, for the error messages.
    - `network`: the value given.
    - `out_size`: the output size the caller needs (`"scalar"` for a scalar output),
      or None for any.
    """
    if not isinstance(network, eqx.Module):
        raise TypeError(
            f"{name} must be a network (an eqx.Module such as alberta_eqx.nn.MLP), got "
            f"{type(network).__name__}"
        )
    layers = getattr(network, "layers", None)
    if (
        not isinstance(getattr(network, "in_size", None), int)
        or not hasattr(network, "out_size")
        or not isinstance(layers, tuple | list)
        or not layers
        or not all(isinstance(layer, eqx.nn.Linear) for layer in layers)
    ):
        raise TypeError(
            f"{name} must have an integer in_size, an out_size and layers of eqx.nn.Linear "
            f"(as alberta_eqx.nn.MLP and eqx.nn.MLP have), got a {type(network).__name__}"
        )
    if out_size is not None and network.out_size != out_size:
        raise ValueError(f"{name} must have out_size={out_size!r}, got {network.out_size!r}")
    return cast(Network, network)


def _layer_norm(x: Array) -> Array:
    """LayerNorm over the whole of `x`, without a learned scale or shift, `eps = 1e-5`
    (the authors' `F.layer_norm(x, x.size())`: a convolution's output is normalised
    over its channels and positions together)."""
    return (x - jnp.mean(x)) / jnp.sqrt(jnp.var(x) + 1e-5)


class MinAtarNetwork(eqx.Module):
    """The streaming-RL papers' MinAtar network (Elsayed et al. 2024, the authors'
    `stream_q_minatar.py`, `stream_sarsa_minatar.py`, `stream_ac_discrete_minatar.py`):

        Conv2d(channels, 3x3, stride 1, no padding) -> LayerNorm -> LeakyReLU
        -> flatten -> Linear(hidden_size) -> LayerNorm -> LeakyReLU -> Linear(out_size)

    The LayerNorms have no learned scale or shift (`eps = 1e-5`); the first normalises
    the convolution's whole output (channels and positions together), as the authors'
    `F.layer_norm(x, x.size())` does. The input is an observation of shape `in_shape`
    (height, width, channels: gymnax's and the `minatar` package's layout), or the
    same numbers flattened; it is moved to channels-first before the convolution, and
    the convolution's output is flattened channel by channel (PyTorch's order).
    Initialised as Equinox initialises its layers; the Stream agents sparse-initialise
    it (`sparse_network`).

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx.nn import MinAtarNetwork

    # a small image: 5x5 pixels, 2 channels; 3 outputs (one per action)
    net = MinAtarNetwork((5, 5, 2), 3, key=jax.random.key(0), hidden_size=8, channels=4)
    net(jnp.zeros((5, 5, 2))).shape  # (3,)
    ```

    **Arguments:**

    - `in_shape`: the observation's `(height, width, channels)` (MinAtar: `(10, 10, C)`).
    - `out_size`: the number of outputs, or `"scalar"` for a scalar output.
    - `key`: initialises the weights.
    - `hidden_size`: the linear hidden layer's width (128).
    - `channels`: the convolution's output channels (16).
    - `kernel_size`: the convolution's square kernel (3).
    - `dtype`: the parameters' floating-point dtype (default: JAX's default float).
    """

    conv: eqx.nn.Conv2d
    hidden: eqx.nn.Linear
    output: eqx.nn.Linear
    in_shape: tuple[int, int, int] = eqx.field(static=True)
    out_size: int | Literal["scalar"] = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)
    channels: int = eqx.field(static=True)
    kernel_size: int = eqx.field(static=True)

    def __init__(
        self,
        in_shape: Sequence[int],
        out_size: int | Literal["scalar"],
        *,
        key: PRNGKeyArray,
        hidden_size: int = 128,
        channels: int = 16,
        kernel_size: int = 3,
        dtype=None,
    ):
        if len(in_shape) != 3:
            raise ValueError(f"in_shape must be (height, width, channels), got {in_shape}")
        height, width, in_channels = (
            _checks.positive_int(f"in_shape[{i}]", n) for i, n in enumerate(in_shape)
        )
        self.in_shape = (height, width, in_channels)
        if out_size != "scalar":
            out_size = _checks.positive_int("out_size", out_size)
        self.out_size = out_size
        self.hidden_size = _checks.positive_int("hidden_size", hidden_size)
        self.channels = _checks.positive_int("channels", channels)
        self.kernel_size = _checks.positive_int("kernel_size", kernel_size)
        if self.kernel_size > min(height, width):
            raise ValueError(
                f"kernel_size ({kernel_size}) must be at most the observation's height and "
                f"width {in_shape[:2]}"
            )
        dtype = dtype or _checks.default_float()
        conv_key, hidden_key, output_key = jax.random.split(key, 3)
        self.conv = eqx.nn.Conv2d(
            in_channels, self.channels, self.kernel_size, dtype=dtype, key=conv_key
        )
        flat = self.channels * (height - kernel_size + 1) * (width - kernel_size + 1)
        self.hidden = eqx.nn.Linear(flat, self.hidden_size, dtype=dtype, key=hidden_key)
        self.output = eqx.nn.Linear(self.hidden_size, out_size, dtype=dtype, key=output_key)

    def __call__(self, x: Float[Array, "..."]) -> Array:
        """The output for an observation: shape `()` for `out_size="scalar"`, else
        `(out_size,)`."""
        x = jnp.moveaxis(jnp.reshape(x, self.in_shape), -1, 0)
        x = jax.nn.leaky_relu(_layer_norm(self.conv(x)))
        x = jax.nn.leaky_relu(_layer_norm(self.hidden(jnp.ravel(x))))
        return self.output(x)
