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
    pts = pts.reshape(-1, 2).astype(np.int64)
    xs, ys = pts[:, 0], pts[:, 1]
    key = np.ascontiguousarray(contrast).ravel().take(ys * contrast.shape[1] + xs).astype(np.float32)
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

    def take(self, idx: np.ndarray) -> Profiles:
        """The profiles of a subset of the candidates."""
        return Profiles(self.peak[idx], self.ring[idx], self.extent[idx], self.open_fraction[idx], self.max_radius)

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
    # Candidates sit on whole pixels, so every profile uses the same rounded offsets: one flat index table.
    off_x = np.rint(_DX[:, None] * r[None, :]).astype(np.intp)
    off_y = np.rint(_DY[:, None] * r[None, :]).astype(np.intp)
    flat = (ys * w + xs).astype(np.intp)[:, None, None] + (off_y * w + off_x)[None]
    edge = np.flatnonzero((xs < max_radius) | (xs >= w - max_radius) | (ys < max_radius) | (ys >= h - max_radius))
    if edge.size:  # profiles that would leave the frame stop at its border
        px = np.clip(xs[edge, None, None] + off_x, 0, w - 1)
        py = np.clip(ys[edge, None, None] + off_y, 0, h - 1)
        flat[edge] = py * w + px
    prof = np.ascontiguousarray(signal).ravel().take(flat)  # (N, 16, R), in the signal's dtype
    peak = signal[ys, xs].astype(np.float32)
    idx = np.arange(n)
    r1 = np.clip(np.rint(ring_radius).astype(np.int64), 2, max_radius)
    r2 = np.clip(np.rint(1.5 * ring_radius).astype(np.int64), 2, max_radius)
    ring = np.sort(np.concatenate([prof[idx, :, r1 - 1], prof[idx, :, r2 - 1]], axis=1), axis=1).astype(np.float32)
    base = ring[:, ring.shape[1] // 2]
    half = (peak + base) * 0.5
    if prof.dtype == np.uint8:  # whole grey levels: below half-way is below its ceiling, compared as bytes
        below = prof < np.ceil(half).astype(np.uint8)[:, None, None]
    else:
        below = prof.astype(np.float32) < half[:, None, None]
    first = below.argmax(axis=2)  # the first sample below half, or 0 if none is
    crossed = np.take_along_axis(below, first[:, :, None], axis=2)[:, :, 0]
    extent = np.where(crossed, first + 0.5, float(max_radius)).astype(np.float32)
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
    tree = cKDTree(np.c_[xs, ys].astype(np.float64), balanced_tree=False, compact_nodes=False)  # quicker to build
    pairs = tree.query_pairs(reach, output_type="ndarray")
    if pairs.size == 0:
        return keep
    i, j = pairs[:, 0], pairs[:, 1]  # i < j: i is the stronger peak
    dx = (xs[j] - xs[i]).astype(np.float32)
    dy = (ys[j] - ys[i]).astype(np.float32)
    d = dx * dx * (1.0 / np.square(half_width, dtype=np.float32))[i]
    d += dy * dy * (1.0 / np.square(half_height, dtype=np.float32))[i]
    inside = d < 1.0
    return _greedy_keep(n, i[inside], j[inside])


def _greedy_keep(n: int, i: np.ndarray, j: np.ndarray, max_rounds: int = 32) -> np.ndarray:
    """Which of n peaks the greedy rule keeps, given suppression pairs (i < j: i suppresses j if i is kept).

    In vectorised rounds: a peak is kept once no undecided stronger peak can suppress it, and suppressed as
    soon as a kept one does. The strongest undecided peak always resolves, so each round settles at least
    one; real frames need under 15. After `max_rounds` the rest is settled one peak at a time.
    """
    state = np.zeros(n, dtype=np.int8)  # 1 kept, -1 suppressed, 0 undecided
    for _ in range(max_rounds):
        pending = np.zeros(n, dtype=bool)
        pending[j] = True
        state[(state == 0) & ~pending] = 1
        if i.size == 0:
            return state == 1
        state[j[state[i] == 1]] = -1
        live = (state[i] == 0) & (state[j] == 0)  # after this round's suppressions: settled pairs drop out
        i, j = i[live], j[live]
    order = np.argsort(i, kind="stable")  # a long chain: the plain greedy loop over what is left
    keep = state >= 0
    for a, b in zip(i[order].tolist(), j[order].tolist()):
        if keep[a]:
            keep[b] = False
    return keep


def neighbours_within(xs: np.ndarray, ys: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """How many other candidates lie closer than `reach` (each candidate's own, pixels) to each one.

    Positions are whole pixels, so a squared distance below reach^2 is one below
    its ceiling; querying at half a unit under that makes the k-d tree's
    "within" count exactly the strict one.
    """
    if xs.size == 0:
        return np.zeros(0, dtype=np.intp)
    limit = np.ceil(np.square(reach).astype(np.float64))
    pts = np.c_[xs, ys].astype(np.float64)
    tree = cKDTree(pts, balanced_tree=False, compact_nodes=False)
    return tree.query_ball_point(pts, np.sqrt(np.maximum(limit - 0.5, 0.0)), return_length=True) - 1


def blob_areas(mask: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Area (px) of the hot component under each candidate (0 where the candidate's pixel is not hot).

    Labelled at half resolution (4x fewer pixels): this only has to tell a
    person-sized warm blob from a car-sized one, and saves milliseconds a frame.
    Grana's block-based labelling is among the fastest of OpenCV's on these masks.
    """
    small = np.ascontiguousarray(mask[::2, ::2])
    _, labels = cv2.connectedComponentsWithAlgorithm(small, 8, cv2.CV_32S, cv2.CCL_GRANA)
    sizes = np.bincount(labels.ravel())  # cheaper than OpenCV's statistics, of which only the area is needed
    lab = labels[ys // 2, xs // 2]
    area = sizes[lab].astype(np.float32) * 4.0
    area[lab == 0] = 0.0
    return area
