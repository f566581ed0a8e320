"""Fit the detector's score weights on labelled frames (a training split, never the one reported).

The score is an additive logistic model (`vision.score_model`) over the
candidate features the detector already measures (`detector.FEATURE_NAMES`):
each candidate peak is labelled positive when it lies inside a person box;
each feature is cut into quantile bins and the one-hot bins are fitted by
L2-regularised Newton iterations (IRLS).

    python -m vision.tuning --images TRAIN_DIR --annotations TRAIN_JSON --write
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from vision.camera import CameraIntrinsics
from vision.detector import FEATURE_NAMES, DetectorParams, ThermalDetector
from vision.evaluation import Accumulator, LabelledBox, match_frame
from vision.pose import CameraPose
import json

from vision.score_model import BUNDLED, FeatureBins, LinearFeature, ScoreModel


def label_peaks(xs: np.ndarray, ys: np.ndarray, boxes: Sequence[LabelledBox], target: str = "Person") -> np.ndarray:
    """1.0 where a candidate peak lies inside a `target` box, else 0.0."""
    y = np.zeros(xs.size)
    for b in boxes:
        if b.category == target:
            y[np.asarray(b.contains(xs, ys), dtype=bool)] = 1.0
    return y


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 30) -> tuple[np.ndarray, float]:
    """(coefficients, bias) of an L2-regularised logistic regression, in the units of `x`."""
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    sd[sd < 1e-9] = 1.0
    z = (x - mu) / sd
    a = np.hstack([z, np.ones((z.shape[0], 1))])
    w = np.zeros(a.shape[1])
    reg = np.full(a.shape[1], l2)
    reg[-1] = 0.0  # the bias is not shrunk
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -30, 30)))
        grad = a.T @ (p - y) + reg * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    coef = w[:-1] / sd
    bias = float(w[-1] - np.sum(w[:-1] * mu / sd))
    return coef, bias


def fit_binned(x: np.ndarray, y: np.ndarray, names: Sequence[str], bins: int = 16, l2: float = 10.0,
               source: str = "") -> ScoreModel:
    """An additive logistic model: each feature cut at `bins`-quantiles, one-hot, L2 logistic regression."""
    edges = [np.unique(np.quantile(x[:, j], np.linspace(0, 1, bins + 1)[1:-1])) for j in range(x.shape[1])]
    cols = []
    for j, e in enumerate(edges):
        oh = np.zeros((x.shape[0], e.size + 1))
        oh[np.arange(x.shape[0]), np.searchsorted(e, x[:, j])] = 1.0
        cols.append(oh)
    coef, bias = fit_logistic(np.hstack(cols), y, l2)
    feats, k = [], 0
    for name, e in zip(names, edges):
        vals = coef[k:k + e.size + 1]
        k += e.size + 1
        feats.append(FeatureBins(name, tuple(round(float(v), 6) for v in e), tuple(round(float(v), 5) for v in vals)))
    return ScoreModel(round(bias, 5), tuple(feats), source)


def collect(frames: Iterable[tuple[np.ndarray, CameraPose | None, Sequence[LabelledBox]]], camera: CameraIntrinsics,
            detector: ThermalDetector, names: Sequence[str] = FEATURE_NAMES) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix (N, len(names)) and labels of every candidate in the frames."""
    xs, ys = [], []
    for img, pose, boxes in frames:
        signal, mode = detector.signal(img, camera)
        c = detector.candidates(signal, mode, camera, pose)
        if not len(c):
            continue
        xs.append(np.stack([c.features[n] for n in names], axis=1))
        ys.append(label_peaks(c.xs, c.ys, boxes))
    return np.vstack(xs), np.concatenate(ys)


def threshold_for(detector: ThermalDetector, frames: Iterable[tuple[np.ndarray, CameraPose | None,
                  Sequence[LabelledBox]]], camera: CameraIntrinsics, min_precision: float = 0.7) -> dict[str, float]:
    """Score threshold on these frames: best recall at `min_precision` if reachable, else best F1."""
    acc = Accumulator()
    for img, pose, boxes in frames:
        dets = detector.detect(img, camera, pose)
        centres = np.array([d.centre for d in dets]).reshape(-1, 2)
        scores = np.array([d.score for d in dets])
        acc.add(match_frame(centres, scores, boxes), scores)
    at_p = acc.recall_at_precision(min_precision)
    return at_p if at_p["recall"] > 0 else acc.best_f1()


PATCH_NAMES = tuple(n for n in FEATURE_NAMES if n[:2] in ("pn", "pq") and n[2:].isdigit())
BASE_NAMES = tuple(n for n in FEATURE_NAMES if n not in PATCH_NAMES)


