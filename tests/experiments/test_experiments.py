"""The experiment tools: the multi-seed runner equals single-seed runs, the summaries
and statistics equal hand computations, every plot draws something, every export
round-trips."""

import math
import os
import subprocess
import sys

import equinox as eqx
import jax
import numpy as np
import pandas as pd
import pytest

import alberta_eqx as ae
from alberta_eqx import (
    IDBD,
    LMS,
    DriftingTargetStream,
    LinearLearner,
    StepSizeTrackingConfig,
    run_learning_loop,
)
from alberta_eqx.experiments import (
    ExperimentResult,
    bonferroni,
    bootstrap_ci,
    cohens_d,
    compare,
    curves_frame,
    final_performance,
    holm,
    mann_whitney_u,
    plot_final_performance,
    plot_heatmap,
    plot_learning_curves,
    plot_sensitivity,
    plot_step_sizes,
    read_csv,
    read_json,
    run_experiment,
    standard_error,
    summarize,
    summary_table,
    to_csv,
    to_json,
    to_latex,
    to_markdown,
    ttest,
    wilcoxon_signed_rank,
)
from alberta_eqx.experiments.segments import Rate, in_segments

FEATURES, STEPS, WINDOW, SEEDS = 3, 60, 10, 4
TRACKING = StepSizeTrackingConfig(20)
# A 2 x 2 grid of IDBD (initial step-size, meta step-size): one structure, so one
# compilation serves every configuration.
GRID = {f"alpha={a} theta={t}": (a, t) for a in (0.01, 0.05) for t in (0.0, 0.02)}


def _stream():
    return DriftingTargetStream(FEATURES, drift_rate=0.01)


def _learner(alpha, theta):
    return LinearLearner(FEATURES, IDBD(alpha, meta_step_size=theta))


def _stream_key(seed):
    """The documented rule: seed s's stream key is the first of split(key(s))."""
    return jax.random.split(jax.random.key(seed))[0]


@pytest.fixture(scope="module")
def result():
    return run_experiment(
        {name: _learner(a, t) for name, (a, t) in GRID.items()},
        _stream(),
        STEPS,
        SEEDS,
        metrics_window=WINDOW,
        step_size_tracking=TRACKING,
    )


def _close(actual, desired):
    """Equal up to float32 rounding (batched and single programs fuse differently)."""
    np.testing.assert_allclose(actual, desired, rtol=1e-4, atol=1e-6)


# --- the runner -------------------------------------------------------------------------


@pytest.mark.slow
def test_per_seed_curves_equal_single_seed_runs(result):
    assert result.configs == list(GRID)
    assert result.seeds == tuple(range(SEEDS))
    np.testing.assert_array_equal(result.steps, [10, 20, 30, 40, 50, 60])
    for name, (a, t) in GRID.items():
        history = result.step_size_histories[name]
        for seed in (0, SEEDS - 1):
            single = run_learning_loop(
                _learner(a, t),
                _stream(),
                STEPS,
                _stream_key(seed),
                metrics_window=WINDOW,
                step_size_tracking=TRACKING,
            )
            for metric, values in single.metrics._asdict().items():
                if values is None:
                    assert metric not in result.curves[name]
                else:
                    assert result.curve(name, metric).shape == (SEEDS, STEPS // WINDOW)
                    _close(result.curve(name, metric)[seed], values)
            _close(history.step_sizes[seed], single.step_size_history.step_sizes)
            _close(history.bias_step_sizes[seed], single.step_size_history.bias_step_sizes)


def test_factories_get_each_seeds_learner_key():
    """A factory is called with seed s's learner key, the second of split(key(s)):
    here it draws LMS's step-size, so each seed runs a different learner."""

    def factory(key):
        return LinearLearner(FEATURES, LMS(jax.random.uniform(key, minval=0.01, maxval=0.1)))

    seeds = [7, 2]
    experiment = run_experiment({"random lms": factory}, _stream(), 20, seeds)
    for row, seed in enumerate(seeds):
        learner_key = jax.random.split(jax.random.key(seed))[1]
        single = run_learning_loop(factory(learner_key), _stream(), 20, _stream_key(seed))
        _close(experiment.curve("random lms")[row], single.metrics.squared_error)
        _close(
            experiment.curve("random lms", "mean_step_size")[row], single.metrics.mean_step_size
        )
    assert experiment.step_size_histories is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"configs": {}}, ValueError, "configs must be a non-empty dict"),
        ({"seeds": 0}, ValueError, "seeds must be >= 1, got 0"),
        ({"seeds": []}, ValueError, "seeds must be a count"),
        ({"seeds": [1, -2]}, ValueError, r"seeds\[1\] must be >= 0, got -2"),
        # the annotation's runtime check, or without one the runner's own, names configs
        ({"configs": {"x": 3}}, TypeError, "configs"),
        ({"configs": {"x": lambda key: 3}}, TypeError, r"configs\['x'\] returned int"),
        ({"num_steps": 25}, ValueError, r"num_steps \(25\) must be a multiple of metrics_window"),
    ],
)
def test_run_experiment_rejects_bad_arguments(kwargs, error, match):
    arguments = {
        "configs": {"lms": LinearLearner(FEATURES, LMS(0.01))},
        "stream": _stream(),
        "num_steps": 20,
        "seeds": 2,
        "metrics_window": 10,
    } | kwargs
    with pytest.raises(error, match=match):
        run_experiment(**arguments)


