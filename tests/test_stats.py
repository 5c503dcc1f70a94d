"""pipeline.stats: the interquartile mean and the percentile bootstrap, against known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import trim_mean

from pipeline.stats import bootstrap_ci, iqm


@pytest.mark.parametrize("values,expected", [
    ([1, 2, 3, 4, 5, 6, 7, 8], 4.5),  # the middle four: 3, 4, 5, 6
    ([4, 3, 2, 1], 2.5),  # sorted first: the middle two, 2 and 3
    ([0, 0, 0, 100], 0.0),  # one outlier does not move it
    ([1, 2, 3, 4, 100], 3.0),  # n=5: one cut from each end
    ([7], 7.0), ([2, 4], 3.0), ([1, 2, 3], 2.0),  # under four values: nothing to cut
])
def test_iqm_known_answers(values, expected):
    assert iqm(values) == pytest.approx(expected)


def test_iqm_is_scipys_trim_mean_and_nan_for_nothing():
    rng = np.random.default_rng(1)
    for n in (4, 9, 10, 11, 60, 101):
        x = rng.exponential(size=n)
        assert iqm(x) == pytest.approx(trim_mean(x, 0.25))
    assert math.isnan(iqm([]))


def test_bootstrap_of_two_values_has_the_extreme_means_as_its_bounds():
    # Resamples of [0, 1] have mean 0, 0.5 or 1 with probability 1/4, 1/2, 1/4: the 2.5%
    # and 97.5% quantiles are 0 and 1.
    assert bootstrap_ci([0.0, 1.0], resamples=2000) == (0.0, 1.0)


def test_bootstrap_of_a_constant_is_that_constant():
    assert bootstrap_ci([3.5] * 10) == (3.5, 3.5)
    assert bootstrap_ci([2.0] * 9, iqm, clusters=list(range(9))) == (2.0, 2.0)


def test_bootstrap_matches_the_normal_interval_of_a_proportion():
    x = np.array([0.0] * 50 + [1.0] * 50)  # mean 0.5, standard error 0.05
    low, high = bootstrap_ci(x, resamples=2000, confidence=0.95, seed=0)
    assert low == pytest.approx(0.5 - 1.96 * 0.05, abs=0.015)
    assert high == pytest.approx(0.5 + 1.96 * 0.05, abs=0.015)
    narrow = bootstrap_ci(x, confidence=0.5)
    assert low < narrow[0] < 0.5 < narrow[1] < high


def test_bootstrap_is_seeded():
    x = np.random.default_rng(2).normal(size=30)
    assert bootstrap_ci(x, seed=7) == bootstrap_ci(x, seed=7)
    assert bootstrap_ci(x, seed=7) != bootstrap_ci(x, seed=8)


def test_cluster_bootstrap_ignores_copies_of_the_same_episode():
    # A deterministic agent run 3 times plays each deal the same way: 3 copies per deal.
    # Resampling deals gives exactly the interval of the single copy; resampling rows
    # would give a narrower, wrong one.
    x = np.random.default_rng(3).normal(size=20)
    deals = [f"seed{i:02d}" for i in range(20)]
    single = bootstrap_ci(x, seed=0)
    tripled = np.repeat(x, 3)
    assert bootstrap_ci(tripled, clusters=np.repeat(deals, 3), seed=0) == pytest.approx(single)
    low, high = bootstrap_ci(tripled, seed=0)
    assert high - low < 0.75 * (single[1] - single[0])


def test_bootstrap_drops_nan_and_checks_its_arguments():
    assert bootstrap_ci([1.0, math.nan, 1.0]) == (1.0, 1.0)
    assert all(math.isnan(v) for v in bootstrap_ci([math.nan]))
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0], confidence=1.0)
    with pytest.raises(ValueError, match="cluster labels"):
        bootstrap_ci([1.0, 2.0], clusters=[0])
