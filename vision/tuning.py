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
from collections.abc import Callable, Iterable, Sequence

import cv2
import numpy as np

from vision.camera import CameraIntrinsics
from vision.detector import FEATURE_NAMES, DetectorParams, ThermalDetector
from vision.evaluation import Accumulator, LabelledBox, match_frame
from vision.pose import CameraPose
from vision.score_model import BUNDLED, FeatureBins, ScoreModel


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


def main(argv: list[str] | None = None) -> None:
    from vision.hitu_dataset import HitUavDataset, hit_uav_camera, hit_uav_pose

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True)
    ap.add_argument("--annotations", required=True)
    ap.add_argument("--l2", type=float, default=10.0)
    ap.add_argument("--bins", type=int, default=16)
    ap.add_argument("--write", action="store_true", help="replace the bundled model (only ever fit it on train)")
    ap.add_argument("--features", default=",".join(FEATURE_NAMES), help="comma-separated feature names")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    ds = HitUavDataset(args.images, args.annotations)
    camera = hit_uav_camera()
    names = [n for n in args.features.split(",") if n]
    base = ThermalDetector(DetectorParams(min_score=0.0, thumbnails=False))

    def frames() -> Iterable[tuple[np.ndarray, CameraPose, tuple[LabelledBox, ...]]]:
        for s in ds:
            yield s.load_gray(), hit_uav_pose(s.flight), s.boxes

    x, y = collect(frames(), camera, base, names)
    print(f"{x.shape[0]} candidates, {int(y.sum())} on persons", file=sys.stderr)
    model = fit_binned(x, y, names, args.bins, args.l2, source=f"fitted by vision.tuning on {args.annotations}")
    fitted = ThermalDetector(DetectorParams(score_model=model, min_score=0.0, thumbnails=False))
    print("threshold on these frames:", threshold_for(fitted, frames(), camera))
    if args.write:
        BUNDLED.write_text(model.to_json() + "\n")
        print(f"wrote {BUNDLED}")

if __name__ == "__main__":
    main()
