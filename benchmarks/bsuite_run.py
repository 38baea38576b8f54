"""bsuite (Osband et al. 2020, "Behaviour Suite for Reinforcement Learning") on gymnax's
ports of its environments, run by our agents inside the compiled control loop, logged
with the `bsuite` package's own CSV logger and scored by its own analysis.

Experiments (bsuite's sweep, `bsuite.sweep.SETTINGS`): `bandit`, `catch`, `deep_sea`,
`discounting_chain`, `memory_len`, `memory_size`, `umbrella_length`,
`umbrella_distract`: 167 bsuite ids. Not run: the `_noise`/`_scale` variants,
`deep_sea_stochastic`, and cartpole, mountain_car and mnist (gymnax has no bsuite port
of those).

Every bsuite id is one run; the ids of an experiment that share the observation's
shape are vmapped in one compiled program (`run_control` in segments), their episode
records turned afterwards into the rows bsuite's `Logging` wrapper would have written
(at its logarithmically spaced episodes: 1, 2, ..., 10, 12, 14, 17, 20, 25, ...), with
the columns `steps, episode, total_return, episode_len, episode_return` and each
environment's `bsuite_info()`, written by `bsuite.logging.csv_logging.Logger`.

The adapter (`BsuiteAdapter`) makes gymnax's ports behave as bsuite's environments do
where they differ (see `docs/bsuite.md`):

- bsuite ends every episode by termination; gymnax's DiscountingChain ends by its time
  limit (100 steps, a truncation): the adapter reports it as a termination.
- gymnax's SimpleBandit draws a new arm permutation at every reset, that is every step;
  bsuite's keeps one per `mapping_seed` for the whole run: the adapter resets the
  bandit with one fixed key per bsuite id.
- DeepSea's action mapping is bsuite's own (`RandomState(mapping_seed).binomial`), so
  that `deep_sea/i` is bsuite's `deep_sea/i`.
- UmbrellaChain's intermediate rewards are +-1 coin flips that bsuite scores not at
  all (its `total_regret` counts the final reward); the loop records returns only, so
  for umbrella the recorded return is the final reward alone (the `episode_return` and
  `total_return` columns hold it; `total_regret` is what is scored).

The `bsuite_info` columns are computed from the episode returns, exactly as bsuite's
environments accumulate them: regrets of catch (`1 - R`), bandit (`1 - R`), memory and
umbrella (`2` per failed episode); deep_sea's `denoised_return` counts the episodes
that reached the treasure and `total_bad_episodes` those that did not (in the
deterministic DeepSea an episode leaves the diagonal exactly when it misses the
treasure).

Agents: `stream_q`, Stream Q(lambda) (Elsayed et al. 2024, the authors' defaults,
exploration over 5% of each id's run) on the flattened observation; `sarsa_lambda`,
tabular SARSA(lambda) (`SarsaLambda`, replacing traces, alpha 0.1, lambda 0.9,
gamma 0.99, epsilon-greedy 0.05) through a one-tiling tile coder: catch and deep_sea's
one-hot grids decoded into positions and numbered densely (exactly tabular), the
other observations hashed at a resolution of 0.01 into 16,384 tiles.

    PYTHONPATH=. python benchmarks/bsuite_run.py --results /tmp/bsuite --episodes 1000 \\
        --agents stream_q sarsa_lambda --figure docs/images/bsuite-radar.png
"""

import argparse
import collections
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray, PyTree

from alberta_eqx.control import (
    EpsilonGreedy,
    SarsaLambda,
    StreamQ,
    run_control,
    start_control,
)
from alberta_eqx.streams.tiles import TileCoder

EXPERIMENTS = (
    "bandit",
    "catch",
    "deep_sea",
    "discounting_chain",
    "memory_len",
    "memory_size",
    "umbrella_length",
    "umbrella_distract",
)
AGENTS = ("stream_q", "sarsa_lambda")


