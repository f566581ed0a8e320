"""Scoring detections against labelled boxes: one-to-one matching, precision/recall/F1, PR curves.

Rule (as the search teams count it): a detection finds a person when its centre
lies inside the person's box; each box can be found once and each detection can
find one box. Matching is greedy in descending score, taking the nearest unmatched
box whose area contains the centre -- the VOC/COCO convention, which makes the
result at any score threshold equal to re-running the match with only the
detections above it, so one pass yields the whole precision/recall curve.

A detection that finds no person but lies in an ignore box (HIT-UAV's DontCare)
is neither a hit nor a false alarm. Other false alarms are attributed to the
labelled object they lie on (car, bicycle, ...) or to the background, which is
what tells a reader *why* the detector is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

BACKGROUND = "background"


@dataclass(frozen=True)
class LabelledBox:
    """An annotated box [x, y, w, h] in pixels with its category name."""

    x: float
    y: float
    w: float
    h: float
    category: str

    def contains(self, px: np.ndarray, py: np.ndarray) -> np.ndarray:
        return (px >= self.x) & (px <= self.x + self.w) & (py >= self.y) & (py <= self.y + self.h)


@dataclass(frozen=True)
class FrameMatch:
    """Outcome of matching one frame's detections (in the given order) against its boxes."""

    #: For each detection: "tp", "fp" or "ignored".
    outcome: tuple[str, ...]
    #: For each detection: the category it lies on (target category for a tp, BACKGROUND if none).
    lies_on: tuple[str, ...]
    n_targets: int


def match_frame(centres: np.ndarray, scores: np.ndarray, boxes: Sequence[LabelledBox], target: str = "Person",
                ignore: Iterable[str] = ("DontCare",)) -> FrameMatch:
    """Match detection centres (N, 2) with `scores` (N,) to the `target` boxes of one frame."""
    centres = np.asarray(centres, dtype=float).reshape(-1, 2)
    scores = np.asarray(scores, dtype=float).ravel()
    if centres.shape[0] != scores.shape[0]:
        raise ValueError(f"{centres.shape[0]} centres but {scores.shape[0]} scores")
    ignore = set(ignore)
    targets = [b for b in boxes if b.category == target]
    others = [b for b in boxes if b.category != target]
    n = centres.shape[0]
    outcome = ["fp"] * n
    lies_on = [BACKGROUND] * n
    if n == 0:
        return FrameMatch((), (), len(targets))
    px, py = centres[:, 0], centres[:, 1]
    inside = np.array([b.contains(px, py) for b in targets]).reshape(len(targets), n)
    if targets:
        tc = np.array([[b.x + b.w / 2.0, b.y + b.h / 2.0] for b in targets])
    taken = np.zeros(len(targets), dtype=bool)
    for i in np.argsort(-scores, kind="stable"):
        cand = np.flatnonzero(inside[:, i] & ~taken) if targets else np.array([], dtype=int)
        if cand.size:
            j = cand[np.argmin(np.hypot(tc[cand, 0] - px[i], tc[cand, 1] - py[i]))]
            taken[j] = True
            outcome[i] = "tp"
            lies_on[i] = target
            continue
        if targets and inside[:, i].any():
            lies_on[i] = target  # a second detection on an already-found person: a duplicate, counted false
        else:
            on = [b.category for b in others if bool(b.contains(px[i:i + 1], py[i:i + 1])[0])]
            if any(c in ignore for c in on):
                outcome[i] = "ignored"
                lies_on[i] = next(c for c in on if c in ignore)
            elif on:
                lies_on[i] = on[0]
    return FrameMatch(tuple(outcome), tuple(lies_on), len(targets))


@dataclass(frozen=True)
class Counts:
    """True/false positives and misses, with the derived rates."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    frames: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.frames + other.frames)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "frames": self.frames, "tp": self.tp, "fp": self.fp, "fn": self.fn,
            "precision": round(self.precision, 4), "recall": round(self.recall, 4), "f1": round(self.f1, 4),
            "false_alarms_per_frame": round(self.fp / self.frames, 4) if self.frames else 0.0,
        }


@dataclass
class Accumulator:
    """Collects matched frames; gives counts at any score threshold and the precision/recall curve."""

    scores: list[float] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    lies_on: list[str] = field(default_factory=list)
    n_targets: int = 0
    frames: int = 0

    def add(self, match: FrameMatch, scores: np.ndarray) -> None:
        self.scores.extend(float(s) for s in np.asarray(scores).ravel())
        self.outcomes.extend(match.outcome)
        self.lies_on.extend(match.lies_on)
        self.n_targets += match.n_targets
        self.frames += 1

    def counts(self, min_score: float = -np.inf) -> Counts:
        s = np.asarray(self.scores)
        o = np.asarray(self.outcomes)
        keep = s >= min_score
        tp = int(np.sum(keep & (o == "tp")))
        fp = int(np.sum(keep & (o == "fp")))
        return Counts(tp, fp, self.n_targets - tp, self.frames)

    def false_alarm_sources(self, min_score: float = -np.inf) -> dict[str, int]:
        """How many false alarms lie on each labelled category (or the background)."""
        out: dict[str, int] = {}
        for s, o, c in zip(self.scores, self.outcomes, self.lies_on):
            if s >= min_score and o == "fp":
                key = "duplicate" if c == "Person" else c
                out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items()))

    def curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(thresholds, precision, recall) with one point per distinct score, thresholds descending."""
        s = np.asarray(self.scores)
        o = np.asarray(self.outcomes)
        keep = o != "ignored"
        s, o = s[keep], o[keep]
        if s.size == 0:
            return np.array([]), np.array([]), np.array([])
        order = np.argsort(-s, kind="stable")
        s, o = s[order], o[order]
        tp = np.cumsum(o == "tp")
        fp = np.cumsum(o == "fp")
        last = np.r_[s[1:] != s[:-1], True]  # take the cumulative count after the last detection of each score
        tp, fp, s = tp[last], fp[last], s[last]
        precision = tp / np.maximum(tp + fp, 1)
        recall = tp / max(self.n_targets, 1)
        return s, precision, recall

    def best_f1(self) -> dict[str, float]:
        """The score threshold with the highest F1 on this data (an upper bound: it is tuned on what it scores)."""
        t, p, r = self.curve()
        if t.size == 0:
            return {"threshold": float("nan"), "precision": 0.0, "recall": 0.0, "f1": 0.0}
        f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
        i = int(np.argmax(f1))
        return {"threshold": round(float(t[i]), 4), "precision": round(float(p[i]), 4),
                "recall": round(float(r[i]), 4), "f1": round(float(f1[i]), 4)}

    def recall_at_precision(self, min_precision: float) -> dict[str, float]:
        """Highest recall reachable with precision >= min_precision, and the threshold giving it."""
        t, p, r = self.curve()
        ok = p >= min_precision
        if not ok.any():
            return {"min_precision": min_precision, "recall": 0.0, "precision": float("nan"),
                    "threshold": float("nan")}
        i = int(np.flatnonzero(ok)[np.argmax(r[ok])])
        return {"min_precision": min_precision, "recall": round(float(r[i]), 4), "precision": round(float(p[i]), 4),
                "threshold": round(float(t[i]), 4)}
