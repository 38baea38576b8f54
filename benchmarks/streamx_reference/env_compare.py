"""Steps gymnax's MinAtar and the `minatar` package (the authors' environment) side by
side with the same actions, and reports every difference: observations, rewards,
terminations, and the settings the two differ in (sticky actions, difficulty ramping,
episode limits, observation channels and dtype, action sets).

Run with alberta_eqx's environment (it has gymnax); `minatar` is read from the reference
environment that setup.sh makes (its site-packages appended to the end of `sys.path`, so
alberta_eqx's own numpy comes first; `minatar.Environment` needs nothing but numpy):

    python benchmarks/streamx_reference/env_compare.py \
        > benchmarks/streamx_reference/env_compare.txt

How: `minatar.Environment(game, sticky_action_prob=0.0)` (sticky actions off, so both are
deterministic given the actions), gymnax's `step_env` (no auto-reset, so each step is the
raw transition). Breakout draws its start (the ball's side) at random in both: gymnax's
start state is set to the one minatar drew. Space Invaders has no randomness in either.
Actions are uniform over the minimal action set, the same sequence for both; an episode is
followed until minatar's terminal, checking at every step that the observations (as
booleans), rewards and terminal flags are equal.
"""

import argparse
import sys
from importlib.metadata import version
from pathlib import Path

import gymnax
import jax
import jax.numpy as jnp
import numpy as np

HERE = Path(__file__).resolve().parent
REFERENCE_SITE = next((HERE / ".venv" / "lib").glob("python3*/site-packages"), None)


def import_minatar():
    if REFERENCE_SITE is not None:
        sys.path.append(str(REFERENCE_SITE))
    import minatar
    import minatar.gym

    return minatar


GAMES = {"breakout": "Breakout-MinAtar", "space_invaders": "SpaceInvaders-MinAtar"}


def sync_start(game: str, ours, state, aliens: np.ndarray | None = None):
    """gymnax's start state set to the one minatar drew (Breakout's ball side); with
    `aliens`, both Space Invaders start with that alien map instead of the full wave (a
    wave the random actions can clear, to compare the respawn and the difficulty ramp)."""
    if aliens is not None:
        ours.env.alien_map = aliens.astype(float)
        return state.replace(alien_map=jnp.asarray(aliens, dtype=state.alien_map.dtype))
    if game == "breakout":
        env = ours.env
        return state.replace(
            ball_x=jnp.asarray(env.ball_x),
            ball_dir=jnp.asarray(env.ball_dir),
            last_x=jnp.asarray(env.last_x),
            last_y=jnp.asarray(env.last_y),
            ball_y=jnp.asarray(env.ball_y),
        )
    return state


def compare_game(
    minatar, game: str, episodes: int, seed: int, aliens: np.ndarray | None = None
) -> dict:
    base, params = gymnax.make(GAMES[game])
    step = jax.jit(base.step_env)
    key = jax.random.key(seed)
    theirs = minatar.Environment(game, sticky_action_prob=0.0)
    theirs.seed(seed)
    rng = np.random.default_rng(seed)
    actions = theirs.minimal_action_set()
    assert list(np.asarray(base.action_set)) == actions, (base.action_set, actions)

    steps = mismatched = 0
    lengths, returns, first_mismatch = [], [], []
    ramp_max = 0
    for episode in range(episodes):
        theirs.reset()
        key, reset_key = jax.random.split(key)
        _, state = base.reset_env(reset_key, params)
        state = sync_start(game, theirs, state, aliens)
        obs_gymnax = np.asarray(base.get_obs(state)).astype(bool)
        problem = None
        if not np.array_equal(theirs.state(), obs_gymnax):
            problem = "start observation"
        length, total = 0, 0.0
        while problem is None:
            index = int(rng.integers(len(actions)))
            reward, done = theirs.act(actions[index])
            key, step_key = jax.random.split(key)
            obs, state, reward_gymnax, done_gymnax, _ = step(step_key, state, index, params)
            length += 1
            total += reward
            if not np.array_equal(theirs.state(), np.asarray(obs).astype(bool)):
                channels = np.nonzero(
                    (theirs.state() != np.asarray(obs).astype(bool)).any(axis=(0, 1))
                )[0]
                problem = f"observation, step {length}, channels {channels.tolist()}"
            elif float(reward) != float(reward_gymnax):
                problem = f"reward, step {length}: {reward} vs {float(reward_gymnax)}"
            elif bool(done) != bool(done_gymnax):
                problem = f"terminal, step {length}: {done} vs {bool(done_gymnax)}"
            if done:
                break
        if game == "space_invaders":
            ramp_max = max(ramp_max, theirs.env.ramp_index)
        steps += length
        lengths.append(length)
        returns.append(total)
        if problem is not None:
            mismatched += 1
            if len(first_mismatch) < 5:
                first_mismatch.append(f"episode {episode}: {problem}")
    return {
        "episodes": episodes,
        "steps": steps,
        "mismatched_episodes": mismatched,
        "first_mismatches": first_mismatch,
        "mean_length": float(np.mean(lengths)),
        "max_length": int(np.max(lengths)),
        "mean_return": float(np.mean(returns)),
        "ramp_index_max": ramp_max,
        "params": params,
    }


