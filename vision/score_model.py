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
class LinearFeature:
    """A derived feature: `bias + sum(coefs[i] * features[inputs[i]])` (e.g. a learned filter over patch samples).

    It is then binned like any measured feature, so the model stays additive in what it looks at.
    """

    name: str
    bias: float
    inputs: tuple[str, ...]
    coefs: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.coefs):
            raise ValueError(f"linear feature {self.name}: need one coefficient per input")

    def evaluate(self, features: dict[str, np.ndarray]) -> np.ndarray:
        x = np.stack([np.asarray(features[n], dtype=np.float64) for n in self.inputs], axis=1)
        return x @ np.asarray(self.coefs) + self.bias


@dataclass(frozen=True)
class ScoreModel:
    """score = 1 / (1 + exp(-(bias + sum of per-feature bin values))); derived linear features first."""

    bias: float
    features: tuple[FeatureBins, ...]
    #: Where the model came from (data set, split), for reports.
    source: str = ""
    #: Linear combinations of measured features, computed before binning (their names may be binned).
    derived: tuple[LinearFeature, ...] = ()

    def score(self, features: dict[str, np.ndarray]) -> np.ndarray:
        n = next(iter(features.values())).size if features else 0
        if self.derived:
            features = dict(features)
            for d in self.derived:
                features[d.name] = d.evaluate(features) if n else np.zeros(0)
        z = np.full(n, self.bias, dtype=np.float64)
        for f in self.features:
            z += np.asarray(f.values)[np.searchsorted(np.asarray(f.edges), features[f.name])]
        return 1.0 / (1.0 + np.exp(-z))

    @property
    def names(self) -> tuple[str, ...]:
        """The measured features the model needs (inputs of derived features included, derived names not)."""
        derived = {d.name for d in self.derived}
        out = [f.name for f in self.features if f.name not in derived]
        for d in self.derived:
            out.extend(n for n in d.inputs if n not in out)
        return tuple(dict.fromkeys(out))

    def as_dict(self) -> dict:
        return {"bias": self.bias, "source": self.source,
                "derived": [{"name": d.name, "bias": d.bias, "inputs": list(d.inputs), "coefs": list(d.coefs)}
                            for d in self.derived],
                "features": [{"name": f.name, "edges": list(f.edges), "values": list(f.values)}
                             for f in self.features]}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=1)

    @classmethod
    def from_dict(cls, d: dict) -> ScoreModel:
        return cls(float(d["bias"]), tuple(FeatureBins(f["name"], tuple(f["edges"]), tuple(f["values"]))
                                           for f in d["features"]), d.get("source", ""),
                   tuple(LinearFeature(x["name"], float(x["bias"]), tuple(x["inputs"]), tuple(x["coefs"]))
                         for x in d.get("derived", ())))

    @classmethod
    def from_json(cls, text: str) -> ScoreModel:
        return cls.from_dict(json.loads(text))


#: Which model to use: "any" when the light is unknown, or one fitted on daytime / night-time frames only
#: (a real deployment knows the light from the clock; HIT-UAV's file names carry it).
LIGHTS = ("any", "day", "night")


@lru_cache(maxsize=4)
def bundled_model(light: str = "any") -> ScoreModel:
    """The model fitted on HIT-UAV train for this light (read once; immutable).

    The bundled file holds either one model (used for every light) or {"any": ..., "day": ..., "night": ...}.
    """
    if light not in LIGHTS:
        raise ValueError(f"light must be one of {LIGHTS}, got {light!r}")
    d = json.loads(BUNDLED.read_text())
    if "bias" in d:
        return ScoreModel.from_dict(d)
    return ScoreModel.from_dict(d[light] if light in d else d["any"])
