import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from lenet_utils import LenetError, stats


@pytest.fixture
def runs():
    return pd.DataFrame({
        "remedy": ["baseline"] * 3 + ["a"] * 3 + ["b"] * 3,
        "seed": [0, 1, 2] * 3,
        "val_accuracy": [0.90, 0.92, 0.91, 0.93, 0.94, 0.95, 0.90, 0.93, 0.90],
    })


def test_paired_differences_subtract_the_baseline_seed_by_seed(runs):
    shuffled = runs.sample(frac=1, random_state=0)
    differences = stats.paired_differences(shuffled, "baseline")
    assert sorted(differences.columns) == ["a", "b"]
    np.testing.assert_allclose(differences.loc[[0, 1, 2], "a"], [0.03, 0.02, 0.04])
    np.testing.assert_allclose(differences.loc[[0, 1, 2], "b"], [0.00, 0.01, -0.01])


@pytest.mark.parametrize("change, message", [
    (lambda r: r.drop(index=8), "lack runs"),
    (lambda r: pd.concat([r, r.iloc[[0]]]), "two rows"),
    (lambda r: r[r["remedy"] != "baseline"], "baseline="),
    (lambda r: r.drop(columns="seed"), "no column seed"),
])
def test_paired_differences_refuse_unpaired_runs(runs, change, message):
    with pytest.raises(LenetError, match=message):
        stats.paired_differences(change(runs), "baseline")


def test_t_interval_matches_scipy():
    sample = np.array([0.012, 0.020, 0.008, 0.015, 0.011])
    mean, low, high = stats.t_interval(sample, 0.95)
    expected = scipy_stats.t.interval(0.95, len(sample) - 1, loc=sample.mean(),
                                      scale=scipy_stats.sem(sample))
    assert mean == pytest.approx(sample.mean())
    np.testing.assert_allclose([low, high], expected)


def test_t_interval_widens_with_confidence():
    sample = [0.1, 0.3, 0.2, 0.4]
    _, low_95, high_95 = stats.t_interval(sample, 0.95)
    _, low_99, high_99 = stats.t_interval(sample, 0.99)
    assert low_99 < low_95 < high_95 < high_99


def test_t_interval_covers_the_true_mean_as_often_as_promised():
    rng = np.random.default_rng(0)
    covered = [low <= 1.0 <= high for low, high in
               (stats.t_interval(rng.normal(1.0, 2.0, 5), 0.9)[1:] for _ in range(4000))]
    assert np.mean(covered) == pytest.approx(0.9, abs=0.015)


@pytest.mark.parametrize("sample", [[1.0], [], [1.0, np.nan]])
def test_t_interval_needs_two_values(sample):
    with pytest.raises(LenetError, match="at least two"):
        stats.t_interval(sample)


def test_p_value_matches_scipy_paired_test():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 6), rng.normal(0.5, 1, 6)
    assert stats.paired_t_p_value(b - a) == pytest.approx(scipy_stats.ttest_rel(b, a).pvalue)


def test_p_value_of_a_sample_without_spread():
    assert stats.paired_t_p_value([0.0, 0.0, 0.0]) == 1.0
    assert stats.paired_t_p_value([0.01, 0.01]) == 0.0


def test_bonferroni_confidence():
    assert stats.bonferroni_confidence(0.95, 1) == pytest.approx(0.95)
    assert stats.bonferroni_confidence(0.95, 4) == pytest.approx(0.9875)
    with pytest.raises(LenetError, match="comparisons"):
        stats.bonferroni_confidence(0.95, 0)
    with pytest.raises(LenetError, match="confidence"):
        stats.bonferroni_confidence(95, 3)


def test_holm_steps_down_and_keeps_order():
    adjusted = stats.holm_adjust([0.04, 0.001, 0.03, 0.5])
    # sorted: 0.001*4, 0.03*3, 0.04*2 -> raised to 0.09, 0.5*1 -> 0.5
    np.testing.assert_allclose(adjusted, [0.09, 0.004, 0.09, 0.5])
    assert (stats.holm_adjust([0.9, 0.8]) <= 1).all()


def test_holm_rejects_at_least_what_bonferroni_rejects():
    rng = np.random.default_rng(2)
    for _ in range(200):
        p_values = rng.uniform(0, 0.2, 5)
        holm = stats.holm_adjust(p_values) < 0.05
        bonferroni = p_values * len(p_values) < 0.05
        assert (holm | ~bonferroni).all()


@pytest.mark.parametrize("p_values", [[0.5, 1.2], [-0.1], [[0.1, 0.2]], [np.nan]])
def test_holm_refuses_bad_p_values(p_values):
    with pytest.raises(LenetError, match="p_values"):
        stats.holm_adjust(p_values)


def test_compare_with_baseline_uses_bonferroni_intervals(runs):
    differences = stats.paired_differences(runs, "baseline")
    table = stats.compare_with_baseline(differences, 0.95)
    assert list(table.index) == ["a", "b"]
    assert list(table.columns) == ["mean gain", "low", "high", "p (Holm)", "seeds"]
    _, low, high = stats.t_interval(differences["a"], 0.975)
    assert table.loc["a", ["low", "high"]].tolist() == pytest.approx([low, high])
    assert table.loc["a", "seeds"] == 3
    assert table.loc["a", "p (Holm)"] == pytest.approx(
        2 * stats.paired_t_p_value(differences["a"]))


def test_against_the_goal_reads_the_mean_against_the_band():
    summary = stats.against_the_goal([1.34, 1.24, 1.18], paper=0.95)
    mean, low, high = stats.t_interval([1.34, 1.24, 1.18])
    assert summary["mean test error (%)"] == f"{mean:.3f}" == "1.253"
    assert summary["95% interval"] == f"{low:.2f} to {high:.2f}"
    assert summary["std"] == 0.08 and summary["goal's band"] == "0.85 to 1.05"
    assert summary["mean in band"] is False
    assert stats.against_the_goal([0.84, 0.86], paper=0.95)["mean in band"] is True
    assert stats.against_the_goal([1.04, 1.06], paper=0.95)["mean in band"] is True
    assert stats.against_the_goal([0.8, 0.9], paper=0.8, goal=0.01)["mean in band"] is False


def test_against_the_goal_needs_two_seeds():
    with pytest.raises(LenetError, match="at least two"):
        stats.against_the_goal([1.0], paper=0.95)


@pytest.mark.parametrize("low, high, where", [
    (0.98, 1.15, "across an edge"),
    (0.86, 1.05, "inside the band"),
    (0.85, 0.85, "inside the band"),
    (1.06, 1.20, "above the band"),
    (0.70, 0.84, "below the band"),
    (0.70, 1.20, "across an edge"),
])
def test_interval_against_band_reads_each_case(low, high, where):
    assert stats.interval_against_band(low, high, paper=0.95) == where


@pytest.mark.parametrize("low, high, goal", [
    (1.2, 1.0, 0.1), (0.9, 1.0, -0.1), (float("nan"), 1.0, 0.1), (0.9, float("inf"), 0.1),
])
def test_interval_against_band_refuses_what_it_cannot_read(low, high, goal):
    with pytest.raises(LenetError, match="finite values, low <= high and goal >= 0"):
        stats.interval_against_band(low, high, paper=0.95, goal=goal)