def test_run_experiment_rejects_batched_learners():
    grid = eqx.filter_vmap(lambda a: LinearLearner(FEATURES, LMS(a)))(np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"configs\['grid'\] has batch shape \(2,\)"):
        run_experiment({"grid": grid}, _stream(), 10, 2)


def test_curve_names_what_exists(result):
    with pytest.raises(KeyError, match="metric 'loss' was not recorded"):
        result.curve(result.configs[0], "loss")
    with pytest.raises(KeyError, match="config 'nope' is not in this result"):
        result.curve("nope")


# --- summaries --------------------------------------------------------------------------


def test_standard_error_by_hand():
    values = [2.0, 4.0, 9.0, 1.0]
    mean = sum(values) / 4
    by_hand = math.sqrt(sum((v - mean) ** 2 for v in values) / 3 / 4)
    assert standard_error(np.array(values)) == pytest.approx(by_hand)
    assert np.isnan(standard_error(np.array([3.0])))


def test_bootstrap_ci_of_two_values_is_exact():
    """Resampling [0, 1] gives means 0, 0.5, 1 with probability 1/4, 1/2, 1/4: the 95%
    interval is [0, 1] and the central 40% is {0.5}."""
    values = np.array([0.0, 1.0])
    assert bootstrap_ci(values) == (0.0, 1.0)
    assert bootstrap_ci(values, confidence=0.4) == (0.5, 0.5)


def test_bootstrap_ci_contains_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    widths = []
    for n in (10, 100, 1000):
        values = rng.normal(3.0, 2.0, size=n)
        low, high = bootstrap_ci(values, num_resamples=2000)
        assert low < values.mean() < high
        widths.append(high - low)
        # the normal approximation: width ~ 2 * 1.96 * sd / sqrt(n)
        assert high - low == pytest.approx(2 * 1.96 * values.std(ddof=1) / math.sqrt(n), rel=0.2)
    assert widths[0] > widths[1] > widths[2]


def test_bootstrap_ci_is_seeded_and_columnwise():
    rng = np.random.default_rng(2)
    values = rng.exponential(size=(15, 3))
    low, high = bootstrap_ci(values, seed=5)
    again = bootstrap_ci(values, seed=5)
    np.testing.assert_array_equal(low, again[0])
    for j in range(3):  # the same resamples for every column
        assert bootstrap_ci(values[:, j], seed=5) == (low[j], high[j])
    assert not np.array_equal(low, bootstrap_ci(values, seed=6)[0])


def test_summarize():
    values = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 20.0]])
    summary = summarize(values)
    np.testing.assert_allclose(summary.mean, [3.0, 20.0])
    np.testing.assert_allclose(summary.stderr, [2 / math.sqrt(3), 10 / math.sqrt(3)])
    assert summary.num_seeds == 3
    assert np.all(summary.ci_low <= summary.mean) and np.all(summary.mean <= summary.ci_high)
    with pytest.raises(ValueError, match="confidence must be in"):
        summarize(values, confidence=95.0)


