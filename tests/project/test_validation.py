"""Every bad input in docs/validation.md raises the documented error with the
documented message: the tables are the test's data, so the page cannot drift from
the code."""

import re
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest

import alberta_eqx
import alberta_eqx.optax
from alberta_eqx.checkpoint import save_checkpoint

PAGE = Path(__file__).parents[2] / "docs" / "validation.md"
ROW = re.compile(
    r"^\| (?P<input>[^|]+) \| `(?P<example>[^|]+)` \| `(?P<error>\w+)` \| `(?P<message>.+)` \|$"
)


def _rows() -> list[dict[str, str]]:
    rows = [m.groupdict() for m in map(ROW.match, PAGE.read_text().splitlines()) if m]
    assert len(rows) > 50, "the tables of docs/validation.md were not found"
    return rows


def _namespace() -> dict:
    """What the page says its examples use."""
    namespace = {name: getattr(alberta_eqx, name) for name in alberta_eqx.__all__}
    namespace |= {
        "alberta_eqx": alberta_eqx,
        "eqx": eqx,
        "jax": jax,
        "jnp": jnp,
        "np": np,
        "save_checkpoint": save_checkpoint,
        "learner": alberta_eqx.LinearLearner(3),
        "stream": alberta_eqx.DriftingTargetStream(3),
        "key": jax.random.key(0),
    }
    return namespace


@pytest.mark.parametrize("row", _rows(), ids=lambda row: row["example"][:60])
def test_documented_error(row, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a checkpoint example must not write into the checkout
    with pytest.raises(Exception) as info:
        eval(row["example"], _namespace())
    error = info.value
    if isinstance(error, jaxtyping.TypeCheckError):
        # The import hook checked the annotation before the body's own check could
        # run: the same type of error, naming the same argument.
        argument = row["message"].split()[0]
        assert row["error"] == "TypeError"
        assert f"'{argument}'" in str(error) or f" {argument}=" in str(error), str(error)
    else:
        assert type(error).__name__ == row["error"]
        assert str(error) == row["message"]
    assert not list(tmp_path.iterdir())


def _mismatches() -> list[str]:
    """Run every example; describe each that does not raise exactly as documented."""
    namespace, found = _namespace(), []
    for row in _rows():
        try:
            eval(row["example"], namespace)
            found.append(f"{row['example']}: no error")
        except Exception as error:  # any exception: its type is compared
            if type(error).__name__ != row["error"] or str(error) != row["message"]:
                found.append(f"{row['example']}: {type(error).__name__}: {error}")
    return found


@pytest.mark.slow
def test_documented_messages_without_the_import_hook(tmp_path):
    """The rows the hook pre-empts above, checked word for word in a plain process."""
    done = subprocess.run(
        [sys.executable, __file__], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.uint8, jnp.complex64, bool])
def test_observations_of_other_dtypes_are_refused_in_a_run(dtype):
    """A stream producing integer, complex or boolean observations is refused when
    the run is traced, naming `x`, rather than learning from cast values."""

    class CastStream(alberta_eqx.AbstractStream):
        inner: alberta_eqx.DriftingTargetStream
        feature_dim: int = 3

        def init(self, key):
            return self.inner.init(key)

        def chunk(self, state, t0, num_steps):
            timesteps, state = self.inner.chunk(state, t0, num_steps)
            return timesteps._replace(observation=timesteps.observation.astype(dtype)), state

    learner = alberta_eqx.LinearLearner(3, alberta_eqx.IDBD())
    with pytest.raises(TypeError, match=r"\bx\b"):
        alberta_eqx.run_learning_loop(
            learner, CastStream(alberta_eqx.DriftingTargetStream(3)), 10, jax.random.key(0)
        )


def test_integer_targets_are_accepted():
    learner = alberta_eqx.LinearLearner(3, alberta_eqx.LMS(0.5))
    as_int, _ = learner.update(jnp.ones(3), 2)
    as_float, _ = learner.update(jnp.ones(3), 2.0)
    assert np.array_equal(as_int.weights, as_float.weights)
    assert np.all(as_int.weights > 0)


if __name__ == "__main__":
    mismatches = _mismatches()
    print("\n".join(mismatches))
    sys.exit(1 if mismatches else 0)


def test_checks_in_one_home():
    """`_checks`' shared checks: the closed unit interval for scalars and arrays, one
    probability tolerance, the default float read at call time, and tracers left to
    the concrete inputs."""
    from alberta_eqx import _checks

    assert _checks.default_float() == np.float32
    with jax.enable_x64(True):
        assert _checks.default_float() == np.float64
    for good in (0.0, 1.0, [0.0, 0.5, 1.0]):
        np.testing.assert_array_equal(_checks.unit_interval_closed("x", good), good)
    for bad in (-0.5, 1.5, [0.5, 1.5], [np.nan]):
        with pytest.raises(ValueError, match=r"x must be in \[0, 1\]"):
            _checks.unit_interval_closed("x", bad)
    # a sum off by 1e-6 (float32 rounding) passes, one off by 1e-4 does not
    assert _checks.probabilities("p", [0.5, 0.500001]).dtype == np.float32
    with pytest.raises(ValueError, match="p must sum to 1"):
        _checks.probabilities("p", [0.5, 0.5001])
    with pytest.raises(ValueError, match="p must be a vector"):
        _checks.probabilities("p", [[0.5, 0.5]])
    assert _checks.probabilities("p", [[0.5, 0.5]], batched=True).shape == (1, 2)
    with pytest.raises(ValueError, match="p must be non-negative and finite"):
        _checks.probabilities("p", [1.5, -0.5])
    with pytest.raises(TypeError, match="flag must be a bool"):
        _checks.flag("flag", 1)
    # traced: unchecked here (the values are unknown), and is_traced says so
    traced = jax.jit(lambda v: (_checks.unit_interval_closed("x", v), _checks.is_traced(v)))
    value, was_traced = traced(jnp.asarray(1.5))
    assert was_traced and float(value) == 1.5
    assert not _checks.is_traced(jnp.asarray(1.5))
