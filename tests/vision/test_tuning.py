"""Fitting the person score: labels from boxes, trees that separate, an operating point that lands on min_score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vision.detector import FEATURE_NAMES, DetectorParams
from vision.evaluation import LabelledBox

pytest.importorskip("sklearn", reason="scikit-learn (a dev dependency) fits the trees")
from vision import tuning  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "hit-uav"


def test_peaks_inside_person_boxes_are_positive() -> None:
    boxes = [LabelledBox(10, 10, 5, 8, "Person"), LabelledBox(40, 40, 20, 10, "Car")]
    y = tuning.label_peaks(np.array([12, 45, 100]), np.array([15, 45, 100]), boxes)
    assert y.tolist() == [1.0, 0.0, 0.0]


def test_trees_fitted_on_real_frames_separate_persons_and_operate_at_min_score() -> None:
    params = DetectorParams(min_score=0.0, thumbnails=False, score_lying=False, screen=False)
    frames = tuning.collect(str(DATA / "images"), str(DATA / "annotations.json"), params, FEATURE_NAMES)
    x = np.vstack([f.x for f in frames])
    y = np.concatenate([f.y for f in frames])
    assert 20 < y.sum() < y.size / 2
    model = tuning.fit_trees(x, y, FEATURE_NAMES)
    z = model.decision(x)
    assert z[y > 0].mean() > z[y == 0].mean() + 2.0
    # the operating point: a raw threshold t becomes the detector's min_score; the cascade floor below it is set
    # so that (almost) no person above t stops at the first stage
    t = float(np.quantile(z[y > 0], 0.2))
    first = model.with_cascade(tuning.STAGE_TREES, np.inf)
    screen = tuning.fit_screen(x, y)
    scored = tuning.HeldOut(tuple(frames), tuple(model.decision(f.x) for f in frames),
                            tuple(first.decision(f.x) for f in frames),
                            tuple(screen.decision(f.x[:, tuning._SCREEN_COLUMNS]) for f in frames))
    margin = scored.stage_margin(t)
    assert margin <= 0.0
    op = tuning.operate(model, t, margin, 0.5)
    full = op.with_cascade(0, -np.inf)
    np.testing.assert_allclose(full.decision(x), z - t, atol=1e-9)
    assert np.array_equal(full.score(x) >= 0.5, z >= t)
    kept = op.score(x) >= 0.5  # the cascade can only drop candidates, never add one
    assert not (kept & (z < t)).any()
    persons_above = (y > 0) & (z >= t)
    assert (kept & persons_above).sum() >= (1 - tuning.STAGE_LOSS) * persons_above.sum() - 1
    # the screen: shifted so that its decision is 0 at the floor, it passes all but SCREEN_LOSS of those persons
    floor = scored.screen_floor(t)
    passes = tuning.operate_screen(screen, floor).decision(x[:, tuning._SCREEN_COLUMNS]) >= 0.0
    assert passes[persons_above].sum() >= (1 - tuning.SCREEN_LOSS) * persons_above.sum() - 1
    assert passes.mean() < 0.9