def test_final_performance_equals_a_longer_window(result):
    """The mean of the last two 10-step windows is the last 20-step window's mean."""
    finals = final_performance(result, last=2)
    name, (a, t) = next(iter(GRID.items()))
    for seed in range(SEEDS):
        single = run_learning_loop(
            _learner(a, t), _stream(), STEPS, _stream_key(seed), metrics_window=20
        )
        _close(finals[name][seed], single.metrics.squared_error[-1])
    with pytest.raises(ValueError, match=r"last \(7\) must be <= the number of windows \(6\)"):
        final_performance(result, last=7)


def test_summary_table(result):
    rows = summary_table(result, last=3).to_dict("records")
    assert [row["config"] for row in rows] == list(GRID)
    for row in rows:
        finals = result.curve(row["config"])[:, -3:].mean(axis=1)
        assert row["mean"] == pytest.approx(finals.mean())
        assert row["stderr"] == pytest.approx(finals.std(ddof=1) / math.sqrt(SEEDS))
        assert row["ci_low"] <= row["mean"] <= row["ci_high"]
        assert row["num_seeds"] == SEEDS


# --- statistics -------------------------------------------------------------------------


def test_bonferroni_by_hand():
    np.testing.assert_allclose(bonferroni([0.01, 0.04, 0.3, 0.5]), [0.04, 0.16, 1.0, 1.0])


def test_holm_by_hand():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.2, 0.01]), [0.2, 0.02])
    np.testing.assert_allclose(holm([0.6, 0.5]), [1.0, 1.0])
    with pytest.raises(ValueError, match="p_values must be"):
        holm([0.5, 1.5])


def test_cohens_d_by_hand():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 4.0, 6.0, 8.0])
    var_a, var_b = 5 / 3, 20 / 3  # sums of squared deviations 5 and 20, over n - 1
    pooled = math.sqrt((3 * var_a + 3 * var_b) / 6)
    assert cohens_d(a, b) == pytest.approx((2.5 - 5.0) / pooled)
    # paired: differences -1, -2, -3, -4, mean -2.5, sd sqrt(5/3)
    assert cohens_d(a, b, paired=True) == pytest.approx(-2.5 / math.sqrt(5 / 3))


def test_ttests_by_hand():
    stats = pytest.importorskip("scipy.stats")
    a = np.array([5.1, 4.9, 6.2, 5.8, 6.0, 5.5])
    b = np.array([4.1, 4.5, 5.0, 4.8, 5.9, 4.2])
    n = len(a)
    ma, mb, va, vb = a.mean(), b.mean(), a.var(ddof=1), b.var(ddof=1)
    # Welch
    t = (ma - mb) / math.sqrt(va / n + vb / n)
    df = (va / n + vb / n) ** 2 / ((va / n) ** 2 / (n - 1) + (vb / n) ** 2 / (n - 1))
    welch = ttest(a, b)
    assert welch.statistic == pytest.approx(t)
    assert welch.p_value == pytest.approx(2 * stats.t.sf(abs(t), df))
    # Student (pooled variance)
    t = (ma - mb) / math.sqrt(((va + vb) / 2) * (2 / n))
    assert ttest(a, b, equal_var=True).statistic == pytest.approx(t)
    assert ttest(a, b, equal_var=True).p_value == pytest.approx(2 * stats.t.sf(abs(t), 2 * n - 2))
    # paired
    d = a - b
    t = d.mean() / (d.std(ddof=1) / math.sqrt(n))
    paired = ttest(a, b, paired=True)
    assert paired.statistic == pytest.approx(t)
    assert paired.p_value == pytest.approx(2 * stats.t.sf(abs(t), n - 1))
    with pytest.raises(ValueError, match="paired samples must have equal lengths, got 6 and 5"):
        ttest(a, b[:5], paired=True)


