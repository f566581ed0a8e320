"""A boosted-tree person score, evaluated with numpy (no learning library at run time).

Why trees: an additive score (one curve per feature, the model this
replaced) judges each feature on its own, but a person is a combination (a
faint peak is fine when the shape and the patch around it are right; a strong
one is not when it sits on a warm strip). Gradient-boosted trees learn those combinations from HIT-UAV's
train split (`vision.tuning`, which uses scikit-learn's
HistGradientBoostingClassifier); this module only stores and walks the trees.

Storage is a plain `.npz` of arrays (no pickle): every tree's nodes are
concatenated; a leaf points to itself with an infinite threshold, so all
candidates can walk all trees level by level in a handful of vectorised steps.

Cascade: the first `stage_trees` trees are summed for every candidate; those
below `stage_floor` (a margin chosen on train so almost no person is lost)
skip the remaining trees. Most candidates in a frame are clutter, so this
roughly halves the time spent in the trees.

The bundled file also holds one screen per light: a small ensemble on the
detector's cheap shape features that runs before the costly patch features
are measured (see `vision.detector`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

BUNDLED_TREES = Path(__file__).with_name("trees_hit_uav.npz")


@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """Sum of regression trees on a feature matrix; `score` is the logistic of `bias` + that sum."""

    #: Column names of the feature matrix the trees split on, in order.
    names: tuple[str, ...]
    bias: float
    #: Per node (all trees concatenated): split feature, threshold (go left when x <= threshold), children, leaf value.
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    #: Index of each tree's root node, and each tree's depth (levels to walk).
    roots: np.ndarray
    depths: np.ndarray
    #: Cascade: trees summed for every candidate, and the raw sum below which a candidate stops there.
    stage_trees: int = 0
    stage_floor: float = -np.inf
    #: Where the model came from, for reports.
    source: str = ""

    def __post_init__(self) -> None:
        n = self.feature.size
        for name in ("threshold", "left", "right", "value"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"TreeEnsemble.{name} must have one entry per node ({n})")
        if n and (self.feature.max() >= len(self.names) or self.feature.min() < 0):
            raise ValueError("TreeEnsemble.feature refers to a column outside names")
        for name in ("left", "right", "roots"):
            a = getattr(self, name)
            if a.size and (a.min() < 0 or a.max() >= n):
                raise ValueError(f"TreeEnsemble.{name} points outside the node arrays")
        if self.depths.shape != self.roots.shape:
            raise ValueError("TreeEnsemble.depths must have one entry per tree")
        if not 0 <= self.stage_trees <= self.roots.size:
            raise ValueError("TreeEnsemble.stage_trees must be between 0 and the number of trees")

    @property
    def n_trees(self) -> int:
        return int(self.roots.size)

    @property
    def depth(self) -> int:
        """The deepest tree's depth."""
        return int(self.depths.max()) if self.depths.size else 0

    @cached_property
    def _children(self) -> np.ndarray:
        """left, right of every node, interleaved: a node's next node is one lookup at 2 * node + go_right."""
        kids = np.empty(2 * self.left.size, dtype=np.intp)
        kids[0::2], kids[1::2] = self.left, self.right
        return kids

    @cached_property
    def _plans(self) -> dict[tuple[int, int], tuple[np.ndarray, list[int]]]:
        """Per run of trees: their roots deepest first, and how many of them are deeper than each level."""
        return {}

    def _plan(self, start: int, stop: int) -> tuple[np.ndarray, list[int]]:
        plan = self._plans.get((start, stop))
        if plan is None:
            depths = self.depths[start:stop]
            order = np.argsort(-depths, kind="stable")
            levels = np.arange(int(depths.max()) if depths.size else 0)
            plan = (self.roots[start:stop][order], (depths[None, :] > levels[:, None]).sum(axis=1).tolist())
            self._plans[(start, stop)] = plan
        return plan

    def _walk(self, x: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Sum of the leaf values of trees start..stop for each row of x (N, F) -> (N,).

        Trees are walked deepest first, and each level only moves the trees that are that deep, so shallow
        trees cost no more than their depth. (ndarray.take: faster than indexing for these flat lookups.)"""
        roots, deeper = self._plan(start, self.n_trees if stop is None else stop)
        n = x.shape[0]
        node = np.broadcast_to(roots, (n, roots.size)).copy()
        flat = x.ravel()
        base = (np.arange(n, dtype=np.intp) * x.shape[1])[:, None]
        kids = self._children
        for k in deeper:
            at = node if k == roots.size else node[:, :k]
            column = self.feature.take(at)
            column += base
            step = 2 * at
            step += flat.take(column) > self.threshold.take(at)
            if k == roots.size:
                node = kids.take(step)
            else:
                node[:, :k] = kids.take(step)
        return self.value.take(node).sum(axis=1)

    def decision(self, x: np.ndarray) -> np.ndarray:
        """Raw score (log-odds) per row; rows stopped by the cascade keep their first-stage sum.

        Features must be finite (the trees are converted without missing-value branches)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.names):
            raise ValueError(f"expected a feature matrix (N, {len(self.names)}), got shape {x.shape}")
        if x.shape[0] == 0:
            return np.zeros(0)
        k = self.stage_trees
        if k == 0 or k == self.n_trees:
            return self.bias + self._walk(x)
        z = self.bias + self._walk(x, 0, k)
        go_on = np.flatnonzero(z >= self.stage_floor)
        if go_on.size:
            z[go_on] += self._walk(x[go_on], k)
        return z

    def score(self, x: np.ndarray) -> np.ndarray:
        """Person-likeness in [0, 1] per row."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.decision(x), -30.0, 30.0)))

    # ------------------------------------------------------------------ variants

    def with_cascade(self, stage_trees: int, stage_floor: float) -> TreeEnsemble:
        return replace(self, stage_trees=stage_trees, stage_floor=stage_floor)

    def with_bias(self, bias: float) -> TreeEnsemble:
        return replace(self, bias=bias)


def from_sklearn(clf: Any, names: tuple[str, ...], source: str = "") -> TreeEnsemble:
    """Convert a fitted binary `HistGradientBoostingClassifier` (numeric features, no missing values)."""
    feats, thrs, lefts, rights, vals, roots = [], [], [], [], [], []
    offset, depths = 0, []
    for (tree,) in clf._predictors:  # one tree per iteration for a binary classifier
        nd = tree.nodes
        m = nd.size
        leaf = nd["is_leaf"].astype(bool)
        if nd["is_categorical"].any():
            raise ValueError("categorical splits are not supported: the detector's features are all numeric")
        idx = np.arange(m) + offset
        feats.append(np.where(leaf, 0, nd["feature_idx"]))
        thrs.append(np.where(leaf, np.inf, nd["num_threshold"]))
        lefts.append(np.where(leaf, idx, nd["left"].astype(np.int64) + offset))
        rights.append(np.where(leaf, idx, nd["right"].astype(np.int64) + offset))
        vals.append(np.where(leaf, nd["value"], 0.0))
        roots.append(offset)
        depths.append(int(nd["depth"].max()))
        offset += m
    bias = float(np.ravel(clf._baseline_prediction)[0])
    return TreeEnsemble(tuple(names), bias, np.concatenate(feats).astype(np.intp), np.concatenate(thrs),
                        np.concatenate(lefts).astype(np.intp), np.concatenate(rights).astype(np.intp),
                        np.concatenate(vals), np.asarray(roots, dtype=np.intp), np.asarray(depths, dtype=np.intp),
                        source=source)


#: The bundled models: one for unknown light, one fitted on daytime and one on night-time frames.
LIGHTS = ("any", "day", "night")


@lru_cache(maxsize=2 * len(LIGHTS))
def bundled_trees(light: str, screen: bool = False) -> TreeEnsemble:
    """The score (or, with `screen`, the screen) fitted on HIT-UAV train for this light (read once; immutable)."""
    if light not in LIGHTS:
        raise ValueError(f"no bundled tree model for light {light!r}: use one of {LIGHTS}")
    return load_named(BUNDLED_TREES, screen_key(light) if screen else light)


def screen_key(light: str) -> str:
    """Name of a light's screen in the bundled file."""
    return f"screen_{light}"


