"""Fit the detector's person score on labelled frames (a training split, never the one reported).

Each candidate peak the detector finds is labelled positive when it lies in a
person box; scikit-learn's HistGradientBoostingClassifier is fitted on the
candidates' features (`detector.FEATURE_NAMES`), one model per light (any,
day, night), and stored as plain arrays (`vision.tree_model`).

Two numbers are set on held-out frames of the same split (two-fold, by frame):
- the bias, so that `DetectorParams.min_score` is the threshold with the best
  recall at the target precision. The day and night models share one
  threshold (set on their pooled held-out scores): a false alarm costs the
  same by day and by night, so both work at the same marginal precision;
- the cascade floor: the first-stage sum below which a candidate skips the
  remaining trees, set so that almost no person kept at that threshold is lost;
- the screen's floor: a small model on the cheap `detector.SHAPE_NAMES`
  features, fitted the same way, drops the candidates below it before the
  patch features are computed; set so that about 1 in 500 persons kept at the
  threshold is lost.

    python -m vision.tuning --images TRAIN_DIR --annotations TRAIN_JSON --write

scikit-learn is a development dependency: only fitting needs it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from vision.detector import FEATURE_NAMES, SHAPE_NAMES, DetectorParams, ThermalDetector, feature_columns
from vision.evaluation import Accumulator, LabelledBox, match_frame
from vision.tree_model import BUNDLED_TREES, LIGHTS, TreeEnsemble, from_sklearn, save_named, screen_key

#: Trees in the cascade's first stage, and the share of kept persons it may lose.
STAGE_TREES = 40
STAGE_LOSS = 0.005
#: Boosting settings (measured on two-fold train: more trees or leaves gained nothing).
BOOSTING = {"max_iter": 300, "learning_rate": 0.1, "max_leaf_nodes": 31, "l2_regularization": 1.0}
#: The screen: what it sees (the shape features without their squares), how it is boosted (few, small trees:
#: it runs on every candidate), and the share of kept persons it may lose. Measured two-fold on train: it lets
#: 10 % (night) to 24 % (day) of candidates through; 20 trees let about twice as many through, 31 leaves did
#: worse.
SCREEN_NAMES = tuple(n for n in SHAPE_NAMES if not n.endswith("_sq"))
SCREEN_BOOSTING = {"max_iter": 40, "learning_rate": 0.2, "max_leaf_nodes": 15, "l2_regularization": 1.0,
                   "early_stopping": False}
SCREEN_LOSS = 0.002


@dataclass(frozen=True)
class LabelledFrame:
    """One frame's candidates: features (N, F), labels (N,), peak positions (N, 2) and the frame's boxes."""

    x: np.ndarray
    y: np.ndarray
    centres: np.ndarray
    boxes: tuple[LabelledBox, ...]
    night: bool


def label_peaks(xs: np.ndarray, ys: np.ndarray, boxes: Sequence[LabelledBox], target: str = "Person") -> np.ndarray:
    """1.0 where a candidate peak lies inside a `target` box, else 0.0."""
    y = np.zeros(xs.size)
    for b in boxes:
        if b.category == target:
            y[np.asarray(b.contains(xs, ys), dtype=bool)] = 1.0
    return y


def fit_trees(x: np.ndarray, y: np.ndarray, names: Sequence[str], source: str = "", seed: int = 0,
              boosting: dict | None = None) -> TreeEnsemble:
    """Boosted trees on candidate features (the import is here: the detector itself never needs scikit-learn)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    clf = HistGradientBoostingClassifier(random_state=seed, **(boosting or BOOSTING)).fit(x, y)
    return from_sklearn(clf, tuple(names), source)


def fit_screen(x: np.ndarray, y: np.ndarray, source: str = "", seed: int = 0) -> TreeEnsemble:
    """The screen on the `SCREEN_NAMES` columns of a `FEATURE_NAMES` matrix."""
    return fit_trees(x[:, _SCREEN_COLUMNS], y, SCREEN_NAMES, source, seed, SCREEN_BOOSTING)


_SCREEN_COLUMNS = feature_columns(SCREEN_NAMES)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


@dataclass(frozen=True)
class HeldOut:
    """Scores of frames by models that did not see them: full raw score, first-stage sum and screen decision."""

    frames: tuple[LabelledFrame, ...]
    full: tuple[np.ndarray, ...]
    partial: tuple[np.ndarray, ...]
    screen: tuple[np.ndarray, ...]

    def operating_point(self, min_precision: float) -> dict[str, float]:
        """Raw-score threshold with the best recall at `min_precision` (best F1 if unreachable)."""
        acc = Accumulator()
        for f, z in zip(self.frames, self.full):
            acc.add(match_frame(f.centres, z, f.boxes), z)
        at = acc.recall_at_precision(min_precision)
        return at if at["recall"] > 0 else acc.best_f1()

    def kept_persons(self, threshold: float) -> np.ndarray:
        """Which candidates (all frames, in order) are persons the full score keeps at `threshold`."""
        return (np.concatenate([f.y for f in self.frames]) > 0) & (np.concatenate(self.full) >= threshold)

    def stage_margin(self, threshold: float) -> float:
        """How far below `threshold` the first-stage sum may fall for all but `STAGE_LOSS` of kept persons."""
        kept = self.kept_persons(threshold)
        zp = np.concatenate(self.partial)
        return min(float(np.quantile(zp[kept] - threshold, STAGE_LOSS)), 0.0) if kept.any() else 0.0

    def screen_floor(self, threshold: float) -> float:
        """The screen decision that all but `SCREEN_LOSS` of the persons kept at `threshold` reach."""
        kept = self.kept_persons(threshold)
        return float(np.quantile(np.concatenate(self.screen)[kept], SCREEN_LOSS)) if kept.any() else -np.inf

    def __add__(self, other: HeldOut) -> HeldOut:
        return HeldOut(self.frames + other.frames, self.full + other.full, self.partial + other.partial,
                       self.screen + other.screen)