def fit_model(x: np.ndarray, y: np.ndarray, names: Sequence[str], bins: int = 12, l2: float = 30.0,
              patch_l2: float = 30.0, source: str = "") -> ScoreModel:
    """Linear filter over the patch samples (a derived feature "patch"), then the binned additive model over
    the other features plus "patch"."""
    col = {n: j for j, n in enumerate(names)}
    pj = [col[n] for n in PATCH_NAMES if n in col]
    bj = [col[n] for n in names if n not in PATCH_NAMES]
    bnames = [names[j] for j in bj]
    derived: tuple[LinearFeature, ...] = ()
    xb = x[:, bj]
    if pj:
        coef, b0 = fit_logistic(x[:, pj], y, patch_l2)
        derived = (LinearFeature("patch", round(b0, 5), tuple(names[j] for j in pj),
                                 tuple(round(float(c), 6) for c in coef)),)
        xb = np.c_[xb, x[:, pj] @ coef + b0]
        bnames.append("patch")
    m = fit_binned(xb, y, bnames, bins, l2, source)
    return ScoreModel(m.bias, m.features, source, derived)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def fit_calibrated(frames: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, Sequence[LabelledBox]]],
                   names: Sequence[str], min_score: float, min_precision: float = 0.7, seed: int = 0,
                   source: str = "", **kw: float) -> tuple[ScoreModel, dict[str, float]]:
    """Fit on all `frames` (features, labels, centres, boxes), with its bias shifted so that `min_score` is the
    threshold with the best recall at `min_precision` on held-out frames (mean logit over a two-fold split)."""
    fold = np.random.default_rng(seed).random(len(frames)) < 0.5
    logits, recalls = [], []
    for k in (False, True):
        fit = [f for f, g in zip(frames, fold) if g != k]
        model = fit_model(np.vstack([f[0] for f in fit]), np.concatenate([f[1] for f in fit]), names, **kw)
        acc = Accumulator()
        for (x, _, c, boxes), g in zip(frames, fold):
            if g == k:
                sc = model.score({n: x[:, j] for j, n in enumerate(names)}) if x.shape[0] else np.zeros(0)
                acc.add(match_frame(c, sc, boxes), sc)
        at = acc.recall_at_precision(min_precision)
        if at["recall"] <= 0:
            at = acc.best_f1()
        logits.append(_logit(at["threshold"]))
        recalls.append(at["recall"])
    model = fit_model(np.vstack([f[0] for f in frames]), np.concatenate([f[1] for f in frames]), names,
                      source=source, **kw)
    shift = _logit(min_score) - float(np.mean(logits))
    model = ScoreModel(round(model.bias + shift, 5), model.features, source, model.derived)
    return model, {"heldout_recall_at_p": round(float(np.mean(recalls)), 4), "bias_shift": round(shift, 4)}


def main(argv: list[str] | None = None) -> None:
    from vision.hitu_dataset import HitUavDataset, hit_uav_camera, hit_uav_pose

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True)
    ap.add_argument("--annotations", required=True)
    ap.add_argument("--l2", type=float, default=30.0)
    ap.add_argument("--bins", type=int, default=12)
    ap.add_argument("--write", action="store_true", help="replace the bundled model (only ever fit it on train)")
    ap.add_argument("--features", default=",".join(FEATURE_NAMES), help="comma-separated feature names")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    ds = HitUavDataset(args.images, args.annotations)
    camera = hit_uav_camera()
    names = [n for n in args.features.split(",") if n]
    base = ThermalDetector(DetectorParams(min_score=0.0, thumbnails=False, score_lying=False))
    data = []
    for smp in ds:
        img = smp.load_gray()
        signal, mode = base.signal(img, camera)
        c = base.candidates(signal, mode, camera, hit_uav_pose(smp.flight))
        x = np.stack([c.features[n] for n in names], axis=1) if len(c) else np.zeros((0, len(names)))
        data.append((smp.flight.night, (x, label_peaks(c.xs, c.ys, smp.boxes),
                                        np.c_[c.xs, c.ys].astype(float), smp.boxes)))
    print(f"{sum(d[1][0].shape[0] for d in data)} candidates in {len(data)} frames", file=sys.stderr)
    models = {}
    for light in ("any", "day", "night"):
        frames_l = [f for night, f in data if light == "any" or night == (light == "night")]
        models[light], info = fit_calibrated(frames_l, names, DetectorParams().min_score, bins=args.bins,
                                             l2=args.l2, source=f"fitted by vision.tuning on {args.annotations} "
                                             f"({light} light, {len(frames_l)} frames)")
        print(light, len(frames_l), "frames", info, file=sys.stderr)
    if args.write:
        BUNDLED.write_text(json.dumps({k: m.as_dict() for k, m in models.items()}) + "\n")
        print(f"wrote {BUNDLED}")


if __name__ == "__main__":
    main()