def test_rank_tests_exact_small_samples():
    pytest.importorskip("scipy")
    # a entirely below b: U = 0; exact two-sided p = 2 / C(6, 3) = 0.1
    u = mann_whitney_u(np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0]))
    assert u.statistic == 0.0 and u.p_value == pytest.approx(0.1)
    # U counts the pairs with a above b: 3 > 1 and 3 > 2.5
    u = mann_whitney_u(np.array([0.0, 3.0]), np.array([1.0, 2.5]))
    assert u.statistic == 2.0
    # five positive differences: W- = 0; exact two-sided p = 2 / 2**5
    w = wilcoxon_signed_rank(np.array([2.0, 3.0, 5.0, 8.0, 13.0]), np.zeros(5))
    assert w.statistic == 0.0 and w.p_value == pytest.approx(2 / 32)


def _synthetic_result(finals: dict[str, list[float]]) -> ExperimentResult:
    """A result whose one-window curves are `finals` (seeds as given)."""
    curves = {k: {"squared_error": np.array(v)[:, None]} for k, v in finals.items()}
    seeds = len(next(iter(finals.values())))
    return ExperimentResult(curves, None, tuple(range(seeds)), 10, 10)


def test_compare_pairs_every_config_and_corrects():
    pytest.importorskip("scipy")
    finals = {
        "a": [1.0, 2.0, 3.0, 4.0, 5.0],
        "b": [1.5, 2.9, 3.2, 4.8, 5.9],
        "c": [9.0, 8.0, 10.0, 11.0, 12.0],
    }
    comparisons = compare(_synthetic_result(finals), correction="bonferroni")
    assert [(c.config_a, c.config_b) for c in comparisons] == [("a", "b"), ("a", "c"), ("b", "c")]
    for c in comparisons:
        d = np.array(finals[c.config_a]) - np.array(finals[c.config_b])
        assert c.statistic == pytest.approx(d.mean() / (d.std(ddof=1) / math.sqrt(5)))
        assert c.p_adjusted == pytest.approx(min(3 * c.p_value, 1.0))
        assert c.significant == (c.p_adjusted < 0.05)
        assert c.cohens_d == pytest.approx(d.mean() / d.std(ddof=1))
        assert c.mean_a == pytest.approx(np.mean(finals[c.config_a]))
    assert comparisons[1].significant  # a is far below c on every seed
    unpaired = compare(_synthetic_result(finals), test="mann-whitney", correction="none")
    assert [c.p_value for c in unpaired] == [c.p_adjusted for c in unpaired]
    pooled = math.sqrt((np.var(finals["a"], ddof=1) + np.var(finals["b"], ddof=1)) / 2)
    assert unpaired[0].cohens_d == pytest.approx((3.0 - 3.66) / pooled)


def test_compare_on_a_run(result):
    pytest.importorskip("scipy")
    comparisons = compare(result, last=2, test="wilcoxon")
    assert len(comparisons) == len(GRID) * (len(GRID) - 1) // 2
    np.testing.assert_allclose(
        [c.p_adjusted for c in comparisons], holm([c.p_value for c in comparisons])
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"test": "z"}, "test must be one of"),
        ({"correction": "fdr"}, "correction must be one of"),
        ({"alpha": 5.0}, r"alpha must be in \(0, 1\), got 5.0"),
    ],
)
def test_compare_rejects_bad_arguments(kwargs, match):
    finals = {"a": [1.0, 2.0, 3.0], "b": [2.0, 3.0, 5.0]}
    with pytest.raises(ValueError, match=match):
        compare(_synthetic_result(finals), **kwargs)


@pytest.mark.slow
def test_the_package_imports_without_the_extras():
    """SciPy and Matplotlib are imported only by the functions that need them."""
    blocked = "import sys; sys.modules.update(scipy=None, matplotlib=None); "
    code = blocked + "import alberta_eqx.experiments; assert 'scipy.stats' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tests_without_scipy_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    with pytest.raises(ImportError, match=r"pip install scipy"):
        ttest(np.array([1.0, 2.0]), np.array([3.0, 4.0]))


# --- plots ------------------------------------------------------------------------------


