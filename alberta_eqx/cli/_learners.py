"""The command line's names for the library's rules, learners and streams.

A rule (`idbd`, `obgd`, ...) is one algorithm in up to three forms: the module a
`LinearLearner` takes, the optax transformation the networks take, and the module a
`TDLinearLearner` (and a Horde's demons) takes. A learner name picks the form, the
kind of stream it learns from (examples or transitions) and the defaults of its
required arguments. Every default shown in `--help` is read from the signatures here.
Names given as `package.module:attr` are imported and called as they are.
"""

import dataclasses
import inspect
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

import alberta_eqx as ae
import alberta_eqx.optax as aeo
from alberta_eqx.experiments.runner import LearnerFactory
from alberta_eqx.sweeps import spec


@dataclasses.dataclass(frozen=True)
class Rule:
    """One rule in its forms (None where it has none), and the name of its own
    step-size argument (what `--step-size` sets)."""

    step_size: str
    linear: Callable[..., Any] | None = None
    optax: Callable[..., Any] | None = None
    td: Callable[..., Any] | None = None

    def form(self, form: str) -> Callable[..., Any] | None:
        return getattr(self, form)

    @property
    def defaults(self) -> dict[str, Any]:
        """The rule's defaults: those of its first form's signature (the module's
        where it has one), which the other forms get too (the optax factories leave
        some arguments required, e.g. `lms(step_size)`)."""
        first = next(f for f in (self.linear, self.td, self.optax) if f is not None)
        parameters = spec._parameters(first) or {}
        return {k: p.default for k, p in parameters.items() if p.default is not p.empty}


RULES: dict[str, Rule] = {
    "lms": Rule("step_size", ae.LMS, aeo.lms, ae.LMS),
    "idbd": Rule("initial_step_size", ae.IDBD, aeo.idbd, ae.IDBD),
    "autostep": Rule("initial_step_size", ae.Autostep, aeo.autostep, ae.Autostep),
    "obgd": Rule("step_size", ae.ObGD, aeo.obgd),
    "adaptive-obgd": Rule("step_size", ae.AdaptiveObGD, aeo.adaptive_obgd),
    "trace-sgd": Rule("step_size", optax=aeo.trace_sgd),
}


def horde(
    feature_dim: int,
    optimizer: ae.AbstractOptimizer,
    gammas: Sequence[float] = (0.0, 0.9),
    lambda_: float = 0.0,
    use_bias: bool = True,
) -> ae.Horde:
    """A Horde of linear TD demons predicting the reward at each discount in `gammas`
    (one question per discount), all with trace decay `lambda_`."""
    gamma = jnp.asarray(gammas, dtype=float).reshape(-1)
    reward = jnp.zeros((gamma.size, feature_dim + 1)).at[:, 0].set(1.0)  # column 0: R
    questions = ae.GVFQuestion(reward, gamma, jnp.full(gamma.size, lambda_))
    return ae.Horde(questions, ae.TDLinearLearner(feature_dim, optimizer, use_bias=use_bias))


# The network's construction arguments that the network learners take on the command
# line, with `alberta_eqx.nn.MLP`'s defaults (read from its signature, not repeated).
_NETWORK = {
    name: parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
    for name, parameter in inspect.signature(ae.MLP).parameters.items()
    if name not in ("in_size", "out_size", "key")
}


def _on_network(learner: type, heads: bool = False) -> Callable[..., Any]:
    """A builder of `learner` on an `alberta_eqx.nn.MLP` drawn from the key: it takes
    the network's arguments (`hidden_sizes`, `activation`, `layer_norm`, `sparsity`,
    `dtype`) and the learner's own. The network has a scalar output, or with `heads`
    `num_heads` outputs and the learner's key is the second half of the key."""
    own = {
        name: parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for name, parameter in inspect.signature(learner).parameters.items()
        if name not in ("model", "key")
    }

    def build(*, feature_dim: int, key: Any, num_heads: Any = None, **arguments: Any) -> Any:
        network = {name: arguments.pop(name) for name in _NETWORK if name in arguments}
        if heads:
            key, learner_key = jax.random.split(key)
            arguments["key"] = learner_key
        model = ae.MLP(feature_dim, num_heads if heads else "scalar", key=key, **network)
        return learner(model, **arguments)

    sizes = [inspect.Parameter("feature_dim", inspect.Parameter.KEYWORD_ONLY)]
    if heads:
        sizes.append(inspect.Parameter("num_heads", inspect.Parameter.KEYWORD_ONLY))
    key = inspect.Parameter("key", inspect.Parameter.KEYWORD_ONLY)
    build.__signature__ = inspect.Signature([*sizes, *_NETWORK.values(), *own.values(), key])  # type: ignore[attr-defined]
    build.__name__ = learner.__name__
    return build


@dataclasses.dataclass(frozen=True)
class Kind:
    """A learner: its class (or builder), the form of rule it takes, whether it
    learns from transitions (TD streams) or examples, and defaults for its required
    arguments."""

    build: Callable[..., Any]
    form: str
    td: bool
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)


