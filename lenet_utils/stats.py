"""Comparing training recipes over seeds: paired differences and their intervals.

Runs that share a seed share their training subset, initial weights and batch
order, so the difference between two recipes is measured within each seed
and the seed-to-seed noise they share cancels. These functions turn a table
of runs into those paired differences, a t-based confidence interval for
their mean, and corrections for making several comparisons at once; and they
read seeds' test errors against the LeNet-5 appendix's goal, a band around
the paper's value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from lenet_utils.errors import LenetError


def paired_differences(
    runs: pd.DataFrame,
    baseline: str,
    *,
    value: str = "val_accuracy",
    treatment: str = "remedy",
    pair: str = "seed",
) -> pd.DataFrame:
    """Each treatment's value minus the baseline's, seed by seed.

    Parameters
    ----------
    runs : pandas.DataFrame
        One row per run, with columns ``treatment``, ``pair`` and ``value``.
    baseline : str
        The treatment every other one is compared with.
    value, treatment, pair : str
        Column names: what is compared, what differs, what pairs the runs.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``pair``, one column per treatment other than the
        baseline, in their order of appearance.

    Raises
    ------
    LenetError
        If a column is missing, the baseline has no runs, a treatment has two
        runs for one seed, or a seed lacks a run of some treatment.

    Examples
    --------
    >>> runs = pd.DataFrame({"remedy": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1],
    ...                      "val_accuracy": [0.90, 0.92, 0.93, 0.94]})
    >>> paired_differences(runs, "a")["b"].round(2).tolist()
    [0.03, 0.02]
    """
    missing = [name for name in (value, treatment, pair) if name not in runs]
    if missing:
        raise LenetError(f"runs has no column {', '.join(missing)}; pass the names of the "
                         "value, treatment and pair columns.")
    if runs.duplicated([treatment, pair]).any():
        raise LenetError(f"runs holds two rows for one ({treatment}, {pair}); keep one "
                         "run per treatment and seed.")
    table = runs.pivot(index=pair, columns=treatment, values=value)
    if baseline not in table:
        raise LenetError(f"baseline={baseline!r} has no runs; choose one of "
                         f"{', '.join(map(str, table.columns))}.")
    unpaired = table.columns[table.isna().any()].tolist()
    if unpaired:
        raise LenetError(f"{', '.join(map(str, unpaired))} lack runs for some seeds; run "
                         "every treatment with the same seeds.")
    order = [name for name in pd.unique(runs[treatment]) if name != baseline]
    return table[order].sub(table[baseline], axis="index")


def t_interval(
    sample: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float]:
    """The mean of a sample and a Student-t confidence interval for it.

    ``mean ± t(1 - (1 - confidence) / 2, n - 1) * s / sqrt(n)``, with ``s``
    the sample standard deviation: exact when the values are independent
    draws from a normal distribution, approximate otherwise.

    Parameters
    ----------
    sample : sequence of float
        At least two values (paired differences, say).
    confidence : float
        In (0, 1).

    Returns
    -------
    mean, low, high : float

    Raises
    ------
    LenetError
        With fewer than two values, a missing value or a confidence outside (0, 1).

    Examples
    --------
    >>> [round(x, 3) for x in t_interval([1.0, 2.0, 3.0])]
    [2.0, -0.484, 4.484]
    """
    values = _checked_sample(sample)
    _check_confidence(confidence)
    mean = float(values.mean())
    half_width = (scipy_stats.t.ppf(0.5 + confidence / 2, len(values) - 1)
                  * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - float(half_width), mean + float(half_width)


def against_the_goal(
    errors: Sequence[float] | np.ndarray, paper: float, goal: float = 0.1
) -> dict[str, object]:
    """Seeds' test errors against a goal's band, ``paper ± goal``, for display.

    The appendix's reading of a LeNet-5 row: the mean over seeds (to three
    decimals), its standard deviation, its 95% t-interval (:func:`t_interval`),
    the band and whether the mean lies inside it.

    Parameters
    ----------
    errors : sequence of float
        Test errors (%), one per seed, at least two.
    paper : float
        The paper's test error (%).
    goal : float
        The band's half-width, in percentage points.

    Examples
    --------
    >>> summary = against_the_goal([1.34, 1.24, 1.18], paper=0.95)
    >>> summary["mean test error (%)"], summary["goal's band"], summary["mean in band"]
    ('1.253', '0.85 to 1.05', False)
    """
    values = _checked_sample(errors)
    mean, low, high = t_interval(values)
    return {
        "mean test error (%)": f"{mean:.3f}",
        "std": round(float(values.std(ddof=1)), 2),
        "95% interval": f"{low:.2f} to {high:.2f}",
        "goal's band": f"{paper - goal:.2f} to {paper + goal:.2f}",
        # The margin keeps a mean that rounds onto the band's edge inside it.
        "mean in band": bool(abs(mean - paper) <= goal + 1e-9),
    }


def interval_against_band(low: float, high: float, paper: float, goal: float = 0.1) -> str:
    """Where a confidence interval lies against a goal's band, ``paper ± goal``.

    Parameters
    ----------
    low, high : float
        The interval's ends (%), as :func:`t_interval` returns them.
    paper : float
        The paper's test error (%).
    goal : float
        The band's half-width, in percentage points.

    Returns
    -------
    str
        ``"inside the band"``, ``"above the band"``, ``"below the band"`` or
        ``"across an edge"``; the band's edges count as inside it.

    Raises
    ------
    LenetError
        If a value is not finite, ``low`` is above ``high`` or ``goal`` is
        negative.

    Examples
    --------
    >>> interval_against_band(0.98, 1.15, paper=0.95)
    'across an edge'
    >>> interval_against_band(0.85, 1.05, paper=0.95)
    'inside the band'
    """
    if not np.isfinite([low, high, paper, goal]).all() or low > high or goal < 0:
        raise LenetError(f"interval_against_band needs finite values, low <= high and "
                         f"goal >= 0, got low={low}, high={high}, paper={paper}, "
                         f"goal={goal}")
    # The margin keeps an end that rounds onto the band's edge inside it.
    bottom, top = paper - goal - 1e-9, paper + goal + 1e-9
    if bottom <= low and high <= top:
        return "inside the band"
    if low > top:
        return "above the band"
    if high < bottom:
        return "below the band"
    return "across an edge"


def paired_t_p_value(sample: Sequence[float] | np.ndarray) -> float:
    """Two-sided p-value of the t-test that a sample's mean is zero.

    Applied to paired differences, this is the paired t-test. A sample of
    identical values has no spread: its p-value is 1 if they are zero, else 0.

    Examples
    --------
    >>> round(paired_t_p_value([1.0, 2.0, 3.0]), 4)
    0.0742
    """
    values = _checked_sample(sample)
    spread = values.std(ddof=1)
    if spread == 0:
        return 1.0 if values.mean() == 0 else 0.0
    statistic = values.mean() / (spread / np.sqrt(len(values)))
    return float(2 * scipy_stats.t.sf(abs(statistic), len(values) - 1))


def bonferroni_confidence(confidence: float, comparisons: int) -> float:
    """The confidence each of several intervals needs to hold ``confidence`` jointly.

    With ``m`` comparisons each interval is made at ``1 - (1 - confidence) / m``;
    then the chance that any of the ``m`` misses its true value is at most
    ``1 - confidence``, whatever the dependence between them.

    Raises
    ------
    LenetError
        If ``comparisons`` is not a positive integer or ``confidence`` is
        outside (0, 1).

    Examples
    --------
    >>> round(bonferroni_confidence(0.95, 5), 4)
    0.99
    """
    _check_confidence(confidence)
    if int(comparisons) != comparisons or comparisons < 1:
        raise LenetError(f"comparisons={comparisons} must be a positive integer.")
    return 1 - (1 - confidence) / comparisons


def holm_adjust(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of p-values for multiple comparisons.

    The smallest of ``m`` p-values is multiplied by ``m``, the next by
    ``m - 1`` and so on, each kept at least as large as the one before and at
    most 1. Rejecting where an adjusted p-value is below ``alpha`` keeps the
    chance of any false rejection at most ``alpha``; it rejects everything
    Bonferroni rejects, and sometimes more.

    Returns
    -------
    ndarray
        Adjusted p-values, in the order given.

    Raises
    ------
    LenetError
        If a p-value is outside [0, 1] or missing.

    Examples
    --------
    >>> holm_adjust([0.01, 0.04, 0.03]).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
    values = np.asarray(p_values, dtype=float)
    if values.ndim != 1 or np.isnan(values).any() or ((values < 0) | (values > 1)).any():
        raise LenetError("p_values must be a flat sequence of numbers in [0, 1].")
    order = np.argsort(values)
    factors = len(values) - np.arange(len(values))
    stepped = np.minimum(np.maximum.accumulate(values[order] * factors), 1.0)
    adjusted = np.empty_like(values)
    adjusted[order] = stepped
    return adjusted


def compare_with_baseline(
    differences: pd.DataFrame, confidence: float = 0.95
) -> pd.DataFrame:
    """Mean gain, simultaneous t-intervals and Holm p-values, one row per treatment.

    Each interval is a t-interval at the Bonferroni level
    (:func:`bonferroni_confidence`) for the number of treatments compared, so
    that all of them together cover their true mean gains with probability at
    least ``confidence``.

    Parameters
    ----------
    differences : pandas.DataFrame
        As returned by :func:`paired_differences`.
    confidence : float
        Joint confidence of the intervals.

    Returns
    -------
    pandas.DataFrame
        Indexed by treatment, sorted by mean gain: ``mean gain``, ``low``,
        ``high``, ``p (Holm)`` and ``seeds``.

    Examples
    --------
    >>> compare_with_baseline(paired_differences(runs, "baseline"))  # doctest: +SKIP
    """
    if differences.shape[1] < 1:
        raise LenetError("differences has no treatment columns; compare at least one "
                         "treatment with the baseline.")
    level = bonferroni_confidence(confidence, differences.shape[1])
    rows = {}
    for name, column in differences.items():
        mean, low, high = t_interval(column.to_numpy(), level)
        rows[name] = {"mean gain": mean, "low": low, "high": high,
                      "p": paired_t_p_value(column.to_numpy()), "seeds": len(column)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.insert(3, "p (Holm)", holm_adjust(table.pop("p").to_numpy()))
    return table.sort_values("mean gain", ascending=False)


def _checked_sample(sample: Sequence[float] | np.ndarray) -> np.ndarray:
    values = np.asarray(sample, dtype=float).ravel()
    if len(values) < 2 or np.isnan(values).any():
        raise LenetError(f"sample has {len(values)} values (or a missing one); a t-interval "
                         "needs at least two numbers: run at least two seeds.")
    return values


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise LenetError(f"confidence={confidence} must be in (0, 1), e.g. 0.95.")