@pytest.fixture
def pyplot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def _assert_drawn(fig, path):
    """The figure saves to a PNG of some size whose pixels are not all one colour."""
    import matplotlib.image

    fig.savefig(path)
    assert path.stat().st_size > 2000
    assert matplotlib.image.imread(path).var() > 0


def test_plots_draw_something(result, pyplot, tmp_path):
    alphas = {name: a for name, (a, t) in GRID.items() if t == 0.0}
    figures = {
        "curves": plot_learning_curves(result, log_y=True),
        "curves_stderr": plot_learning_curves(result, "error", band="stderr"),
        "step_sizes": plot_step_sizes(result, "alpha=0.05 theta=0.02"),
        "final": plot_final_performance(result, last=2),
        "sensitivity": plot_sensitivity(result, alphas, label="theta = 0", xlabel="alpha"),
        "heatmap": plot_heatmap(result, GRID, xlabel="alpha", ylabel="theta", last=2),
    }
    for name, fig in figures.items():
        _assert_drawn(fig, tmp_path / f"{name}.png")


def test_plots_draw_into_given_axes(result, pyplot, tmp_path):
    fig, axes = pyplot.subplots(1, 2)
    assert plot_learning_curves(result, configs=result.configs[:2], band="none", ax=axes[0]) is fig
    assert plot_step_sizes(result, result.configs[0], weights=[0], ax=axes[1]) is fig
    assert len(axes[0].get_lines()) == 2
    assert len(axes[1].get_lines()) == 2  # weight 0 and the bias
    _assert_drawn(fig, tmp_path / "both.png")


def test_heatmap_places_cells(result, pyplot):
    fig = plot_heatmap(result, GRID, annotate=False)
    grid = fig.axes[0].images[0].get_array()
    finals = final_performance(result)
    # rows are theta (y), columns alpha (x), both ascending
    assert grid[1, 0] == pytest.approx(finals["alpha=0.01 theta=0.02"].mean())
    assert grid[0, 1] == pytest.approx(finals["alpha=0.05 theta=0.0"].mean())