_HIDDEN = {"hidden_sizes": [32]}
_MULTIHEAD = _on_network(ae.MultiHeadLearner, heads=True)
LEARNERS: dict[str, Kind] = {
    "linear": Kind(ae.LinearLearner, "linear", False),
    "mlp": Kind(_on_network(ae.MLPLearner), "optax", False, _HIDDEN),
    "multihead": Kind(_MULTIHEAD, "optax", False, _HIDDEN),
    "td-linear": Kind(ae.TDLinearLearner, "td", True),
    "td-mlp": Kind(_on_network(ae.TDMLPLearner), "optax", True, _HIDDEN),
    "horde": Kind(horde, "td", True, {"gammas": [0.0, 0.9]}),
}
# Which learners take each form, in messages.
_FORMS = {
    "linear": "learner linear takes",
    "optax": "learners mlp, multihead and td-mlp take",
    "td": "learners td-linear and horde take",
}
STREAMS: dict[str, Callable[..., ae.AbstractStream]] = {
    **spec.STREAMS,
    "bitflip": ae.BitFlipStream,
}


def default_stream(learner: str, stream_args: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The stream `run` gives `learner` when none is named: `random-walk-chain` to the
    learners of transitions, `bitflip` with 4 targets to `multihead`, else
    `drifting-target`."""
    kind = LEARNERS[learner]
    if kind.td:
        return "random-walk-chain", dict(stream_args)
    if kind.build is _MULTIHEAD:
        return "bitflip", {"num_targets": 4, **stream_args}
    return "drifting-target", dict(stream_args)


def _signature(defaults: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in defaults.items())


def optimizer_help() -> str:
    """Each rule with its defaults and the learners that take it, for `--help`."""
    lines = []
    for name, rule in RULES.items():
        learners = [k for k, kind in LEARNERS.items() if rule.form(kind.form) is not None]
        lines.append(f"{name} ({_signature(rule.defaults)}; {', '.join(learners)})")
    return "; ".join(lines)


def learner_help() -> str:
    """Each learner with the streams it takes and its defaults, for `--help`."""
    parts = [
        f"{name} ({_signature(kind.defaults)})" if kind.defaults else name
        for name, kind in LEARNERS.items()
    ]
    return (
        f"{', '.join(parts)}; td-linear, td-mlp and horde learn from TD streams "
        "(random-walk-chain), multihead from a stream of several targets (bitflip with "
        "num_targets), the others from the other streams"
    )


def optimizer_function(learner: str, optimizer: str) -> Callable[..., Any]:
    """What `optimizer` names, in the form `learner` takes (refused, naming the
    accepted combinations, where the rule has no such form)."""
    rule = RULES.get(optimizer)
    if rule is None:
        return spec.resolve("optimizer", optimizer, {n: None for n in RULES})
    kind = LEARNERS.get(learner)
    form = (
        kind.form
        if kind is not None
        else next(f for f in ("linear", "optax", "td") if rule.form(f) is not None)
    )
    function = rule.form(form)
    if function is None:
        takes = [n for n, r in RULES.items() if r.form(form) is not None]
        raise spec.SpecError(
            f"optimizer {optimizer!r} has no form for learner {learner!r}; "
            f"{_FORMS[form]} {', '.join(takes)}"
        )
    return function


def step_size_argument(learner: str, optimizer: str) -> str:
    """The argument `--step-size` sets: the rule's own step-size."""
    if optimizer in RULES:
        return RULES[optimizer].step_size
    takes = spec._parameters(optimizer_function(learner, optimizer)) or {}
    return "step_size" if "step_size" in takes else "initial_step_size"


def _optimizer(config: spec.LearnerSpec) -> Any:
    function = optimizer_function(config.learner, config.optimizer)
    rule = RULES.get(config.optimizer)
    takes = spec._parameters(function)
    defaults = {} if rule is None else rule.defaults
    kwargs = {k: v for k, v in defaults.items() if takes is None or k in takes}
    return spec.call("optimizer", config.optimizer, function, {**kwargs, **config.optimizer_args})


def _normalizer(config: spec.LearnerSpec) -> Any:
    function = spec.resolve("normalizer", config.normalizer, spec.NORMALIZERS)
    if function is None:
        if config.normalizer_args:
            raise spec.SpecError(
                f"normalizer 'none' takes no arguments, got {config.normalizer_args}"
            )
        return None
    return spec.call("normalizer", config.normalizer, function, config.normalizer_args)


def learner_function(name: str) -> Callable[..., Any]:
    """The class or builder a learner name (or import path) names."""
    if name in LEARNERS:
        return LEARNERS[name].build
    return spec.resolve("learner", name, {n: None for n in LEARNERS})


def grid_target(config: spec.LearnerSpec, key: str) -> dict[str, Any]:
    """Where `--grid KEY=...` goes: the optimizer's arguments when it takes `key`,
    else the learner's, else the normalizer's."""
    for function, args in (
        (optimizer_function(config.learner, config.optimizer), config.optimizer_args),
        (learner_function(config.learner), config.learner_args),
        (spec.resolve("normalizer", config.normalizer, spec.NORMALIZERS), config.normalizer_args),
    ):
        if function is None:
            continue
        parameters = spec._parameters(function)
        if parameters is None or key in parameters:
            return args
    raise spec.SpecError(
        f"--grid {key}: neither configuration {config.name!r}'s optimizer "
        f"({config.optimizer}), learner ({config.learner}) nor normalizer "
        f"({config.normalizer}) takes it"
    )


def expand_grid(
    learners: list[spec.LearnerSpec], grid: Mapping[str, list[Any]]
) -> list[spec.LearnerSpec]:
    """Every configuration at every combination of the grid's values, named
    `NAME key=value ...`."""
    if not grid:
        return learners
    expanded = []
    for config in learners:
        for values in itertools.product(*grid.values()):
            new = dataclasses.replace(
                config,
                learner_args=dict(config.learner_args),
                optimizer_args=dict(config.optimizer_args),
                normalizer_args=dict(config.normalizer_args),
            )
            for key, value in zip(grid, values, strict=True):
                grid_target(new, key)[key] = value
            labels = " ".join(f"{k}={v}" for k, v in zip(grid, values, strict=True))
            new.name = f"{config.name} {labels}"
            expanded.append(new)
    return expanded


def build_stream(run: spec.RunSpec) -> ae.AbstractStream:
    function = spec.resolve("stream", run.stream, STREAMS)
    stream = spec.call("stream", run.stream, function, run.stream_args)
    if not isinstance(stream, ae.AbstractStream):
        raise spec.SpecError(
            f"stream {run.stream!r} gave {type(stream).__name__}, not an alberta_eqx "
            "stream (subclass alberta_eqx.AbstractStream)"
        )
    return stream


def _check_pairing(name: str, kind: Kind, stream: ae.AbstractStream, stream_name: str) -> None:
    """A learner of transitions needs a TD stream, one of examples the others; a
    multi-head learner needs several targets."""
    td = isinstance(stream, ae.AbstractTDStream)
    td_learners = ", ".join(n for n, k in LEARNERS.items() if k.td)
    other = ", ".join(n for n, k in LEARNERS.items() if not k.td)
    if kind.td and not td:
        raise spec.SpecError(
            f"learner {name!r} learns from transitions and stream {stream_name!r} gives "
            f"examples: {td_learners} take a TD stream (random-walk-chain or your own); "
            f"{other} take the others"
        )
    if td and not kind.td:
        raise spec.SpecError(
            f"learner {name!r} learns from examples and stream {stream_name!r} gives "
            f"transitions: {td_learners} take a TD stream; {other} take the others"
        )
    if kind.build is _MULTIHEAD and not getattr(stream, "num_targets", None):
        raise spec.SpecError(
            f"learner 'multihead' learns several targets at once and stream "
            f"{stream_name!r} gives one: use --stream bitflip --stream-arg num_targets=N "
            "(or a stream of your own with num_targets)"
        )


def learner_factory(
    config: spec.LearnerSpec, stream: ae.AbstractStream, stream_name: str
) -> LearnerFactory:
    """A function `key -> learner` for `run_experiment`, checked by building it once."""
    function = learner_function(config.learner)
    kind = LEARNERS.get(config.learner)
    if kind is not None:
        _check_pairing(config.learner, kind, stream, stream_name)
    parameters = spec._parameters(function)

    def takes(name: str) -> bool:
        return parameters is None or name in parameters

    if kind is not None and config.normalizer != "none" and not takes("normalizer"):
        raise spec.SpecError(f"learner {config.learner!r} takes no normalizer")
    args = {**(kind.defaults if kind else {}), **config.learner_args}
    if "hidden_sizes" in args and isinstance(args["hidden_sizes"], list | tuple):
        args["hidden_sizes"] = tuple(args["hidden_sizes"])
    if kind is not None and kind.build is _MULTIHEAD:
        args.setdefault("num_heads", getattr(stream, "num_targets", None))  # checked above

    def make(key):
        kwargs = dict(args)
        if takes("feature_dim"):
            kwargs["feature_dim"] = stream.feature_dim
        if takes("key"):
            kwargs["key"] = key
        if takes("optimizer"):
            kwargs["optimizer"] = _optimizer(config)
        if takes("normalizer") and config.normalizer != "none":
            kwargs["normalizer"] = _normalizer(config)
        return spec.call("learner", config.learner, function, kwargs)

    learner = make(jax.random.key(0))
    if not isinstance(learner, ae.AbstractLearner):
        raise spec.SpecError(
            f"learner {config.learner!r} gave {type(learner).__name__}, not an alberta_eqx learner"
        )
    return make