def held_out(frames: Sequence[LabelledFrame], names: Sequence[str], min_precision: float, seed: int = 0,
             log=None) -> HeldOut:
    """Two-fold (by frame): each half scored by trees (and a screen) fitted on the other half.

    The frames' matrices have `FEATURE_NAMES` columns: the screen takes its own from them."""
    fold = np.random.default_rng(seed).random(len(frames)) < 0.5
    out = HeldOut((), (), (), ())
    for k in (False, True):
        train = [f for f, g in zip(frames, fold) if g != k]
        held = tuple(f for f, g in zip(frames, fold) if g == k)
        x, y = np.vstack([f.x for f in train]), np.concatenate([f.y for f in train])
        model = fit_trees(x, y, names, seed=seed)
        screen = fit_screen(x, y, seed=seed)
        first = model.with_cascade(STAGE_TREES, np.inf)
        part = HeldOut(held, tuple(model.decision(f.x) for f in held), tuple(first.decision(f.x) for f in held),
                       tuple(screen.decision(f.x[:, _SCREEN_COLUMNS]) for f in held))
        if log:
            at = part.operating_point(min_precision)
            log(f"  fold {int(k)}: held-out recall {at['recall']:.3f} at precision {at['precision']:.3f}")
        out = out + part
    return out


def operate(model: TreeEnsemble, threshold: float, margin: float, min_score: float) -> TreeEnsemble:
    """Shift the bias so that `min_score` is the raw `threshold`, and set the cascade floor `margin` below it."""
    shift = _logit(min_score) - threshold
    return model.with_bias(model.bias + shift).with_cascade(STAGE_TREES, _logit(min_score) + margin)


def operate_screen(screen: TreeEnsemble, floor: float) -> TreeEnsemble:
    """Shift the screen's bias so that its decision is 0 at `floor` (the detector keeps candidates at >= 0)."""
    return screen.with_bias(screen.bias - floor)


def collect(images: str, annotations: str, params: DetectorParams, names: Sequence[str],
            log=None) -> list[LabelledFrame]:
    """Every candidate of every frame (never screened), with features and labels."""
    from vision.hitu_dataset import HitUavDataset, hit_uav_camera, hit_uav_pose

    ds = HitUavDataset(images, annotations)
    camera = hit_uav_camera()
    det = ThermalDetector(replace(params, screen=False))  # the screen is fitted on these: it must see them all
    columns = feature_columns(tuple(names))
    out = []
    for i, smp in enumerate(ds, 1):
        signal, mode = det.signal(smp.load_gray(), camera)
        c = det.candidates(signal, mode, camera, hit_uav_pose(smp.flight))
        x = c.features[:, columns]
        out.append(LabelledFrame(x, label_peaks(c.xs, c.ys, smp.boxes), np.c_[c.xs, c.ys].astype(float),
                                 tuple(smp.boxes), smp.flight.night))
        if log and i % 200 == 0:
            log(f"features: {i}/{len(ds)} frames")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True)
    ap.add_argument("--annotations", required=True)
    ap.add_argument("--precision", type=float, default=0.7, help="target precision for the operating point")
    ap.add_argument("--write", action="store_true", help="replace the bundled model (only ever fit it on train)")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.monotonic()
    params = DetectorParams(min_score=0.0, thumbnails=False, score_lying=False, screen=False)
    frames = collect(args.images, args.annotations, params, FEATURE_NAMES, log)
    log(f"{sum(f.x.shape[0] for f in frames)} candidates in {len(frames)} frames ({time.monotonic() - t0:.0f} s)")
    min_score = DetectorParams().min_score
    models, screens, checks = {}, {}, {}
    for light in LIGHTS:
        subset = [f for f in frames if light == "any" or f.night == (light == "night")]
        log(f"{light}: held-out scores on {len(subset)} frames")
        checks[light] = held_out(subset, FEATURE_NAMES, args.precision, log=log)
        x, y = np.vstack([f.x for f in subset]), np.concatenate([f.y for f in subset])
        source = f"fitted by vision.tuning on {args.annotations} ({light} light, {len(subset)} frames)"
        models[light] = fit_trees(x, y, FEATURE_NAMES, source)
        screens[light] = fit_screen(x, y, "screen " + source)
        log(f"{light}: fitted ({time.monotonic() - t0:.0f} s)")
    # One threshold for the day and night models together: a false alarm costs the same by day and by night,
    # so both work where their marginal precision is equal, and the pair reaches the target precision overall.
    both = checks["day"] + checks["night"]
    at = both.operating_point(args.precision)
    log(f"day+night held out: recall {at['recall']:.3f} at precision {at['precision']:.3f}")
    at_any = checks["any"].operating_point(args.precision)
    log(f"any held out: recall {at_any['recall']:.3f} at precision {at_any['precision']:.3f}")
    thresholds = {"day": at["threshold"], "night": at["threshold"], "any": at_any["threshold"]}
    for light, t in thresholds.items():
        models[light] = operate(models[light], t, checks[light].stage_margin(t), min_score)
        floor = checks[light].screen_floor(t)
        screens[light] = operate_screen(screens[light], floor)
        passed = np.mean(np.concatenate(checks[light].screen) >= floor)
        log(f"{light}: the screen passes {passed:.1%} of held-out candidates")
    if args.write:
        save_named(BUNDLED_TREES, models | {screen_key(light): m for light, m in screens.items()})
        print(f"wrote {BUNDLED_TREES}")


if __name__ == "__main__":
    main()