class AdapterParams(NamedTuple):
    """**Fields:** the gymnax environment's parameters and the key every reset uses
    where `BsuiteAdapter.fixed_reset` (the bandit's arm permutation)."""

    env_params: PyTree
    reset_key: PRNGKeyArray


class BsuiteAdapter(eqx.Module):
    """A gymnax bsuite port with the control loop's interface, behaving as bsuite's
    environment does (module docstring): it steps with `step_env`, ends an episode at
    termination or the time limit (both a termination, as bsuite's), resets by itself
    (with `params.reset_key` where `fixed_reset`), flattens observations to float32
    (`features` maps them further, for the tabular agent), and, where
    `final_reward_only`, records only an episode's last reward as its return
    (`info["raw_reward"]`).

    **Arguments:**

    - `env`: a gymnax bsuite environment.
    - `features`: observation (flattened) -> the agent's input, or None.
    - `fixed_reset`, `final_reward_only`: as above.
    """

    env: Any = eqx.field(static=True)
    features: Callable | None = eqx.field(static=True, default=None)
    fixed_reset: bool = eqx.field(static=True, default=False)
    final_reward_only: bool = eqx.field(static=True, default=False)

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    @property
    def default_params(self) -> AdapterParams:
        return AdapterParams(self.env.default_params, jax.random.key(0))

    def _observe(self, observation: Array) -> Array:
        observation = jnp.ravel(observation).astype(jnp.float32)
        return observation if self.features is None else self.features(observation)

    def _reset(self, key: PRNGKeyArray, params: AdapterParams) -> tuple[Array, PyTree]:
        return self.env.reset_env(params.reset_key if self.fixed_reset else key, params.env_params)

    def reset(self, key: PRNGKeyArray, params: AdapterParams) -> tuple[Array, PyTree]:
        observation, state = self._reset(key, params)
        return self._observe(observation), state

    def step(self, key: PRNGKeyArray, state: PyTree, action: Array, params: AdapterParams):
        step_key, reset_key = jax.random.split(key)
        final, next_state, reward, done, _ = self.env.step_env(
            step_key, state, action, params.env_params
        )
        # bsuite terminates every episode; gymnax's DiscountingChain truncates at 100
        done = jnp.logical_or(done, self.env.is_truncated(next_state, params.env_params))
        first, reset_state = self._reset(reset_key, params)
        next_state = jax.tree.map(lambda a, b: jnp.where(done, a, b), reset_state, next_state)
        final, first = self._observe(final), self._observe(first)
        reward = jnp.asarray(reward, jnp.float32)
        raw = jnp.where(done, reward, 0.0) if self.final_reward_only else reward
        info = {"final_observation": final, "raw_reward": raw}
        no = jnp.zeros((), bool)
        return jnp.where(done, first, final), next_state, reward, done, no, info


def bsuite_deep_sea_mapping(size: int, mapping_seed: int) -> np.ndarray:
    """bsuite's DeepSea action mapping (`deep_sea.py`: `RandomState(mapping_seed)
    .binomial(1, 0.5, [size, size])`), 1 where action 1 is "right"."""
    return np.random.RandomState(mapping_seed).binomial(1, 0.5, [size, size])


def _catch_positions(o: Array) -> Array:
    # a 10 x 5 board: the ball in rows 0-8 (it reaches row 9 only at the end) and the paddle
    board = o.reshape(10, 5)
    return jnp.stack([jnp.argmax(board[:-1].ravel()), jnp.argmax(board[-1])]).astype(o.dtype)


def _deep_sea_position(o: Array) -> Array:
    # one-hot N x N (all zero after the last row: terminal, never bootstrapped from)
    return jnp.argmax(o)[None].astype(o.dtype)


class Setting(NamedTuple):
    """One bsuite id's run: its environment adapter, parameters, episode count and
    the length of its episodes (every episode of these environments has the same)."""

    bsuite_id: str
    adapter: BsuiteAdapter
    tabular: BsuiteAdapter
    env_params: PyTree
    num_episodes: int
    episode_length: int
    mapping_seed: int


