"""Warm-blob measurements: local contrast, adaptive threshold, candidate peaks and their shape.

Pure array functions the detector chains together. They are written for one
core at video rate (640x512 in a few milliseconds): whole-image work is limited
to a handful of OpenCV filters, and everything per candidate is vectorised over
all candidates at once (radial profiles are gathered with one fancy index).

Units: `signal` is grey levels for display frames and degrees C for radiometric
ones; contrasts come out in the same unit and the caller normalises them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

#: Directions of the radial profiles (every 22.5 degrees).
N_DIRECTIONS = 16
_ANGLES = np.arange(N_DIRECTIONS) * (2.0 * np.pi / N_DIRECTIONS)
_DX = np.cos(_ANGLES).astype(np.float32)
_DY = np.sin(_ANGLES).astype(np.float32)


def local_contrast(signal: np.ndarray, window_px: int) -> np.ndarray:
    """White top-hat: how far each pixel rises above the background under a `window_px` square.

    Why a top-hat and not a blurred mean: the morphological opening follows the
    background up to the edge of large warm areas (roads, roofs) without a halo,
    so only warm things smaller than the window stand out.
    """
    k = max(3, int(window_px) | 1)
    return cv2.morphologyEx(signal, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))


def texture_level(signal: np.ndarray, window_px: int = 32) -> np.ndarray:
    """Local mean absolute fine detail (|signal - its 5x5 mean|), in signal units, at full size.

    Computed at quarter resolution and interpolated back: it only has to follow
    how busy a region is (tree canopy, gravel) so the threshold can rise there.
    For Gaussian noise it is about 0.8 sigma. Same dtype as `signal` (uint8 stays
    uint8, which keeps it under a millisecond at 640x512).
    """
    hp = cv2.absdiff(signal, cv2.blur(signal, (5, 5)))
    h, w = signal.shape
    small = cv2.resize(hp, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    k = max(1, window_px // 4) | 1
    small = cv2.blur(small, (k, k))
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def find_peaks(signal: np.ndarray, contrast: np.ndarray, hot: np.ndarray,
               max_peaks: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of local maxima (5x5) of `signal` on `hot` pixels (uint8 mask, 0/255).

    Returns at most `max_peaks`, strongest contrast first.
    """
    dil = cv2.dilate(signal, np.ones((5, 5), np.uint8))
    peaks = cv2.bitwise_and(cv2.compare(signal, dil, cv2.CMP_GE), hot)
    pts = cv2.findNonZero(peaks)
    if pts is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pts = pts.reshape(-1, 2)
    xs = pts[:, 0].astype(np.int64)
    ys = pts[:, 1].astype(np.int64)
    key = contrast[ys, xs].astype(np.float32)
    if ys.size > max_peaks:
        part = np.argpartition(-key, max_peaks - 1)[:max_peaks]
        ys, xs, key = ys[part], xs[part], key[part]
    order = np.argsort(-key, kind="stable")
    return ys[order], xs[order]


@dataclass(frozen=True)
class Profiles:
    """Per-candidate measurements from radial profiles (all arrays of length N unless noted)."""

    peak: np.ndarray
    #: Sorted samples of the ring around each candidate (N, 2 * N_DIRECTIONS).
    ring: np.ndarray
    #: Radius at which the profile first falls below half-way to the ring median (N, N_DIRECTIONS).
    extent: np.ndarray
    #: Fraction of directions that never fell below half within the profile length.
    open_fraction: np.ndarray
    max_radius: int

    def ring_quantile(self, q: float) -> np.ndarray:
        return self.ring[:, int(round(q * (self.ring.shape[1] - 1)))]

    @property
    def diameters(self) -> np.ndarray:
        """Blob diameter along each of the N_DIRECTIONS / 2 axes (N, 8)."""
        half = N_DIRECTIONS // 2
        return self.extent[:, :half] + self.extent[:, half:]