def settings(minatar, game: str) -> list[str]:
    """What the authors' `gym.make("MinAtar/<Game>-v1")` builds, against gymnax's defaults."""
    gym_env = minatar.gym.BaseEnv(game, use_minimal_action_set=True)
    base, params = gymnax.make(GAMES[game])
    inner = gym_env.game
    _, state = base.reset_env(jax.random.key(0), params)
    ramping = getattr(state, "ramping", getattr(params, "ramping", "n/a (game has no ramp)"))
    lines = [
        f"  minatar gym v1: sticky_action_prob={inner.sticky_action_prob}, "
        f"difficulty_ramping={getattr(inner.env, 'ramping', 'n/a (game has no ramp)')}, "
        f"episode limit: none (BaseEnv.step returns truncated=False), "
        f"observation {tuple(gym_env.observation_space.shape)} {gym_env.observation_space.dtype}, "
        f"channels {inner.env.channels}, actions {gym_env.action_set}",
        f"  gymnax: sticky actions: none, "
        f"ramping={ramping}, max_steps_in_episode={params.max_steps_in_episode} "
        "(truncation, then auto-reset in step), "
        f"observation {base.obs_shape} float32, actions {np.asarray(base.action_set).tolist()}",
    ]
    # the time limit, forced: a state at time max_steps - 1 is truncated by the next step
    late = state.replace(time=params.max_steps_in_episode - 1)
    _, _, _, terminated, truncated, _ = base.step(jax.random.key(1), late, 0, params)
    lines.append(
        f"  gymnax step at time {params.max_steps_in_episode - 1}: "
        f"terminated={bool(terminated)}, truncated={bool(truncated)}"
    )
    return lines


def sticky_rate(minatar, game: str, steps: int, seed: int) -> float:
    """The fraction of steps on which minatar's default sticky actions (0.1) replace the
    chosen action by the previous one, with uniform actions: what a comparison with the
    authors' runs cannot switch off."""
    env = minatar.Environment(game)  # the defaults, as gym.make uses them
    env.seed(seed)
    rng = np.random.default_rng(seed)
    actions = env.minimal_action_set()
    replaced = 0
    for _ in range(steps):
        chosen = actions[int(rng.integers(len(actions)))]
        _, done = env.act(chosen)
        replaced += env.last_action != chosen
        if done:
            env.reset()
    return replaced / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    minatar = import_minatar()
    print(f"gymnax {version('gymnax')}, minatar {version('minatar')} from {minatar.__file__}")
    for game in GAMES:
        print(f"\n== {game} ==")
        print("\n".join(settings(minatar, game)))
        result = compare_game(minatar, game, args.episodes, args.seed)
        print(
            f"  stepped {result['episodes']} episodes ({result['steps']} steps, "
            f"uniform actions, sticky off, same start): "
            f"{result['mismatched_episodes']} with a difference in observation, reward or "
            f"terminal; mean length {result['mean_length']:.1f}, max {result['max_length']}, "
            f"mean return {result['mean_return']:.2f}"
            + (
                f", highest ramp index reached {result['ramp_index_max']}"
                if game == "space_invaders"
                else ""
            )
        )
        for line in result["first_mismatches"]:
            print(f"    {line}")
        if game == "space_invaders":
            aliens = np.zeros((10, 10), bool)
            aliens[0, 4:6] = True
            result = compare_game(minatar, game, args.episodes, args.seed, aliens)
            print(
                f"  again from a start wave of 2 aliens (row 0, columns 4-5), so that waves "
                f"are cleared, respawn and ramp: {result['episodes']} episodes "
                f"({result['steps']} steps): {result['mismatched_episodes']} with a difference; "
                f"mean length {result['mean_length']:.1f}, max {result['max_length']}, "
                f"mean return {result['mean_return']:.2f}, highest ramp index reached "
                f"{result['ramp_index_max']}"
            )
            for line in result["first_mismatches"]:
                print(f"    {line}")
        print(
            f"  minatar's default sticky actions replaced the chosen action on "
            f"{sticky_rate(minatar, game, 20_000, args.seed):.3f} of 20,000 uniform-random steps"
        )


if __name__ == "__main__":
    main()