def make_setting(bsuite_id: str, num_episodes: int | None = None) -> Setting:
    """The gymnax environment of a bsuite id, with bsuite's settings (its `load`
    functions) and episode count (or `num_episodes`)."""
    from bsuite import sweep
    from gymnax.environments import bsuite as gb

    experiment = bsuite_id.split("/")[0]
    kwargs = sweep.SETTINGS[bsuite_id]
    mapping_seed = 0
    features, fixed, final_only = None, False, False
    if experiment == "bandit":
        env = gb.SimpleBandit()
        params, length, fixed = env.default_params, 1, True
        mapping_seed = kwargs["mapping_seed"]
    elif experiment == "catch":
        env = gb.Catch()
        params, length, features = env.default_params, 9, _catch_positions
    elif experiment == "deep_sea":
        size = kwargs["size"]
        env = gb.DeepSea(size)
        env.action_mapping = jnp.asarray(bsuite_deep_sea_mapping(size, kwargs["mapping_seed"]))
        params, length, features = env.default_params, size, _deep_sea_position
    elif experiment == "discounting_chain":
        env = gb.DiscountingChain(mapping_seed=kwargs["mapping_seed"] % 5)
        params, length = env.default_params, 100
    elif experiment in ("memory_len", "memory_size"):
        if experiment == "memory_len":  # bsuite's `load`s: 1 bit, or memory length 2
            bits, memory = 1, kwargs["memory_length"]
        else:
            bits, memory = kwargs["num_bits"], 2
        env = gb.MemoryChain(num_bits=bits)
        params, length = env.default_params.replace(memory_length=memory), memory + 1
    elif experiment in ("umbrella_length", "umbrella_distract"):
        chain = kwargs.get("chain_length", 20)
        env = gb.UmbrellaChain(n_distractor=kwargs["n_distractor"])
        params, length, final_only = env.default_params.replace(chain_length=chain), chain, True
    else:
        raise ValueError(f"experiment {experiment!r} is not one of {EXPERIMENTS}")
    module = __import__(f"bsuite.experiments.{experiment}.sweep", fromlist=["NUM_EPISODES"])
    adapter = BsuiteAdapter(env, None, fixed, final_only)
    tabular = BsuiteAdapter(env, features, fixed, final_only)
    return Setting(
        bsuite_id,
        adapter,
        tabular,
        params,
        module.NUM_EPISODES if num_episodes is None else num_episodes,
        length,
        mapping_seed,
    )


def _tile_coder(experiment: str, setting: Setting, feature_dim: int, num_actions: int):
    if experiment == "catch":  # ball index (0-44) and paddle column (0-4), exact
        return TileCoder(1, [1, 1], low=[0, 0], high=[44, 4], int_sizes=(num_actions,))
    if experiment == "deep_sea":
        cells = setting.episode_length**2
        return TileCoder(1, [1], low=[0], high=[cells - 1], int_sizes=(num_actions,))
    return TileCoder(1, [100.0] * feature_dim, size=2**14)


