"""Sweeps of control agents (`ControlSweepSpec`): the store's windows against the
episodes `run_control` records for the same keys, sweep files with an
`[environment]` table (and their refusals), `alberta-eqx sweep`, resumed, and a
mesh of four devices."""

import json
import logging
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.cli import main
from alberta_eqx.control import StreamQ, run_control, start_control
from alberta_eqx.experiments.runner import seed_keys
from alberta_eqx.sweeps import ControlSweepSpec, control_sweep, load_spec, run_sweep
from alberta_eqx.sweeps.spec import SpecError

pytest.importorskip("gymnax", reason="the environments are gymnax's")
pytest.importorskip("zarr", reason="the sweep store needs the [sweep] extra")


def xarray():
    import xarray

    return xarray


WINDOW, WINDOWS = 50, 4
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def catch():
    """bsuite's Catch in gymnax: a reward of +-1 at each episode's last step only."""
    import gymnax

    env, _ = gymnax.make("Catch-bsuite")
    return env


def catch_agent(key, environment, step_size=1.0, hidden=8):
    """Stream Q(lambda) on Catch's flattened board (a sweep file names it by path)."""
    # greedy after 20 steps, so that what it learns shows in the returns
    return StreamQ(
        50,
        environment.num_actions,
        key=key,
        hidden_sizes=(hidden,),
        step_size=step_size,
        exploration_steps=20,
    )


class Flat:
    """Catch with its board flattened (the MLP's input) and the control loop's
    interface: a new episode drawn at each end, the last observation in `info`."""

    def __init__(self):
        self.env = catch()
        self.default_params = self.env.default_params
        self.num_actions = self.env.num_actions

    def reset(self, key, params=None):
        o, s = self.env.reset_env(key, self.default_params)
        return jnp.ravel(o).astype(jnp.float32), s

    def step(self, key, state, action, params=None):
        step_key, reset_key = jax.random.split(key)
        final, state, reward, done, _ = self.env.step_env(
            step_key, state, action, self.default_params
        )
        first, fresh = self.env.reset_env(reset_key, self.default_params)
        state = jax.tree.map(lambda a, b: jnp.where(done, a, b), fresh, state)
        observation = jnp.ravel(jnp.where(done, first, final)).astype(jnp.float32)
        info = {"final_observation": jnp.ravel(final).astype(jnp.float32)}
        return observation, state, reward, done, False, info


def control_spec(step_sizes=(1e-4, 1.0), seeds=(3, 5)) -> ControlSweepSpec:
    """Stream Q on Catch: a grid of step-sizes on two seeds (also the worker's sweep on
    a mesh, `tests/_workers/sweep_worker.py control`)."""
    env = Flat()
    return ControlSweepSpec(
        environment=env,
        agent=lambda key, step_size: catch_agent(key, env, step_size),
        grid={"step_size": list(step_sizes)},
        num_steps=WINDOW * WINDOWS,
        seeds=list(seeds),
        metrics_window=WINDOW,
    )


def test_the_windows_are_the_episodes_run_control_records(tmp_path, monkeypatch, caplog):
    """Each configuration on each seed, stepped by `run_control` from the keys the
    sweep gives it: its recorded episodes, binned by the step they ended at, give the
    store's episode counts, mean returns and (Catch rewards only an episode's last
    step) reward rates. The shard runs in two calls of two windows, each logged."""
    monkeypatch.setattr(control_sweep, "_STEPS_PER_CALL", 2 * WINDOW)
    spec = control_spec()
    env = spec.environment
    with caplog.at_level(logging.INFO, logger="alberta_eqx.sweep"):
        ds = run_sweep(spec, tmp_path)
    assert [r.getMessage().strip() for r in caplog.records if "/200 steps" in r.getMessage()] == [
        "100/200 steps",
        "200/200 steps",
    ]
    assert bool(ds.completed.all())
    for c, step_size in enumerate([1e-4, 1.0]):
        for s, seed in enumerate([3, 5]):
            agent_key, run_key = jax.random.split(seed_keys(seed)[0])
            run = start_control(catch_agent(agent_key, env, step_size), env, run_key)
            run = run_control(run, env, WINDOW * WINDOWS)
            n = int(run.num_episodes)
            ends = np.asarray(run.end_steps)[:n]
            returns = np.asarray(run.returns)[:n]
            assert n > WINDOWS  # Catch's episodes are 9 steps long
            for w in range(WINDOWS):
                inside = (ends > w * WINDOW) & (ends <= (w + 1) * WINDOW)
                assert ds.episodes.values[c, s, w] == inside.sum()
                np.testing.assert_allclose(
                    ds.episode_return.values[c, s, w], returns[inside].mean(), rtol=1e-6
                )
                np.testing.assert_allclose(
                    ds.reward_rate.values[c, s, w], returns[inside].sum() / WINDOW, rtol=1e-6
                )
    # the grid's two step-sizes ran differently
    assert not np.array_equal(ds.episode_return.values[0], ds.episode_return.values[1])


def _spec_file(tmp_path, environment: str, agent: str, grid: str = "step_size = [0.5, 1.0]"):
    path = tmp_path / "sweep.toml"
    path.write_text(
        f"num_steps = 200\nseeds = 2\nmetrics_window = 100\n\n[environment]\n{environment}\n\n"
        f"[agent]\n{agent}\n\n[grid]\n{grid}\n"
    )
    return path


