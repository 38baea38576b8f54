"""`ContinuingCatch` side by side with csuite's own `Catch`
(`csuite/environments/catch.py`), step by step: the same actions and the same random
draws, equal observations (both types) and rewards at every step, or the first step
where they differ.

csuite's `Catch` draws from a NumPy `Generator` (`rng.random()` for a spawn, then
`rng.integers(columns)` for its column); here, before each step, `set_state` gives it
a stand-in `rng` whose `random()` and `integers(n)` return the draws the JAX step made
(re-derived from the step's key in the order `ContinuingCatch` documents), and the
start's ball is set to the JAX reset's. The stand-in also records the calls: csuite
must call `random()` once a step and `integers` only when a ball spawns.

It installs nothing itself. Set up csuite and `dm_env` (its one dependency that
`Catch` needs; csuite's package `__init__` also imports its gym wrapper, which this
script bypasses by loading only `csuite.environments`):

    python3.11 -m venv /tmp/csuite-venv && /tmp/csuite-venv/bin/pip install dm_env numpy
    mkdir -p /tmp/csuite-src
    git -C /work/.mirror/abhisheknaik96+csuite/repo archive HEAD csuite | tar -x -C /tmp/csuite-src
    # (or: git clone https://github.com/deepmind/csuite /tmp/csuite-src)

then run it with the project's Python (which has JAX), with csuite's source and this
checkout on `PYTHONPATH`, and `--site` naming the venv's site-packages (appended to
the path after the project's own, so that `dm_env` comes from there and NumPy from
the project):

    PYTHONPATH=/tmp/csuite-src:/work/main /work/main/.venv/bin/python \\
        benchmarks/csuite_catch_check.py --site /tmp/csuite-venv/lib/python3.11/site-packages

Exit status 0 when every check passes, 1 otherwise.
"""

import argparse
import importlib.util
import sys
import types


def _load_catch():
    """csuite's `catch` module, without csuite's package `__init__` (which imports
    every environment and the gym wrapper)."""
    spec = importlib.util.find_spec("csuite")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("csuite is not importable: put its source on PYTHONPATH (see --help)")
    package = types.ModuleType("csuite")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["csuite"] = package
    from csuite.environments import catch

    return catch


class _Draws:
    """Stands in for csuite's `Generator` for one step: `random()` and `integers(n)`
    return the JAX step's draws, and the calls are recorded."""

    def __init__(self, uniform: float, column: int, columns: int):
        self.uniform, self.column, self.columns = uniform, column, columns
        self.calls: list[str] = []

    def random(self):
        self.calls.append("random")
        return self.uniform

    def integers(self, n):
        if n != self.columns:
            raise AssertionError(f"csuite drew integers({n}), expected integers({self.columns})")
        self.calls.append("integers")
        return self.column


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0, help="the JAX key's and the actions'")
    parser.add_argument(
        "--site", action="append", default=[], help="a folder to append to sys.path (dm_env's)"
    )
    args = parser.parse_args(argv)
    sys.path.extend(args.site)
    catch = _load_catch()

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from alberta_eqx.streams import ContinuingCatch

    env = ContinuingCatch()  # csuite's sizes: 10 x 5
    discrete = ContinuingCatch(observation_type="discrete")
    params = env.default_params
    rows, columns, p = env.rows, env.columns, params.spawn_probability

    @eqx.filter_jit
    def trajectory(keys, actions):
        obs, state = env.reset(keys[0])

        def body(state, xs):
            key, action = xs
            obs, state, reward, *_ = env.step(key, state, action)
            return state, (obs, discrete.observation(state), reward)

        _, steps = jax.lax.scan(body, state, (keys[1:], actions))
        return (obs, discrete.observation(state)), steps

    def draws(key):  # ContinuingCatch's documented order
        spawn_key, column_key = jax.random.split(key)
        return jax.random.uniform(spawn_key), jax.random.randint(column_key, (), 0, columns)

    keys = jax.random.split(jax.random.key(args.seed), args.steps + 1)
    actions = np.random.default_rng(args.seed).integers(3, size=args.steps)
    (obs0, board0), (obs, boards, rewards) = trajectory(keys, jnp.asarray(actions, jnp.int32))
    first_column = int(jax.random.randint(keys[0], (), 0, columns))
    uniforms, spawn_columns = (np.asarray(a) for a in jax.vmap(draws)(keys[1:]))
    obs, boards, rewards = np.asarray(obs), np.asarray(boards), np.asarray(rewards)

    # csuite's two observation types are two instances, stepped in lockstep
    theirs = {
        kind: catch.Catch(rows, columns, p, observation_type=kind)
        for kind in ("continuous", "discrete")
    }
    for their in theirs.values():
        their.start(seed=args.seed)
        state = their.get_state()
        state.balls = [(first_column, 0)]  # the JAX reset's ball
        their.set_state(state)

    failures: dict[str, str] = {}

    def check(name, ok, t, detail):
        if not ok and name not in failures:
            failures[name] = f"step {t}: {detail}"

    def compare(t, ours_obs, ours_board):
        cont = theirs["continuous"]._get_observation()
        board = theirs["discrete"]._get_observation()
        check(
            "continuous observation",
            np.array_equal(ours_obs, cont.astype(ours_obs.dtype)),
            t,
            f"ours {ours_obs}, csuite's {cont}",
        )
        check(
            "discrete observation",
            np.array_equal(ours_board, board) and board.shape == ours_board.shape,
            t,
            f"ours\n{ours_board}\ncsuite's\n{board}",
        )

    compare(-1, np.asarray(obs0), np.asarray(board0))  # after the reset
    caught = missed = spawned = most = 0
    for t in range(args.steps):
        uniform, column = float(uniforms[t]), int(spawn_columns[t])
        results = {}
        for kind, their in theirs.items():
            state = their.get_state()
            state.rng = _Draws(uniform, column, columns)
            their.set_state(state)
            _, results[kind] = their.step(int(actions[t]))
            calls = their._state.rng.calls  # set_state copied the stand-in
            expected = ["random", "integers"] if uniform < p else ["random"]
            check("csuite's draws", calls == expected, t, f"{calls}, expected {expected}")
        for kind, reward in results.items():
            check(
                f"reward ({kind})",
                rewards[t] == reward,
                t,
                f"ours {rewards[t]}, csuite's {reward}",
            )
        compare(t, obs[t], boards[t])
        caught += rewards[t] == 1
        missed += rewards[t] == -1
        spawned += uniform < p
        most = max(most, len(theirs["continuous"]._state.balls))

    print(
        f"{args.steps} steps, seed {args.seed}, random actions, rows {rows}, columns "
        f"{columns}, spawn_probability {p}, JAX {jax.__version__} "
        f"({np.dtype(obs.dtype).name} observations), csuite from {catch.__file__}"
    )
    print(
        f"balls spawned {spawned} (+1 at the start), caught {caught}, missed {missed}, "
        f"at most {most} on the board at once"
    )
    names = [
        "continuous observation",
        "discrete observation",
        "reward (continuous)",
        "reward (discrete)",
        "csuite's draws",
    ]
    for name in names:
        print(f"{'FAIL' if name in failures else 'PASS'}: {name}")
        if name in failures:
            print(f"  first mismatch at {failures[name]}")
    print("PASS" if not failures else "FAIL")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
