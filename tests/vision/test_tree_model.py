"""Boosted trees walked with numpy: the same numbers as scikit-learn, a cascade that only skips, safe storage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vision.tree_model import TreeEnsemble, bundled_trees, from_sklearn, load_named, save_named

sklearn = pytest.importorskip("sklearn", reason="scikit-learn (a dev dependency) fits the trees")
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402


def _fitted(seed: int = 0) -> tuple[TreeEnsemble, HistGradientBoostingClassifier, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, 6))
    # an interaction no single feature shows: what trees are for
    y = ((x[:, 0] * x[:, 1] > 0.2) ^ (x[:, 2] > 1.0)).astype(float)
    clf = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=15, random_state=seed).fit(x, y)
    return from_sklearn(clf, tuple(f"f{i}" for i in range(6))), clf, rng.normal(size=(500, 6))


def test_same_scores_as_scikit_learn() -> None:
    model, clf, x = _fitted()
    assert model.n_trees == 60
    np.testing.assert_allclose(model.decision(x), clf.decision_function(x), rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.score(x), clf.predict_proba(x)[:, 1], rtol=0, atol=1e-9)


def test_cascade_only_stops_rows_below_the_floor() -> None:
    model, _, x = _fitted(1)
    full = model.decision(x)
    first = model.with_cascade(10, np.inf).decision(x)  # everything stops after 10 trees
    floor = float(np.median(first))
    cascaded = model.with_cascade(10, floor).decision(x)
    go_on = first >= floor
    assert 0 < go_on.sum() < x.shape[0]
    np.testing.assert_allclose(cascaded[go_on], full[go_on], atol=1e-12)
    np.testing.assert_allclose(cascaded[~go_on], first[~go_on], atol=1e-12)
    assert not np.allclose(first, full)


def test_storage_round_trip_without_pickle(tmp_path: Path) -> None:
    model, _, x = _fitted(2)
    model = model.with_bias(model.bias - 0.3).with_cascade(5, -1.0)
    path = tmp_path / "trees.npz"
    save_named(path, {"night": model})
    back = load_named(path, "night")
    assert (back.names, back.stage_trees, back.stage_floor, back.depth) == (model.names, 5, -1.0, model.depth)
    np.testing.assert_array_equal(back.decision(x), model.decision(x))
    with np.load(path, allow_pickle=False) as z:  # plain arrays: loads with pickle disabled
        assert "night_meta" in z.files


def test_bad_input_is_refused() -> None:
    model, _, x = _fitted(3)
    with pytest.raises(ValueError, match="feature matrix"):
        model.decision(x[:, :5])
    assert model.decision(np.zeros((0, 6))).shape == (0,)
    with pytest.raises(ValueError, match="stage_trees"):
        model.with_cascade(model.n_trees + 1, 0.0)
    with pytest.raises(ValueError, match="no bundled tree model"):
        bundled_trees("dusk")


def test_bundled_models_use_only_detector_features() -> None:
    from vision.detector import FEATURE_NAMES, SHAPE_NAMES

    for light in ("any", "day", "night"):
        m = bundled_trees(light)
        assert set(m.names) <= set(FEATURE_NAMES) and m.n_trees > m.stage_trees > 0
        assert "HIT-UAV" in m.source or "train" in m.source
        screen = bundled_trees(light, screen=True)
        assert set(screen.names) <= set(SHAPE_NAMES) and 0 < screen.n_trees < m.n_trees
        assert "screen" in screen.source