def test_a_sweep_file_with_a_game_builds_the_authors_agent(tmp_path):
    spec = load_spec(_spec_file(tmp_path, 'game = "breakout"', 'type = "q"\nkappa = 3.0'))
    assert isinstance(spec, ControlSweepSpec)
    description = spec.describe()
    assert description["environment"] == {
        "game": "breakout",
        "sticky_action_prob": 0.1,
        "discount": 0.99,
    }
    agent = spec.build({"step_size": 0.5})
    assert isinstance(agent, StreamQ)
    assert float(agent.kappa) == 3.0 and float(agent.step_size) == 0.5
    assert float(agent.exploration_steps) == 40  # 20% of the run (the Q script's)


def test_the_benchmark_sweep_file_is_a_control_sweep():
    spec = load_spec(os.path.join(ROOT, "benchmarks", "sweep-breakout.toml"))
    assert isinstance(spec, ControlSweepSpec) and spec.num_configs == 3


def test_a_sweep_file_with_factories_calls_them(tmp_path):
    path = _spec_file(
        tmp_path,
        'type = "tests.sweeps.test_control_sweep:Flat"',
        'type = "tests.sweeps.test_control_sweep:catch_agent"\nhidden = 4',
    )
    spec = load_spec(path)
    agent = spec.build({"step_size": 0.5})
    assert agent.q_net.layers[0].weight.shape == (4, 50)
    assert spec.describe()["environment"] == {"type": "tests.sweeps.test_control_sweep:Flat"}


@pytest.mark.parametrize(
    ("environment", "agent", "grid", "message"),
    [
        ('game = "pong"', 'type = "q"', "step_size = [1.0]", "game must be one of"),
        ('game = "breakout"', 'type = "dqn"', "step_size = [1.0]", "type for a game must be"),
        ('game = "breakout"', 'type = "q"', "discount = [0.9]", "grid discount"),
        ('game = "breakout"\nlevel = 2', 'type = "q"', "step_size = [1.0]", "level"),
        ("", 'type = "q"', "step_size = [1.0]", "needs game"),
        ('game = "breakout"', "kappa = 2.0", "step_size = [1.0]", r"\[agent\] needs type"),
        (
            'type = "tests.sweeps.test_control_sweep:Flat"',
            'type = "tests.sweeps.test_control_sweep:catch_agent"',
            "width = [1.0]",
            "'width'",
        ),
    ],
)
def test_a_bad_sweep_file_is_refused_naming_the_setting(
    tmp_path, environment, agent, grid, message
):
    with pytest.raises((SpecError, ValueError), match=message):
        load_spec(_spec_file(tmp_path, environment, agent, grid))


def test_a_control_spec_refuses_what_is_not_an_environment():
    with pytest.raises(TypeError, match="environment must be a gymnax-style"):
        ControlSweepSpec(environment=object(), agent=catch_agent, grid={"a": [1.0]}, num_steps=10)
    with pytest.raises(ValueError, match="at most 2\\*\\*31 - 1"):
        ControlSweepSpec(environment=Flat(), agent=catch_agent, grid={"a": [1.0]}, num_steps=2**31)


@pytest.mark.slow
def test_the_command_line_sweeps_and_resumes(tmp_path, capsys):
    """`alberta-eqx sweep` (on Catch, through the factories: a game's file is built
    above): the store, the ranking by reward rate; run again, every shard is already
    there and nothing is recomputed."""
    path = _spec_file(
        tmp_path,
        'type = "tests.sweeps.test_control_sweep:Flat"',
        'type = "tests.sweeps.test_control_sweep:catch_agent"',
    )
    out = tmp_path / "out"
    command = ["sweep", str(path), "--out", str(out), "--shard-size", "1", "--no-plot"]
    main(command)
    assert "by final reward_rate" in capsys.readouterr().out
    main(command)
    assert capsys.readouterr().out.count("already in the store: skipped") == 2
    record = json.loads((out / "run.json").read_text())
    assert record["results"]["completed"] == 2
    best = record["results"]["best"]
    assert best[0]["final"] >= best[1]["final"]  # highest reward rate first


@pytest.mark.slow
def test_a_mesh_of_four_devices_gives_the_one_device_numbers(tmp_path):
    """The sweep on 4 forced host devices (configurations 2 x seeds 2, two shards),
    in a process of its own, against the same sweep on one device here."""
    out = tmp_path / "mesh"
    env = {**os.environ, "PYTHONPATH": ROOT}
    worker = os.path.join(ROOT, "tests", "_workers", "sweep_worker.py")
    done = subprocess.run(
        [sys.executable, worker, "control", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "DONE 4" in done.stdout
    spec = control_spec((1e-4, 0.01, 0.1, 1.0))
    mesh = xarray().open_zarr(out / "sweep.zarr")
    here = run_sweep(spec, tmp_path / "one")
    assert bool(mesh.completed.all())
    for name in ("reward_rate", "episodes", "episode_return"):
        np.testing.assert_allclose(mesh[name].values, here[name].values, rtol=1e-5)
