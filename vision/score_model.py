"""The detector's score: an additive logistic model over binned candidate features.

Why binned: person-likeness is not monotonic in most features (too small and
too large are both wrong; moderate contrast beats both faint and glaring), so
each feature gets a piecewise-constant contribution (bins at training-set
quantiles) and the sum goes through a logistic. It is a generalised additive
model: readable feature by feature, one `searchsorted` per feature at run time.

The bundled model (`score_hit_uav.json`) was fitted by `vision.tuning` on
HIT-UAV's train split only; refit it for other cameras with the same command.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

BUNDLED = Path(__file__).with_name("score_hit_uav.json")


@dataclass(frozen=True)
class FeatureBins:
    """One feature's contribution: `values[i]` for x in bin i of `edges` (len(values) = len(edges) + 1)."""

    name: str
    edges: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.values) != len(self.edges) + 1:
            raise ValueError(f"feature {self.name}: need len(edges) + 1 values")
        if list(self.edges) != sorted(self.edges):
            raise ValueError(f"feature {self.name}: edges must be ascending")


@dataclass(frozen=True)
class ScoreModel:
    """score = 1 / (1 + exp(-(bias + sum of per-feature bin values)))."""

    bias: float
    features: tuple[FeatureBins, ...]
    #: Where the model came from (data set, split), for reports.
    source: str = ""

    def score(self, features: dict[str, np.ndarray]) -> np.ndarray:
        n = next(iter(features.values())).size if features else 0
        z = np.full(n, self.bias, dtype=np.float64)
        for f in self.features:
            z += np.asarray(f.values)[np.searchsorted(np.asarray(f.edges), features[f.name])]
        return 1.0 / (1.0 + np.exp(-z))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def to_json(self) -> str:
        return json.dumps({"bias": self.bias, "source": self.source, "features": [
            {"name": f.name, "edges": list(f.edges), "values": list(f.values)} for f in self.features]}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> ScoreModel:
        d = json.loads(text)
        return cls(float(d["bias"]), tuple(FeatureBins(f["name"], tuple(f["edges"]), tuple(f["values"]))
                                           for f in d["features"]), d.get("source", ""))


@lru_cache(maxsize=1)
def bundled_model() -> ScoreModel:
    """The model fitted on HIT-UAV train (read once; immutable)."""
    return ScoreModel.from_json(BUNDLED.read_text())
