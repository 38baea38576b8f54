"""What `alberta-eqx run` runs, as data: a stream, one or more learner configurations,
and the run's length, built from built-in names or from import paths to the user's
own classes and functions (`mypkg.streams:MyStream`), with keyword arguments.

A `RunSpec` is plain data (strings, numbers, dicts), so it is written to `run.json`
beside the results and read back from a TOML file:

```toml
stream = "scale-drift"            # a built-in name, or "package.module:Name"
steps = 200000
seeds = 10
window = 100

[stream_args]
feature_dim = 10

[[learners]]                      # one table per configuration, compared on paired seeds
name = "Autostep + EMA"
optimizer = "autostep"
normalizer = "ema"

[[learners]]
name = "IDBD"
optimizer = "idbd"
optimizer_args = { meta_step_size = 0.01 }
```
"""

import dataclasses
import importlib
import inspect
import tomllib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import alberta_eqx as ae

# Built-in streams: name -> class. `feature_dim` and the other keyword arguments go
# to the class as given (a stream with a fixed width takes no feature_dim).
STREAMS: dict[str, Callable[..., ae.AbstractStream]] = {
    "drifting-target": ae.DriftingTargetStream,
    "abrupt-change": ae.AbruptChangeStream,
    "sutton1992": ae.SuttonExperiment1Stream,
    "cyclic": ae.CyclicStream,
    "periodic": ae.PeriodicChangeStream,
    "dynamic-scale-shift": ae.DynamicScaleShiftStream,
    "scale-drift": ae.ScaleDriftStream,
    "nonlinear-teacher": ae.NonlinearTeacherStream,
    "random-walk-chain": ae.RandomWalkChainStream,
}
# Built-in optimizers for the linear learners (LinearLearner, TDLinearLearner).
OPTIMIZERS: dict[str, Callable[..., Any]] = {
    "lms": ae.LMS,
    "idbd": ae.IDBD,
    "autostep": ae.Autostep,
}
NORMALIZERS: dict[str, Callable[..., Any] | None] = {
    "none": None,
    "ema": ae.EMANormalizer,
    "welford": ae.WelfordNormalizer,
}


class SpecError(ValueError):
    """A specification that cannot be built; the message names the field and value."""


@dataclasses.dataclass
class LearnerSpec:
    """One configuration: a learner, its optimizer and normalizer, with arguments.

    **Fields:**

    - `name`: its label in tables and plots.
    - `learner`: `"linear"` (`LinearLearner`), `"td-linear"` (`TDLinearLearner`),
      `"mlp"` (`MLPLearner`, `hidden_sizes` in `learner_args`, default `[32]`) or an
      import path `"module:function"` called as
      `function(feature_dim=..., optimizer=..., key=..., **learner_args)` (each
      passed only when the function takes it).
    - `optimizer`: a built-in name (`lms`, `idbd`, `autostep`) or an import path,
      called with `optimizer_args`.
    - `normalizer`: `none`, `ema`, `welford` or an import path.
    - `learner_args`, `optimizer_args`, `normalizer_args`: keyword arguments.
    """

    name: str
    learner: str = "linear"
    optimizer: str = "idbd"
    normalizer: str = "none"
    learner_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    optimizer_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    normalizer_args: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class RunSpec:
    """A whole run: the stream, the configurations, and the run's size."""

    stream: str = "drifting-target"
    stream_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    learners: list[LearnerSpec] = dataclasses.field(default_factory=list)
    steps: int = 100_000
    seeds: int = 10
    seed: int = 0
    window: int = 100

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve(kind: str, name: str, builtins: Mapping[str, Any]) -> Any:
    """A built-in by name, or the object an import path `"module:attribute"` names."""
    if name in builtins:
        return builtins[name]
    if ":" not in name:
        known = ", ".join(builtins) if len(builtins) <= 12 else "a public name of alberta_eqx"
        raise SpecError(
            f"{kind} {name!r} is neither a built-in ({known}) nor an "
            "import path 'package.module:Name'"
        )
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise SpecError(f"{kind} {name!r}: cannot import {module_name!r} ({error})") from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise SpecError(f"{kind} {name!r}: {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise SpecError(f"{kind} {name!r} is not callable")
    return target


def _parameters(function: Callable[..., Any]) -> dict[str, inspect.Parameter] | None:
    """The keyword parameters `function` takes; None when it takes **kwargs."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return {
        name: p
        for name, p in parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


def call(kind: str, name: str, function: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """`function(**kwargs)`, refusing an argument it does not take (naming the ones
    it does) and turning its own errors into a `SpecError` naming `kind`."""
    parameters = _parameters(function)
    if parameters is not None:
        unknown = [k for k in kwargs if k not in parameters]
        if unknown:
            raise SpecError(
                f"{kind} {name!r} takes no argument {', '.join(map(repr, unknown))}; it "
                f"takes {', '.join(parameters) or 'no arguments'}"
            )
    try:
        return function(**kwargs)
    except (TypeError, ValueError) as error:
        raise SpecError(f"{kind} {name!r}: {error}") from None


def parse_value(text: str) -> Any:
    """A command-line value: TOML syntax where it parses (`0.01`, `1e4`, `true`,
    `[32, 32]`, `"text"`), otherwise the text itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignments(option: str, items: Sequence[str]) -> dict[str, Any]:
    """`["a=1", "b=x"]` -> `{"a": 1, "b": "x"}`; `option` names the source in errors."""
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"{option} expects NAME=VALUE, got {item!r}")
        result[key.strip()] = parse_value(value.strip())
    return result


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """`["meta_step_size=0.001,0.01"]` -> `{"meta_step_size": [0.001, 0.01]}`."""
    grid = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise SpecError(f"--grid expects NAME=V1,V2,..., got {item!r}")
        grid[key.strip()] = [parse_value(v.strip()) for v in values.split(",")]
    return grid


def read_toml(path: str) -> dict[str, Any]:
    """A TOML specification file as a dict (see the module docstring)."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as error:
        raise SpecError(f"--config {path!r}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"--config {path!r} is not valid TOML: {error}") from None


def spec_from_dict(data: Mapping[str, Any], base: RunSpec | None = None) -> RunSpec:
    """A `RunSpec` from a TOML file's contents (its fields, with `[[learners]]`
    tables), on top of `base`; unknown keys are refused by name."""
    spec = dataclasses.replace(base) if base is not None else RunSpec()
    fields = {f.name for f in dataclasses.fields(RunSpec)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise SpecError(f"unknown keys {unknown}; a specification has {sorted(fields)}")
    for key, value in data.items():
        if key == "learners":
            spec.learners = []
            learner_fields = {f.name for f in dataclasses.fields(LearnerSpec)}
            for i, table in enumerate(value):
                bad = [k for k in table if k not in learner_fields]
                if bad:
                    raise SpecError(
                        f"learners[{i}] has unknown keys {bad}; a learner has "
                        f"{sorted(learner_fields)}"
                    )
                spec.learners.append(LearnerSpec(**{"name": f"config {i}", **table}))
        elif key in ("steps", "seeds", "window", "seed"):
            low = 0 if key == "seed" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SpecError(f"{key} must be a whole number >= {low}, got {value!r}")
            setattr(spec, key, value)
        elif key == "stream_args" and not isinstance(value, dict):
            raise SpecError(f"stream_args must be a table, got {value!r}")
        else:
            setattr(spec, key, value)
    return spec
