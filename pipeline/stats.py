"""Small robust statistics for comparing agents (numpy only): the interquartile mean and a
percentile bootstrap confidence interval, optionally resampling clusters of rows.

The head-to-head leaderboard (pipeline/tracking/sweep.py) pools the evaluation episodes of
an agent's jobs. Episodes on the same deal (evaluation seed) are not independent: a
deterministic agent plays a deal the same way in every job. So the bootstrap resamples
deals, each with all of its episodes (`clusters=`), not single episodes; a heuristic run
three times then gets the interval of its 20 deals, not a falsely narrow one of 60 rows.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

Statistic = Callable[[np.ndarray], float]


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean of the middle 50% of the sorted values, cutting
    floor(n / 4) values from each end (scipy.stats.trim_mean(values, 0.25), as rliable
    computes it). NaN for no values."""
    x = np.sort(np.asarray(values, dtype=float).ravel())
    n = x.size
    if n == 0:
        return math.nan
    cut = n // 4
    return float(x[cut:n - cut].mean())


def bootstrap_ci(values: Sequence[float], statistic: Statistic = np.mean, *,
                 resamples: int = 2000, confidence: float = 0.95, seed: int = 0,
                 clusters: Sequence[object] | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(values)`.

    Draws `resamples` samples with replacement (fixed `seed`: the same data give the same
    interval) and returns the (1 - confidence) / 2 and (1 + confidence) / 2 quantiles of the
    statistic over them. With `clusters` (one label per value, e.g. the evaluation seed),
    whole clusters are drawn: as many as there are, each bringing all of its values. NaN
    values are dropped first (with their labels); (NaN, NaN) when none are left.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"bootstrap_ci: confidence {confidence} must be in (0, 1)")
    if resamples < 1:
        raise ValueError(f"bootstrap_ci: resamples {resamples} must be at least 1")
    x = np.asarray(values, dtype=float).ravel()
    keep = ~np.isnan(x)
    if clusters is not None:
        labels = np.asarray(list(clusters), dtype=object)
        if labels.size != x.size:
            raise ValueError(f"bootstrap_ci: {labels.size} cluster labels for {x.size} values")
        labels = labels[keep]
    x = x[keep]
    if x.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    if clusters is None:
        stats = [statistic(x[idx]) for idx in rng.integers(x.size, size=(resamples, x.size))]
    else:
        _, codes = np.unique(labels.astype(str), return_inverse=True)
        members = [x[codes == c] for c in range(codes.max() + 1)]
        draws = rng.integers(len(members), size=(resamples, len(members)))
        stats = [statistic(np.concatenate([members[c] for c in draw])) for draw in draws]
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(np.asarray(stats, dtype=float), [alpha, 1.0 - alpha])
    return float(low), float(high)