def make_agent(name: str, setting: Setting, feature_dim: int, key: PRNGKeyArray):
    """`stream_q` or `sarsa_lambda` for one bsuite id (module docstring)."""
    num_actions = setting.adapter.num_actions
    if name == "stream_q":
        exploration = max(1, setting.num_episodes * setting.episode_length // 20)
        return StreamQ(feature_dim, num_actions, key=key, exploration_steps=exploration)
    if name == "sarsa_lambda":
        coder = _tile_coder(setting.bsuite_id.split("/")[0], setting, feature_dim, num_actions)
        return SarsaLambda(coder, num_actions, 0.1, 0.9, 0.99, EpsilonGreedy(0.05))
    raise ValueError(f"agent must be one of {AGENTS}, got {name!r}")


def logarithmic_episodes(num_episodes: int) -> np.ndarray:
    """The episodes at which bsuite's `Logging` wrapper writes a row
    (`bsuite.utils.wrappers._logarithmic_logging`), up to `num_episodes`."""
    ratios = [1.0, 1.2, 1.4, 1.7, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    episodes = np.arange(1, num_episodes + 1)
    exponent = np.floor(np.log10(episodes))
    special = 10.0 ** exponent[:, None] * np.asarray(ratios)[None]
    return episodes[np.any(episodes[:, None] == special, axis=1)]


def bsuite_rows(experiment: str, returns: np.ndarray, lengths: np.ndarray) -> list[dict]:
    """The rows bsuite's `Logging` wrapper writes for one run with these episode
    returns and lengths: the standard columns and the environment's `bsuite_info()`
    (module docstring), at the logarithmic episodes."""
    returns = returns.astype(np.float64)
    columns = {
        "steps": np.cumsum(lengths),
        "episode": np.arange(1, len(returns) + 1),
        "total_return": np.cumsum(returns),
        "episode_len": lengths,
        "episode_return": returns,
    }
    if experiment in ("bandit", "catch"):  # regret 1 - R per episode (optimal return 1)
        columns["total_regret"] = np.cumsum(1.0 - returns)
    elif experiment == "deep_sea":
        solved = returns > 0.5  # the treasure's +1 less at most 0.01 of move costs
        columns["total_bad_episodes"] = np.cumsum(~solved)
        columns["denoised_return"] = np.cumsum(solved)
    elif experiment.startswith("memory"):
        columns["total_perfect"] = np.cumsum(returns > 0)
        columns["total_regret"] = np.cumsum(2.0 * (returns < 0))
    elif experiment.startswith("umbrella"):
        columns["total_regret"] = np.cumsum(2.0 * (returns < 0))
    index = logarithmic_episodes(len(returns)) - 1
    return [{k: v[i].item() for k, v in columns.items()} for i in index]


def run_group(
    agent_name: str,
    settings: list[Setting],
    *,
    seed: int = 0,
    segment_steps: int = 10_000,
) -> tuple[np.ndarray, np.ndarray, float]:
    """The ids of `settings` (one experiment, one observation shape) vmapped in one
    program until each has `num_episodes` episodes: `(returns, lengths, seconds)`."""
    tabular = agent_name == "sarsa_lambda"
    adapter = settings[0].tabular if tabular else settings[0].adapter
    num_episodes = max(s.num_episodes for s in settings)
    params = jax.tree.map(lambda *p: jnp.stack(p), *[s.env_params for s in settings])
    reset_keys = jax.vmap(jax.random.key)(jnp.asarray([s.mapping_seed for s in settings]))
    probe, _ = adapter.reset(
        jax.random.key(0), AdapterParams(settings[0].env_params, reset_keys[0])
    )
    feature_dim = probe.shape[0]
    keys = jax.random.split(jax.random.key(seed), len(settings))
    agents = [
        make_agent(agent_name, s, feature_dim, jax.random.fold_in(k, 1))
        for s, k in zip(settings, keys, strict=True)
    ]
    agents = jax.tree.map(lambda *a: jnp.stack(a), *agents)

    def start(agent, key, env_params, reset_key):
        p = AdapterParams(env_params, reset_key)
        return start_control(agent, adapter, key, env_params=p, max_episodes=num_episodes)

    def segment(run, env_params, reset_key):
        p = AdapterParams(env_params, reset_key)
        return run_control(run, adapter, segment_steps, env_params=p)

    begin = time.perf_counter()
    runs = eqx.filter_jit(eqx.filter_vmap(start))(agents, keys, params, reset_keys)
    step = eqx.filter_jit(eqx.filter_vmap(segment))
    needed = np.asarray([s.num_episodes for s in settings])
    while np.any(np.asarray(runs.num_episodes) < needed):
        runs = step(runs, params, reset_keys)
    returns, lengths = np.asarray(runs.returns), np.asarray(runs.lengths)
    return returns, lengths, time.perf_counter() - begin


def run_bsuite(
    agent_name: str,
    results_dir: str,
    experiments=EXPERIMENTS,
    *,
    num_episodes: int | None = None,
    seed: int = 0,
    segment_steps: int = 10_000,
    ids_per_experiment: int | None = None,
    stride: int = 1,
    log: Callable[[str], None] = lambda line: print(line, flush=True),
) -> dict[str, float]:
    """Run `agent_name` on every bsuite id of `experiments` (bsuite's episode counts,
    or `num_episodes`; the first `ids_per_experiment` ids only, if given; every
    `stride`-th id of the experiments that need one program per id), writing bsuite's
    CSVs into `results_dir`. Returns the seconds per experiment."""
    from bsuite import sweep
    from bsuite.logging.csv_logging import Logger

    seconds = {}
    for experiment in experiments:
        ids = [i for i in sweep.SETTINGS if i.split("/")[0] == experiment]
        if experiment in ("deep_sea", "memory_size", "umbrella_distract"):
            ids = ids[::stride]
        settings = [make_setting(i, num_episodes) for i in ids[:ids_per_experiment]]
        groups = collections.defaultdict(list)
        for s in settings:  # one program per observation shape (and environment object)
            groups[(type(s.adapter.env), s.adapter.env.__dict__.__repr__())].append(s)
        total = 0.0
        for group in groups.values():
            returns, lengths, took = run_group(
                agent_name, group, seed=seed, segment_steps=segment_steps
            )
            total += took
            for s, r, n in zip(group, returns, lengths, strict=True):
                logger = Logger(s.bsuite_id, results_dir, overwrite=True)
                for row in bsuite_rows(experiment, r[: s.num_episodes], n[: s.num_episodes]):
                    logger.write(row)
        seconds[experiment] = total
        log(f"{agent_name} {experiment}: {len(settings)} ids in {total:.0f} s")
    return seconds


SCORE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bsuite", "score.py")
SCORE_PYTHON = os.path.join(os.path.dirname(SCORE_SCRIPT), ".venv", "bin", "python")


def score(folders: dict[str, str], *extra: str, python: str = SCORE_PYTHON) -> str:
    """bsuite's analysis (`bsuite/score.py`, in the venv of `bsuite/setup-venv.sh`:
    it predates pandas 2) on the CSVs of `folders` = {agent name: folder}: its
    printed score tables. `extra`: more arguments (`--radar PATH`, ...)."""
    pairs = [f"{name}={folder}" for name, folder in folders.items()]
    result = subprocess.run(
        [python, SCORE_SCRIPT, *pairs, *extra], capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise RuntimeError(f"bsuite's analysis failed:\n{result.stderr[-3000:]}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="a fresh folder for the CSVs")
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), choices=AGENTS)
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS))
    parser.add_argument("--episodes", type=int, help="per id (default: bsuite's count)")
    parser.add_argument("--ids", type=int, help="only the first IDS ids of each experiment")
    parser.add_argument(
        "--stride",
        type=int,
        default=1,
        help="only every STRIDE-th id of deep_sea, memory_size and umbrella_distract "
        "(one compiled program per id there)",
    )
    parser.add_argument("--segment", type=int, default=10_000)
    parser.add_argument("--score-python", default=SCORE_PYTHON)
    parser.add_argument("--score-args", nargs="*", default=[], help="--radar PATH --bar PATH ...")
    args = parser.parse_args()
    folders = {}
    for agent in args.agents:
        folders[agent] = os.path.join(args.results, agent)
        seconds = run_bsuite(
            agent,
            folders[agent],
            args.experiments,
            num_episodes=args.episodes,
            ids_per_experiment=args.ids,
            stride=args.stride,
            segment_steps=args.segment,
        )
        print(f"{agent}: {sum(seconds.values()):.0f} s in all", flush=True)
    if os.path.exists(args.score_python):
        print(score(folders, *args.score_args, python=args.score_python))
    else:
        print(f"not scored: no {args.score_python} (run benchmarks/bsuite/setup-venv.sh)")


if __name__ == "__main__":
    main()
