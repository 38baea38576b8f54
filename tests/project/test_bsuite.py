"""benchmarks/bsuite_run.py: gymnax's bsuite ports against bsuite's own environments
(the same actions give the same observations and rewards where they are
deterministic), the rows we write against those bsuite's own `Logging` wrapper writes
for the same episodes, and a tiny run scored by bsuite's analysis."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

bsuite = pytest.importorskip("bsuite", reason="the bsuite package (extra [bsuite])")
pytest.importorskip("gymnax", reason="gymnax (extra [gymnax])")

from bsuite.environments import catch as bs_catch  # noqa: E402
from bsuite.environments import deep_sea as bs_deep_sea  # noqa: E402
from bsuite.environments import memory_chain as bs_memory  # noqa: E402
from bsuite.utils import wrappers as bs_wrappers  # noqa: E402
from gymnax.environments.bsuite import catch as gx_catch  # noqa: E402
from gymnax.environments.bsuite import deep_sea as gx_deep_sea  # noqa: E402

from benchmarks import bsuite_run  # noqa: E402


def test_catch_port_gives_bsuites_observations_and_rewards():
    """gymnax's Catch started where bsuite's Catch starts (the ball's column is drawn
    by each package's own generator) follows it action for action."""
    env = gx_catch.Catch()
    params = env.default_params
    step = jax.jit(env.step_env)
    ours = bs_catch.Catch(seed=3)
    rng = np.random.default_rng(0)
    for episode in range(6):
        timestep = ours.reset()
        state = gx_catch.EnvState(
            ball_x=jnp.int32(ours._ball_x),
            ball_y=jnp.int32(0),
            paddle_x=jnp.int32(2),
            paddle_y=jnp.int32(9),
            prev_done=False,
            time=jnp.int32(0),
        )
        np.testing.assert_array_equal(env.get_obs(state), timestep.observation)
        while not timestep.last():
            action = int(rng.integers(0, 3))
            timestep = ours.step(action)
            observation, state, reward, done, _ = step(
                jax.random.key(episode), state, action, params
            )
            np.testing.assert_array_equal(observation, timestep.observation)
            assert float(reward) == timestep.reward
            assert bool(done) == timestep.last()


@pytest.mark.slow
def test_deep_sea_port_gives_bsuites_observations_and_rewards():
    """With bsuite's action mapping (mapping seed 42), gymnax's DeepSea through the
    adapter is bsuite's DeepSea: observations (the final all-zero one included),
    rewards and episode ends, for random actions and for the always-right policy."""
    size = 8
    mapping = bsuite_run.bsuite_deep_sea_mapping(size, 42)
    ours = bs_deep_sea.DeepSea(size=size, mapping_seed=42, seed=0)
    np.testing.assert_array_equal(ours._action_mapping, mapping)
    base = gx_deep_sea.DeepSea(size)
    base.action_mapping = jnp.asarray(mapping)
    env = bsuite_run.BsuiteAdapter(base)
    params = bsuite_run.AdapterParams(base.default_params, jax.random.key(0))
    step = jax.jit(env.step)
    rng = np.random.default_rng(1)
    observation, state = env.reset(jax.random.key(0), params)
    for episode in range(5):
        timestep = ours.reset()
        np.testing.assert_array_equal(observation, timestep.observation.ravel())
        t = 0
        while not timestep.last():
            # the last episode goes right all the way: the treasure
            row, column = ours._row, ours._column
            action = int(mapping[row, column]) if episode == 4 else int(rng.integers(0, 2))
            timestep = ours.step(action)
            observation, state, reward, terminated, truncated, info = step(
                jax.random.fold_in(jax.random.key(episode), t), state, action, params
            )
            np.testing.assert_array_equal(info["final_observation"], timestep.observation.ravel())
            np.testing.assert_allclose(float(reward), timestep.reward, rtol=1e-6)
            assert bool(terminated) == timestep.last() and not bool(truncated)
            t += 1
    assert ours._denoised_return == 1 and ours._total_bad_episodes <= 4


@pytest.mark.slow
def test_discounting_chain_port_gives_bsuites_observations_and_rewards():
    """Through the adapter, gymnax's DiscountingChain is bsuite's (mapping seed 7,
    the bonus on action 2): observations, rewards and the end at step 100, which the
    adapter reports as a termination (gymnax truncates there)."""
    from bsuite.environments import discounting_chain as bs_chain

    ours = bs_chain.DiscountingChain(mapping_seed=7)
    setting = bsuite_run.make_setting("discounting_chain/7")
    env = setting.adapter
    params = bsuite_run.AdapterParams(setting.env_params, jax.random.key(0))
    step = jax.jit(env.step)
    observation, state = env.reset(jax.random.key(0), params)
    for first_action in [2, 4]:
        timestep = ours.reset()
        np.testing.assert_allclose(observation, timestep.observation.ravel())
        t = 0
        while not timestep.last():
            action = first_action if t == 0 else t % 5
            timestep = ours.step(action)
            observation, state, reward, terminated, _, info = step(
                jax.random.key(t), state, action, params
            )
            np.testing.assert_allclose(
                info["final_observation"], timestep.observation.ravel(), rtol=1e-6
            )
            np.testing.assert_allclose(float(reward), timestep.reward, rtol=1e-6)
            assert bool(terminated) == timestep.last()
            t += 1
        assert t == 100


class _Rows:
    """A bsuite logger that keeps the rows."""

    def __init__(self):
        self.rows = []

    def write(self, data):
        self.rows.append(dict(data))


@pytest.mark.parametrize(
    "experiment, make",
    [
        ("catch", lambda: bs_catch.Catch(seed=0)),
        ("deep_sea", lambda: bs_deep_sea.DeepSea(size=6, mapping_seed=42, seed=0)),
        ("memory_len", lambda: bs_memory.MemoryChain(memory_length=3, num_bits=1, seed=0)),
    ],
)
def test_rows_equal_bsuites_logging_wrapper(experiment, make):
    """bsuite's own `Logging` wrapper around bsuite's own environment, under a random
    policy for 130 episodes, writes the rows that `bsuite_rows` computes from the
    episodes' returns and lengths (the regrets and counts included)."""
    logger = _Rows()
    env = bs_wrappers.Logging(make(), logger)
    rng = np.random.default_rng(2)
    num_actions = env.action_spec().num_values
    returns, lengths = [], []
    for _ in range(130):
        timestep, total, length = env.reset(), 0.0, 0
        while not timestep.last():
            timestep = env.step(int(rng.integers(0, num_actions)))
            total, length = total + timestep.reward, length + 1
        returns.append(total)
        lengths.append(length)
    ours = bsuite_run.bsuite_rows(experiment, np.asarray(returns), np.asarray(lengths))
    assert len(ours) == len(logger.rows) > 20
    for mine, theirs in zip(ours, logger.rows, strict=True):
        assert mine.keys() == theirs.keys()
        for k in theirs:
            np.testing.assert_allclose(mine[k], theirs[k], rtol=1e-9, atol=1e-9, err_msg=k)


def test_logarithmic_episodes_are_bsuites():
    episodes = [e for e in range(1, 3001) if bs_wrappers._logarithmic_logging(e)]
    np.testing.assert_array_equal(bsuite_run.logarithmic_episodes(3000), episodes)


def test_bandit_keeps_its_arms_across_resets():
    """gymnax's bandit redraws its arms at every reset; the adapter's fixed reset key
    keeps one permutation for the run, as bsuite's `mapping_seed` does."""
    setting = bsuite_run.make_setting("bandit/3")
    env, params = setting.adapter, bsuite_run.AdapterParams(setting.env_params, jax.random.key(3))
    _, state = env.reset(jax.random.key(0), params)
    step = jax.jit(env.step)
    rewards = []
    for t in range(12):
        _, state, reward, terminated, _, _ = step(jax.random.key(t), state, t % 11, params)
        rewards.append(float(reward))
        assert bool(terminated)
    assert rewards[11] == rewards[0]
    assert sorted(rewards[:11]) == pytest.approx(np.linspace(0, 1, 11).tolist())


@pytest.mark.slow
def test_a_tiny_run_is_scored_by_bsuites_analysis(tmp_path):
    """Two catch ids, 20 episodes each, by tabular SARSA(lambda) in the compiled
    loop: bsuite's CSV logger writes them, and bsuite's loader and analysis (in the
    venv of benchmarks/bsuite/setup-venv.sh, where it exists) score them."""
    bsuite_run.run_bsuite(
        "sarsa_lambda",
        str(tmp_path / "sarsa"),
        ["catch"],
        num_episodes=20,
        ids_per_experiment=2,
        segment_steps=60,
        log=lambda _: None,
    )
    written = sorted(p.name for p in (tmp_path / "sarsa").iterdir())
    assert written == ["bsuite_id_-_catch-0.csv", "bsuite_id_-_catch-1.csv"]
    header = (tmp_path / "sarsa" / written[0]).read_text().splitlines()[0]
    assert header == "steps,episode,total_return,episode_len,episode_return,total_regret"
    if not pathlib.Path(bsuite_run.SCORE_PYTHON).exists():
        pytest.skip("no venv for bsuite's analysis (benchmarks/bsuite/setup-venv.sh)")
    out = bsuite_run.score({"sarsa": str(tmp_path / "sarsa")}, "--json", str(tmp_path / "s.json"))
    scores = json.loads((tmp_path / "s.json").read_text())
    assert 0.0 <= scores["by_experiment"]["sarsa"]["catch"] <= 1.0, out
    assert scores["finished"]["sarsa"]["catch"] is False