def radial_profiles(signal: np.ndarray, ys: np.ndarray, xs: np.ndarray, ring_radius: np.ndarray,
                    max_radius: int) -> Profiles:
    """Sample the signal outward from each candidate along 16 directions.

    The ring (samples at `ring_radius` and 1.5x it) is the candidate's local
    background; the half-level crossing along each direction is its shape. A warm
    body is brighter than (nearly) all of its ring; a warm edge or strip is not.
    """
    h, w = signal.shape
    n = ys.size
    r = np.arange(1, max_radius + 1, dtype=np.float32)
    px = np.rint(xs[:, None, None] + _DX[None, :, None] * r[None, None, :]).astype(np.int32)
    py = np.rint(ys[:, None, None] + _DY[None, :, None] * r[None, None, :]).astype(np.int32)
    np.clip(px, 0, w - 1, out=px)
    np.clip(py, 0, h - 1, out=py)
    prof = signal[py, px].astype(np.float32)  # (N, 16, R)
    peak = signal[ys, xs].astype(np.float32)
    idx = np.arange(n)
    r1 = np.clip(np.rint(ring_radius).astype(np.int64), 2, max_radius)
    r2 = np.clip(np.rint(1.5 * ring_radius).astype(np.int64), 2, max_radius)
    ring = np.sort(np.concatenate([prof[idx, :, r1 - 1], prof[idx, :, r2 - 1]], axis=1), axis=1)
    base = ring[:, ring.shape[1] // 2]
    below = prof < ((peak + base) * 0.5)[:, None, None]
    crossed = below.any(axis=2)
    extent = np.where(crossed, below.argmax(axis=2) + 0.5, float(max_radius)).astype(np.float32)
    return Profiles(peak, ring, extent, 1.0 - crossed.mean(axis=1), max_radius)


def suppress_duplicates(ys: np.ndarray, xs: np.ndarray, half_width: np.ndarray,
                        half_height: np.ndarray) -> np.ndarray:
    """Greedy non-maximum suppression with a person-sized ellipse; inputs strongest first.

    A person often shows two or three warm peaks (head, torso, legs); they must
    give one detection. Returns a boolean keep mask.
    """
    n = ys.size
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    # Candidate pairs from a k-d tree (no ellipse reaches beyond its largest half-axis), then the exact ellipse
    # test on those pairs only: with a low threshold a frame has hundreds of peaks, and an N x N matrix costs ms.
    reach = float(max(np.max(half_width), np.max(half_height)))
    pairs = cKDTree(np.c_[xs, ys].astype(np.float64)).query_pairs(reach, output_type="ndarray")
    if pairs.size == 0:
        return keep
    i, j = pairs[:, 0], pairs[:, 1]  # i < j: i is the stronger peak
    dx = (xs[j] - xs[i]).astype(np.float32)
    dy = (ys[j] - ys[i]).astype(np.float32)
    d = dx * dx * (1.0 / np.square(half_width, dtype=np.float32))[i]
    d += dy * dy * (1.0 / np.square(half_height, dtype=np.float32))[i]
    inside = d < 1.0
    i, j = i[inside], j[inside]
    if i.size == 0:
        return keep
    order = np.argsort(i, kind="stable")
    i, j = i[order], j[order]
    starts = np.flatnonzero(np.r_[True, i[1:] != i[:-1]])
    ends = np.r_[starts[1:], i.size]
    for a, b in zip(starts.tolist(), ends.tolist()):
        if keep[i[a]]:  # a suppressed peak suppresses nothing
            keep[j[a:b]] = False
    return keep


def blob_areas(mask: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Area (px) and bounding-box size (w, h as an (N, 2) array) of the hot component under each candidate.

    Labelled at half resolution (4x fewer pixels): this only has to tell a
    person-sized warm blob from a car-sized one, and saves milliseconds a frame.
    """
    small = np.ascontiguousarray(mask[::2, ::2])
    _, labels, stats, _ = cv2.connectedComponentsWithStats(small, connectivity=8)
    lab = labels[ys // 2, xs // 2]
    area = stats[lab, cv2.CC_STAT_AREA].astype(np.float32) * 4.0
    size = stats[lab][:, [cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT]].astype(np.float32) * 2.0
    area[lab == 0] = 0.0
    size[lab == 0] = 0.0
    return area, size