def save_named(path: Path | str, models: dict[str, TreeEnsemble]) -> None:
    """Several ensembles in one `.npz`, each under its name prefix."""
    arrays: dict[str, np.ndarray] = {}
    for key, m in models.items():
        meta = {"names": list(m.names), "bias": m.bias, "stage_trees": m.stage_trees,
                "stage_floor": m.stage_floor, "source": m.source}
        arrays[f"{key}_meta"] = np.array(json.dumps(meta))
        arrays[f"{key}_feature"] = m.feature.astype(np.int16)
        arrays[f"{key}_threshold"] = m.threshold
        arrays[f"{key}_left"] = m.left.astype(np.int32)
        arrays[f"{key}_right"] = m.right.astype(np.int32)
        arrays[f"{key}_value"] = m.value.astype(np.float64)
        arrays[f"{key}_roots"] = m.roots.astype(np.int32)
        arrays[f"{key}_depths"] = m.depths.astype(np.int16)
    np.savez_compressed(path, **arrays)


def load_named(path: Path | str, key: str) -> TreeEnsemble:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z[f"{key}_meta"]))
        return TreeEnsemble(tuple(meta["names"]), float(meta["bias"]), z[f"{key}_feature"].astype(np.intp),
                            z[f"{key}_threshold"].astype(np.float64), z[f"{key}_left"].astype(np.intp),
                            z[f"{key}_right"].astype(np.intp), z[f"{key}_value"].astype(np.float64),
                            z[f"{key}_roots"].astype(np.intp), z[f"{key}_depths"].astype(np.intp),
                            int(meta["stage_trees"]),
                            float(meta["stage_floor"]), str(meta.get("source", "")))