def test_plot_errors(result, pyplot):
    runless = _synthetic_result({"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="no step-size histories"):
        plot_step_sizes(runless, "a")
    with pytest.raises(ValueError, match="band must be"):
        plot_learning_curves(result, band="sd")
    with pytest.raises(KeyError, match=r"configs \['x'\] are not in this result"):
        plot_sensitivity(result, {"x": 1.0})


def test_plots_without_matplotlib_name_the_extra(result, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'alberta_eqx\[plots\]'"):
        plot_learning_curves(result)


# --- exports ----------------------------------------------------------------------------

ROWS = [
    {"config": "LMS_0.01", "mean": 1 / 3, "stderr": 1e-12, "num_seeds": 30, "best": False},
    {"config": "IDBD & co", "mean": 2.5, "stderr": 0.125, "num_seeds": 7, "best": True},
]


def test_csv_and_json_round_trip(tmp_path):
    for write, read, name in ((to_csv, read_csv, "t.csv"), (to_json, read_json, "t.json")):
        write(ROWS, tmp_path / name)
        back = read(tmp_path / name)
        assert isinstance(back, pd.DataFrame)
        assert back.to_dict("records") == ROWS
        assert [type(v) for v in back.to_dict("records")[0].values()] == [
            str,
            float,
            float,
            int,
            bool,
        ]
        assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_a_failed_write_leaves_the_previous_file(tmp_path):
    path = tmp_path / "t.csv"
    to_csv(ROWS, path)
    before = path.read_text()

    class Exploding(pd.DataFrame):
        def to_csv(self, *args, **kwargs):
            args[0].write("partial,")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        to_csv(Exploding(ROWS), path)
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["t.csv"]


def test_summary_table_round_trips(result, tmp_path):
    table = summary_table(result)
    assert isinstance(table, pd.DataFrame)
    to_csv(table, tmp_path / "summary.csv")
    pd.testing.assert_frame_equal(read_csv(tmp_path / "summary.csv"), table)


def test_curves_frame_is_tidy(result):
    frame = curves_frame(result)
    assert list(frame.columns[:3]) == ["config", "seed", "step"]
    assert len(frame) == len(result.configs) * SEEDS * len(result.steps)
    config = result.configs[1]
    rows = frame[(frame.config == config) & (frame.seed == result.seeds[2])]
    np.testing.assert_array_equal(rows.step, result.steps)
    np.testing.assert_array_equal(rows.squared_error, result.curve(config)[2])


def test_latex_cells():
    latex = to_latex(ROWS, digits=3, caption="Final 10% error")
    assert r"config & mean & stderr & num\_seeds & best \\" in latex
    assert r"LMS\_0.01 & 0.333 & 1e-12 & 30 & False \\" in latex
    assert r"IDBD \& co & 2.5 & 0.125 & 7 & True \\" in latex
    assert r"\caption{Final 10\% error}" in latex
    assert latex.index(r"\toprule") < latex.index(r"\midrule") < latex.index(r"\bottomrule")


def test_markdown_cells():
    lines = [line.replace(" ", "") for line in to_markdown(ROWS).splitlines()]
    assert lines == [
        "|config|mean|stderr|num_seeds|best|",
        "|:----------|-------:|---------:|------------:|:-------|".replace(" ", ""),
        "|LMS_0.01|0.3333|1e-12|30|False|",
        "|IDBD&co|2.5|0.125|7|True|",
    ]


def test_exports_reject_ragged_rows(tmp_path):
    with pytest.raises(ValueError, match=r"rows\[1\] has columns \['a'\], but rows\[0\] has"):
        to_markdown([{"a": 1, "b": 2}, {"a": 3}])
    with pytest.raises(ValueError, match="at least one row"):
        to_csv([], tmp_path / "empty.csv")
    assert not (tmp_path / "empty.csv").exists()


# --- segments: progress within seconds, numbers of one call -----------------------------


def test_the_time_estimate_counts_the_compilations_to_come():
    """A segment that compiled took its steps at the measured rate plus its
    compilation; the estimate adds the mean compilation per program still to come."""
    rate = Rate()
    rate.add(100, 10.0, compiled=True)
    assert rate.eta(200) is None  # no compiled segment yet: no rate
    rate.add(100, 1.0)
    assert rate.per_second == 100.0
    assert rate.compile_seconds == pytest.approx(9.0)
    assert rate.eta(200) == pytest.approx(2.0)
    rate.compiles_ahead = 2
    assert rate.eta(200) == pytest.approx(2.0 + 2 * 9.0)


@pytest.mark.parametrize("seconds_per_update", [1e-9, 1e9])
@pytest.mark.slow
def test_segments_report_after_one_block_and_continue_exactly(seconds_per_update):
    """The first report comes after one block of the runner (10,000 steps here), the
    rest in segments sized by the measured rate; the metrics and the final learner
    are bit-identical to one call."""
    stream = ae.DriftingTargetStream(3)
    learner = ae.LinearLearner(3, ae.IDBD(0.01, meta_step_size=0.01))
    keys = jax.random.split(jax.random.key(0), 2)
    calls, ahead = [], []
    rate = Rate()

    def progress(steps):
        calls.append(steps)
        ahead.append(rate.compiles_ahead)

    parts = in_segments(
        learner,
        stream,
        40_000,
        keys,
        progress,
        metrics_window=100,
        seconds_per_update=seconds_per_update,
        rate=rate,
    )
    if seconds_per_update < 1:
        assert calls == [10_000] * 4
        assert ahead == [0, 0, 0, 0]  # one size: one program
    else:  # one block, one more to measure, then the rest in one segment
        assert calls == [10_000, 10_000, 20_000]
        assert ahead == [0, 1, 0]  # the 20,000-step segment compiles its own program
    assert rate.steps > 0 and rate.per_second > 0
    one = ae.run_learning_loop_batched(learner, stream, 40_000, keys, metrics_window=100)
    np.testing.assert_array_equal(
        np.concatenate([p.metrics.squared_error for p in parts], axis=-1),
        one.metrics.squared_error,
    )
    np.testing.assert_array_equal(parts[-1].learner.weights, one.learner.weights)
