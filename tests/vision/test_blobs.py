"""Non-maximum suppression of warm peaks: one detection per person-sized ellipse, strongest first."""

from __future__ import annotations

import numpy as np

from vision import blobs


def _greedy(ys: np.ndarray, xs: np.ndarray, hw: np.ndarray, hh: np.ndarray) -> np.ndarray:
    """The rule written out plainly: walk peaks strongest first; a kept peak removes weaker ones in its ellipse."""
    keep = np.ones(ys.size, dtype=bool)
    for i in range(ys.size):
        if not keep[i]:
            continue
        for j in range(i + 1, ys.size):
            if ((xs[j] - xs[i]) / hw[i]) ** 2 + ((ys[j] - ys[i]) / hh[i]) ** 2 < 1.0:
                keep[j] = False
    return keep


def test_matches_the_plain_greedy_rule_on_random_peaks() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(0, 120))
        ys, xs = rng.integers(0, 512, n), rng.integers(0, 640, n)
        hw = rng.uniform(3, 40, n).astype(np.float32)
        hh = rng.uniform(3, 40, n).astype(np.float32)
        assert np.array_equal(blobs.suppress_duplicates(ys, xs, hw, hh), _greedy(ys, xs, hw, hh))


def test_a_suppressed_peak_does_not_suppress_others() -> None:
    # B is inside A's ellipse, C inside B's but not A's: A and C stay
    ys = np.array([100, 100, 100])
    xs = np.array([100, 108, 116])
    half = np.full(3, 10.0, dtype=np.float32)
    assert blobs.suppress_duplicates(ys, xs, half, half).tolist() == [True, False, True]


def test_a_long_chain_of_peaks_settles_like_the_greedy_rule() -> None:
    # each peak lies only in its neighbour's ellipse, so each waits for the one before it (past the round cap)
    n = 120
    ys, xs = np.full(n, 200), np.arange(n) * 5
    half = np.full(n, 6.0, dtype=np.float32)
    kept = blobs.suppress_duplicates(ys, xs, half, half)
    assert np.array_equal(kept, _greedy(ys, xs, half, half))
    assert kept.tolist() == [k % 2 == 0 for k in range(n)]
