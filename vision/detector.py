"""Thermal hotspot detector: warm, person-sized blobs in a frame, scored, classed and put on the map.

Pipeline (classical, one core, a few milliseconds at 640x512):

1. Signal: display frames (8-bit, after the camera's automatic gain) are used as
   grey levels; radiometric frames (16-bit counts + calibration, or float
   degrees C) become a temperature image, so every contrast is in kelvin.
2. Background and local contrast: a white top-hat whose window is a few person
   lengths at the frame's ground sampling distance.
3. Adaptive threshold: a pixel is hot when its contrast exceeds both a floor
   and a multiple of the local texture (busy canopy raises the bar).
4. Candidates: local maxima of hot pixels; radial profiles give each one its
   ring background and its half-level shape; a person-sized ellipse merges the
   head/torso/legs peaks of one person; hot pixels are labelled into connected
   components (at half resolution) to know how large the warm area around a
   candidate is.
5. Screen: a few small trees on the cheap shape features (contrast, ring
   clutter, size and shape against the expected person, warm-blob area) drop
   three in four candidates by day and nine in ten by night (the clutter)
   before anything costlier is measured.
6. Gates and score: sizes are compared with a person's projection at that row's
   range and depression (a person is ~0.5 x 1.7 m, ~0.5 x 0.3 m seen from
   above); boosted trees score contrast, ring clutter, size, shape and the
   patch around the peak (body, cold shadow by day, context); in radiometric
   mode the peak must be body-warm. Class guess: person-like, vehicle-like or
   other, from the measured size in metres.
7. Georeferencing (when a pose is given): the candidate's pixel to lat/lon
   with an error estimate.

Every threshold is a field of `DetectorParams`. The candidate thresholds
are low on purpose (about 19 in 20 persons give a candidate on HIT-UAV);
the screen and the score do the separating. Both are boosted-tree models
(`vision.tree_model`) fitted on HIT-UAV's train split (`vision.tuning`),
never on val; it acts on normalised, physical features (contrast in units
of a "clear person" contrast, sizes and patches relative to a person's
projection), so it carries over to other cameras within reason, and can be
refitted on other data with `vision.tuning`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Literal

import cv2
import numpy as np

from vision import blobs
from vision.camera import CameraIntrinsics
from vision.georef import FlatGround, GroundModel, pixel_to_ground, row_range
from vision.pose import CameraPose
from vision.radiometry import RadiometricCalibration
from vision.tree_model import LIGHTS, TreeEnsemble, bundled_trees
from vision.thumbnails import crop_thumbnail

ClassGuess = Literal["person", "vehicle", "other"]
FrameMode = Literal["display", "radiometric"]

#: Features measured for every candidate: its peak, the ring and shape from its radial profiles, its warm
#: blob, the frame and the view. They are cheap, and the screen model (`DetectorParams.screen`) uses them to
#: drop most clutter before the patch features are sampled.
SHAPE_NAMES: tuple[str, ...] = (
    "contrast_low", "contrast_mid", "contrast_high", "contrast_top", "contrast_max", "clutter", "tophat", "level",
    "log_length", "log_width", "log_vertical", "log_horizontal", "log_area",
    "log_length_sq", "log_width_sq", "log_vertical_sq", "log_horizontal_sq", "log_area_sq",
    "irregularity", "open", "crowding", "log_scale", "log_blob", "frame_std", "depression_deg", "height_m",
)
#: Features sampled from patches around the peak, for the candidates the screen lets through.
PATCH_NAMES: tuple[str, ...] = (
    tuple(f"pn{i}" for i in range(49)) + tuple(f"pq{i}" for i in range(49)) + ("peak_rise", "context_sd")
    + tuple(f"fz{i}" for i in range(121)) + tuple(f"wz{i}" for i in range(49)) + tuple(f"fq{i}" for i in range(121))
)
#: Columns of `Candidates.features`: every feature once, in the order the bundled trees were fitted on (the
#: order the features were added in, so shape and patch columns interleave).
FEATURE_NAMES: tuple[str, ...] = SHAPE_NAMES[:-2] + PATCH_NAMES[:100] + SHAPE_NAMES[-2:] + PATCH_NAMES[100:]
#: Patch samples: a 7 x 7 grid over +-`DetectorParams.patch_span` expected person sizes around the peak, as
#: pn* (relative to the peak's rise above the patch median) and pq* (in contrast units).
PATCH_SIDE = 7
#: Appearance samples for the tree score: a fine 11 x 11 grid over the same span (fz*: standardised by the wide
#: context; fq*: in contrast units) and a wide 7 x 7 grid over +-`DetectorParams.context_span` person sizes
#: (wz*: standardised), so the trees see the body, its cold shadow by day, and what surrounds it.
FINE_SIDE = 11
WIDE_SIDE = 7


@dataclass(frozen=True)
class DetectorParams:
    """Every threshold of the detector, with its unit and why it has its value."""

    # --- what a person looks like from the air (metres) ---
    #: Shoulder width.
    person_width_m: float = 0.5
    #: Standing height; a lying person is as long.
    person_height_m: float = 1.7
    #: Front-to-back thickness: what is seen of a standing person from straight above.
    person_depth_m: float = 0.3
    #: Blur added to every projected dimension (optics, motion, compression), pixels.
    blur_px: float = 2.0
    #: Also score each candidate as a person lying on the ground (person_height_m x person_width_m seen from
    #: any angle) and keep the better score: a casualty lies, while the training persons mostly stand.
    score_lying: bool = True

    # --- background / local contrast ---
    #: Top-hat window as a multiple of the largest expected person extent in the frame.
    background_scale: float = 2.0
    #: Limits of the top-hat window, pixels (odd); small enough to stay fast, large enough for a lying person.
    background_min_px: int = 9
    background_max_px: int = 61

    # --- adaptive threshold (low on purpose: it only has to let persons through, the trees then separate;
    # on HIT-UAV val these values give 94 % of persons a candidate, 25 and 4 gave 88 %) ---
    #: Contrast floor for a hot pixel, display mode, grey levels (of 255).
    display_min_contrast: float = 10.0
    #: Contrast floor for a hot pixel, radiometric mode, kelvin.
    radiometric_min_contrast_k: float = 1.5
    #: A hot pixel must also exceed this many times the local mean absolute fine detail (busy backgrounds
    #: raise the bar; 2 of these is about 1.5 sigma of noise).
    texture_k: float = 2.0
    #: "Clear person" contrast used to normalise display-mode features, grey levels.
    display_contrast_unit: float = 50.0
    #: The same in radiometric mode, kelvin (a clothed person against night-time grass).
    radiometric_contrast_unit_k: float = 5.0

    # --- candidates ---
    #: Candidates kept per frame (strongest contrast first) after merging; bounds the time per frame (HIT-UAV
    #: frames average about 240 at these thresholds).
    max_candidates: int = 400
    #: Peaks closer than this many expected person half-sizes merge into one detection.
    merge_scale: float = 1.0
    #: Ring radius (local background) beyond the half-length of a person, metres.
    ring_margin_m: float = 0.3

    # --- size gates (relative to the person's projection at the candidate's row) ---
    #: A person-like blob is at most this many expected person lengths long ...
    person_max_length_rel: float = 2.5
    #: ... and at most this many expected widths wide.
    person_max_width_rel: float = 2.5
    #: Warm blobs down to this fraction of the expected person area still count (partial occlusion, cold clothes).
    person_min_area_rel: float = 0.1
    #: A candidate whose profile stays warm in more than this fraction of directions is part of a larger object.
    max_open_fraction: float = 0.25
    #: Warm areas between these sizes (m^2, at the candidate's range) are vehicle-like, and a peak on one is not
    #: person-like (people standing close together merge too, but a missing person is usually alone).
    vehicle_min_area_m2: float = 2.0
    vehicle_max_area_m2: float = 30.0

    # --- radiometric temperature gates ---
    #: Apparent body surface temperature range for a person-like peak, degrees C (clothing to skin,
    #: lowered by pixels that mix body and ground).
    body_min_c: float = 12.0
    body_max_c: float = 40.0

    # --- score ---
    #: Boosted trees over `FEATURE_NAMES`; None = the bundled ones fitted on HIT-UAV train.
    score_model: TreeEnsemble | None = field(default=None, compare=False, repr=False)
    #: Screen the candidates before scoring: a small tree model on the cheap `SHAPE_NAMES` features drops
    #: those that cannot be persons before their 391 patch features are sampled and the full score runs.
    #: `vision.tuning` sets it to lose about 1 in 500 of the persons the full score keeps; held out on train it
    #: then drops 76 % of candidates by day and 90 % by night. Off to see every candidate (tuning does).
    screen: bool = True
    #: Screen trees over `SHAPE_NAMES` (a candidate passes when their decision is >= 0); None = the bundled
    #: screen for `light`, unless `score_model` is set (then nothing is screened: that floor fits the bundled
    #: score only).
    screen_model: TreeEnsemble | None = field(default=None, compare=False, repr=False)
    #: Detections scoring below this are dropped (0..1). `vision.tuning` shifts each bundled model's bias so
    #: that this score is the threshold giving the best recall at precision >= 0.7 on held-out HIT-UAV train
    #: frames (two-fold, train only; one threshold for the day and night models together).
    min_score: float = 0.5
    #: Light conditions of the frames: "any" (unknown), "day" or "night" (from the clock in a deployment; from
    #: the file name for HIT-UAV). Selects the bundled score model fitted on that light (ignored if `score_model`).
    light: Literal["any", "day", "night"] = "any"
    #: Half-side of the patch sampled around each candidate, in expected person sizes (width across, height down).
    patch_span: float = 1.5
    #: Half-side of the wide context grid, in expected person sizes.
    context_span: float = 4.0

    # --- output ---
    #: Attach a small uint8 crop to each detection (for the tracker's best thumbnail).
    thumbnails: bool = True
    #: Thumbnail side, pixels (square, uint8).
    thumbnail_px: int = 64
    #: The crop around a detection covers this many times its box (at least `thumbnail_px` / 2 pixels).
    thumbnail_context: float = 2.5
    #: Height above ground assumed for size gates when no pose is given (nadir view), metres.
    assumed_height_m: float = 100.0

    def __post_init__(self) -> None:
        positive = ("person_width_m", "person_height_m", "person_depth_m", "background_scale",
                    "display_contrast_unit", "radiometric_contrast_unit_k", "merge_scale", "person_max_length_rel",
                    "person_max_width_rel", "assumed_height_m")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"DetectorParams.{name} must be > 0, got {getattr(self, name)}")
        if not 3 <= self.background_min_px <= self.background_max_px:
            raise ValueError("DetectorParams.background_min_px must be >= 3 and <= background_max_px")
        if self.max_candidates < 1:
            raise ValueError("DetectorParams.max_candidates must be >= 1")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"DetectorParams.min_score must be in [0, 1], got {self.min_score}")
        if self.light not in LIGHTS:
            raise ValueError(f"DetectorParams.light must be one of {LIGHTS}, got {self.light!r}")
        if not (self.patch_span > 0 and self.context_span > 0):
            raise ValueError("DetectorParams.patch_span and context_span must be > 0")
        if self.body_min_c >= self.body_max_c:
            raise ValueError("DetectorParams.body_min_c must be below body_max_c")
        if self.score_model is not None:
            unknown = set(self.score_model.names) - set(FEATURE_NAMES)
            if unknown:
                raise ValueError(f"DetectorParams.score_model uses unknown features {sorted(unknown)}")
        if self.screen_model is not None:
            unknown = set(self.screen_model.names) - set(SHAPE_NAMES)
            if unknown:
                raise ValueError(f"DetectorParams.screen_model must use SHAPE_NAMES features only, not "
                                 f"{sorted(unknown)}")


@dataclass(frozen=True)
class Detection:
    """One hotspot in one frame."""

    #: Pixel box (x, y, w, h) of the warm blob at half its contrast.
    bbox: tuple[int, int, int, int]
    #: Pixel position (column, row) of the warm peak: the point that is georeferenced and matched.
    centre: tuple[float, float]
    #: Person-likeness, 0..1.
    score: float
    kind: ClassGuess
    #: Peak above the local background: grey levels (display) or kelvin (radiometric).
    contrast: float
    #: Estimated size (length, width) in metres at the candidate's range.
    size_m: tuple[float, float]
    #: Peak apparent temperature, degrees C (radiometric mode only).
    peak_c: float | None = None
    lat: float | None = None
    lon: float | None = None
    #: Horizontal 1-sigma (DRMS) error of lat/lon, metres.
    error_m: float | None = None
    #: Square uint8 crop around the detection (see `vision.thumbnails.encode_thumbnail`).
    thumbnail: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def has_position(self) -> bool:
        return self.lat is not None and self.lon is not None


@dataclass(frozen=True)
class Candidates:
    """Everything measured about a frame's candidates before scoring (for the detector and for tuning)."""

    xs: np.ndarray
    ys: np.ndarray
    #: One row per candidate, one column per `FEATURE_NAMES` entry.
    features: np.ndarray
    contrast: np.ndarray
    peak: np.ndarray
    length_px: np.ndarray
    width_px: np.ndarray
    bbox: np.ndarray  # (N, 4) x, y, w, h
    px_per_m: np.ndarray
    expected_w: np.ndarray
    expected_h: np.ndarray
    open_fraction: np.ndarray
    blob_area_px: np.ndarray
    #: The same features measured against a lying person's size (when `DetectorParams.score_lying`).
    lying_features: np.ndarray | None = None
    #: A lying person's expected length, pixels.
    expected_lying: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.xs.size)


class ThermalDetector:
    """Finds warm, person-sized hotspots in thermal frames.

    Stateless apart from its parameters and calibration, so one instance can
    serve many drones from many threads.
    """

    def __init__(self, params: DetectorParams | None = None,
                 calibration: RadiometricCalibration | None = None) -> None:
        self.params = params or DetectorParams()
        self.calibration = calibration

    @cached_property
    def score_model(self) -> TreeEnsemble:
        """The trees in use (read on first use, so `vision.tuning` can collect features before any exist)."""
        return self.params.score_model or bundled_trees(self.params.light)

    @cached_property
    def screen_model(self) -> TreeEnsemble | None:
        """The screen in use: candidates whose decision on `SHAPE_NAMES` is below 0 get no patch features.

        None (no screening) when `params.screen` is off, or when a score model of one's own comes without a
        screen: the bundled screen's floor was set for the bundled score and could drop what another keeps."""
        p = self.params
        if not p.screen:
            return None
        if p.screen_model is not None:
            return p.screen_model
        return None if p.score_model is not None else bundled_trees(p.light, screen=True)

    @cached_property
    def _screen_columns(self) -> np.ndarray:
        return feature_columns(self.screen_model.names if self.screen_model is not None else (), SHAPE_NAMES)

    # ------------------------------------------------------------------ public

    def detect(self, frame: np.ndarray, camera: CameraIntrinsics, pose: CameraPose | None = None,
               calibration: RadiometricCalibration | None = None,
               ground: GroundModel | None = None) -> list[Detection]:
        """Hotspots in one frame, best score first; with lat/lon and error_m when `pose` is given.

        `frame`: uint8 display frame (H, W) or (H, W, 3); uint16 radiometric counts
        (needs a `calibration`, here or the detector's); or float32/float64 degrees C.
        Without a pose, size gates assume a nadir view from `params.assumed_height_m`.
        """
        signal, mode = self.signal(frame, camera, calibration)
        cands = self.candidates(signal, mode, camera, pose, ground)
        if not len(cands):
            return []
        scores = self.score(cands.features)
        if cands.lying_features is not None:
            scores = np.maximum(scores, self.score(cands.lying_features))
        keep = scores >= self.params.min_score
        order = np.flatnonzero(keep)[np.argsort(-scores[keep], kind="stable")]
        if order.size == 0:
            return []
        classes = self.classify(cands, mode)
        lat = lon = err = None
        if pose is not None:
            fix = pixel_to_ground(camera, pose, cands.xs[order].astype(float), cands.ys[order].astype(float), ground)
            lat, lon, err = fix.lat_deg, fix.lon_deg, fix.error_m
        p = self.params
        out = []
        for k, i in enumerate(order):
            x, y, w, h = (int(t) for t in cands.bbox[i])
            valid_fix = lat is not None and bool(np.isfinite(lat[k]))
            thumb = None
            if p.thumbnails:
                thumb = crop_thumbnail(signal, (x, y, w, h), p.thumbnail_px, p.thumbnail_context)
            out.append(Detection(
                bbox=(x, y, w, h), centre=(float(cands.xs[i]), float(cands.ys[i])), score=float(scores[i]),
                kind=classes[i], contrast=float(cands.contrast[i]),
                size_m=(float(cands.length_px[i] / cands.px_per_m[i]), float(cands.width_px[i] / cands.px_per_m[i])),
                peak_c=float(cands.peak[i]) if mode == "radiometric" else None,
                lat=float(lat[k]) if valid_fix else None, lon=float(lon[k]) if valid_fix else None,  # type: ignore[index]
                error_m=float(err[k]) if valid_fix else None,  # type: ignore[index]
                thumbnail=thumb,
            ))
        return out

    def signal(self, frame: np.ndarray, camera: CameraIntrinsics,
               calibration: RadiometricCalibration | None = None) -> tuple[np.ndarray, FrameMode]:
        """The frame as the detector's working signal (lightly denoised) and its mode."""
        if not isinstance(frame, np.ndarray):
            raise TypeError(f"frame must be a numpy array, got {type(frame).__name__}")
        if frame.ndim == 3 and frame.shape[2] in (3, 4) and frame.dtype == np.uint8:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
        if frame.ndim != 2:
            raise ValueError(f"frame must be (H, W) or (H, W, 3) uint8, got shape {frame.shape}")
        if frame.shape != (camera.height, camera.width):
            raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]} but the camera is "
                             f"{camera.width}x{camera.height}; use CameraIntrinsics.scaled()")
        if frame.dtype == np.uint8:
            return cv2.GaussianBlur(frame, (3, 3), 0), "display"
        if frame.dtype == np.uint16:
            calibration = calibration or self.calibration
            if calibration is None:
                raise ValueError("a 16-bit radiometric frame needs a RadiometricCalibration")
            celsius = calibration.to_celsius(frame)
        elif frame.dtype in (np.float32, np.float64):
            celsius = frame.astype(np.float32, copy=False)
        else:
            raise ValueError(f"unsupported frame dtype {frame.dtype}: use uint8 (display), uint16 (radiometric "
                             "counts) or float (degrees C)")
        if not np.isfinite(celsius).all():
            raise ValueError("radiometric frame contains NaN or infinite values")
        return cv2.GaussianBlur(celsius, (3, 3), 0), "radiometric"

    def candidates(self, signal: np.ndarray, mode: FrameMode, camera: CameraIntrinsics, pose: CameraPose | None,
                   ground: GroundModel | None = None) -> Candidates:
        """Candidate peaks with their features (before scoring)."""
        p = self.params
        elev = None if pose is None else _elevation_below(pose, ground)  # a terrain lookup: once a frame
        s_row, dep_row = self._row_scale(camera, pose, elev)
        valid_rows = s_row > 0
        if not valid_rows.any():
            return _empty_candidates()
        ew_row = p.person_width_m * s_row + p.blur_px
        eh_row = (p.person_height_m * np.cos(dep_row) + p.person_depth_m * np.sin(dep_row)) * s_row + p.blur_px
        biggest = float(np.max(np.maximum(ew_row, eh_row)[valid_rows]))
        window = int(np.clip(round(p.background_scale * biggest + 4), p.background_min_px, p.background_max_px))
        contrast = blobs.local_contrast(signal, window)
        if mode == "display":
            floor, unit = p.display_min_contrast, p.display_contrast_unit
        else:
            floor, unit = p.radiometric_min_contrast_k, p.radiometric_contrast_unit_k
        if p.texture_k > 0:
            tex = blobs.texture_level(signal)
            if mode == "display":  # stays uint8: saturating scale, then the floor
                threshold = cv2.max(cv2.convertScaleAbs(tex, alpha=p.texture_k), np.full_like(tex, math.ceil(floor)))
            else:
                threshold = np.maximum(np.float32(floor), np.float32(p.texture_k) * tex)
        else:
            threshold = np.full_like(contrast, math.ceil(floor) if mode == "display" else floor)
        hot = cv2.compare(contrast, threshold, cv2.CMP_GE)
        ys, xs = blobs.find_peaks(signal, contrast, hot, 2 * p.max_candidates)
        rows_ok = valid_rows[ys]
        ys, xs = ys[rows_ok], xs[rows_ok]
        if ys.size == 0:
            return _empty_candidates()
        s = s_row[ys]
        ew, eh = ew_row[ys], eh_row[ys]
        lying = p.person_height_m * s + p.blur_px  # a lying person's length, in any direction on the ground
        reach = 0.6 * lying if p.score_lying else 0.0
        keep = blobs.suppress_duplicates(ys, xs, np.maximum(p.merge_scale * np.maximum(ew, reach), 3.0),
                                         np.maximum(p.merge_scale * np.maximum(eh, reach), 3.0))
        keep &= np.cumsum(keep) <= p.max_candidates
        ys, xs, s, ew, eh, lying = ys[keep], xs[keep], s[keep], ew[keep], eh[keep], lying[keep]
        ring_r = 0.5 * np.maximum(ew, eh) + p.ring_margin_m * s + 2.0
        max_r = int(np.clip(math.ceil(float(np.max(1.5 * ring_r))) + 1, 8, 48))
        prof = blobs.radial_profiles(signal, ys, xs, ring_r, max_r)
        blob_area = blobs.blob_areas(hot, ys, xs)
        sub = signal[::4, ::4]
        frame_median = _median(sub)
        frame_std = float(sub.std()) / unit
        height = p.assumed_height_m if pose is None or elev is None else float(pose.alt_amsl - elev)
        view = _View(signal, ys, xs, np.degrees(dep_row[ys]), height, unit, frame_median,
                     frame_std, p.patch_span, p.context_span)
        tophat = contrast[ys, xs]
        shape, length, width = _shape_features(prof, tophat, s, ew, eh, blob_area, view)
        lying_shape = None
        if p.score_lying:
            ring_l = 0.5 * lying + p.ring_margin_m * s + 2.0
            max_l = int(np.clip(math.ceil(float(np.max(1.5 * ring_l))) + 1, 8, 48))
            prof_l = blobs.radial_profiles(signal, ys, xs, ring_l, max_l)
            lying_shape, _, _ = _shape_features(prof_l, tophat, s, lying, ew, blob_area, view)
        screen = self.screen_model
        if screen is not None:
            # Calibrated on standing persons (HIT-UAV), and applied to the lying measurement as the score is:
            # a candidate goes on when either reading passes.
            passed = screen.decision(shape[:, self._screen_columns]) >= 0.0
            if lying_shape is not None:
                passed |= screen.decision(lying_shape[:, self._screen_columns]) >= 0.0
            idx = np.flatnonzero(passed)
            if idx.size == 0:
                return _empty_candidates()
            ys, xs, s, ew, eh, lying = ys[idx], xs[idx], s[idx], ew[idx], eh[idx], lying[idx]
            blob_area, length, width, shape = blob_area[idx], length[idx], width[idx], shape[idx]
            lying_shape = None if lying_shape is None else lying_shape[idx]
            prof, view = prof.take(idx), view.take(idx)
        feats = _assemble(shape, _patch_features(prof.peak, ew, eh, view))
        lying_feats = None
        if lying_shape is not None:
            lying_feats = _assemble(lying_shape, _patch_features(prof.peak, lying, ew, view))
        ext = prof.extent
        half = blobs.N_DIRECTIONS // 2
        quarter = blobs.N_DIRECTIONS // 4
        left, right = ext[:, half], ext[:, 0]
        up, down = ext[:, half + quarter], ext[:, quarter]
        bbox = np.stack([xs - left, ys - up, left + right, up + down], axis=1)
        bbox = np.rint(bbox).astype(np.int64)
        return Candidates(xs, ys, feats, prof.peak - prof.ring_quantile(0.5), prof.peak, length, width, bbox, s,
                          ew, eh, prof.open_fraction, blob_area, lying_feats, lying)

    def score(self, features: np.ndarray) -> np.ndarray:
        """Person-likeness in [0, 1] for each candidate (rows of a `Candidates.features` matrix)."""
        model = self.score_model
        if features.shape[0] == 0:
            return np.zeros(0)
        return model.score(features if model.names == FEATURE_NAMES else features[:, feature_columns(model.names)])

    def classify(self, c: Candidates, mode: FrameMode) -> list[ClassGuess]:
        """Person-like, vehicle-like or other, from size in metres (and body temperature when radiometric)."""
        p = self.params
        eL = np.maximum(c.expected_w, c.expected_h)
        eW = np.minimum(c.expected_w, c.expected_h)
        if c.expected_lying is not None:
            eL = np.maximum(eL, c.expected_lying)
        person = ((c.length_px <= p.person_max_length_rel * eL) & (c.width_px <= p.person_max_width_rel * eW)
                  & (c.length_px * c.width_px >= p.person_min_area_rel * eL * eW)
                  & (c.open_fraction <= p.max_open_fraction))
        if mode == "radiometric":
            person &= (c.peak >= p.body_min_c) & (c.peak <= p.body_max_c)
        # A peak on a vehicle-sized warm area (a car's roof or bonnet) is vehicle-like whatever its own profile.
        blob_m2 = c.blob_area_px / np.maximum(c.px_per_m, 1e-6) ** 2
        vehicle = (blob_m2 >= p.vehicle_min_area_m2) & (blob_m2 <= p.vehicle_max_area_m2)
        person &= ~vehicle
        return ["person" if a else "vehicle" if b else "other" for a, b in zip(person, vehicle)]

    # ------------------------------------------------------------------ helpers

    def _row_scale(self, camera: CameraIntrinsics, pose: CameraPose | None,
                   elev: float | None) -> tuple[np.ndarray, np.ndarray]:
        """Pixels per metre (perpendicular to the ray) and depression angle (rad) for every row.

        `elev`: the ground elevation under the drone (`_elevation_below`); None without a pose."""
        if pose is None or elev is None:
            s = np.full(camera.height, camera.focal_px / self.params.assumed_height_m,
                        dtype=np.float32)
            return s, np.full(camera.height, math.pi / 2, dtype=np.float32)
        # Every 16th row and interpolate: range and depression vary smoothly down the frame.
        rows = np.unique(np.r_[np.arange(0, camera.height, 16), camera.height - 1])
        # A row counts when its upper edge sees ground too (no candidates within half a pixel of the horizon).
        range_m, depression_deg = row_range(camera, pose, elev, np.r_[rows, rows - 0.5])
        valid = np.isfinite(range_m[:rows.size]) & np.isfinite(range_m[rows.size:])
        range_m, depression_deg = range_m[:rows.size], depression_deg[:rows.size]
        s_sparse = np.where(valid, camera.focal_px / np.where(valid, range_m, 1.0), 0.0)
        dep_sparse = np.radians(np.clip(depression_deg, 1.0, 90.0))
        all_rows = np.arange(camera.height)
        s = np.interp(all_rows, rows, s_sparse)
        s[np.interp(all_rows, rows, valid.astype(float)) < 1.0] = 0.0  # no ground seen: no candidates
        dep = np.interp(all_rows, rows, dep_sparse)
        return s.astype(np.float32), dep.astype(np.float32)


def _elevation_below(pose: CameraPose, ground: GroundModel | None) -> float:
    """Ground elevation under the drone (size gates only need that, not the terrain across the frame)."""
    if ground is None:
        return pose.ground_elevation
    if isinstance(ground, FlatGround):
        return ground.elevation
    return float(np.asarray(ground.elevation_m(np.array([pose.lat]), np.array([pose.lon])))[0])


def _median(a: np.ndarray) -> float:
    """np.median, from a histogram when the values are bytes (five times quicker on a frame's samples)."""
    if a.dtype != np.uint8:
        return float(np.median(a))
    below = np.cumsum(np.bincount(a.ravel(), minlength=256))
    n = a.size
    return (float(np.searchsorted(below, (n - 1) // 2, side="right"))
            + float(np.searchsorted(below, n // 2, side="right"))) / 2.0


@lru_cache(maxsize=16)
def feature_columns(names: tuple[str, ...], among: tuple[str, ...] = FEATURE_NAMES) -> np.ndarray:
    """Where each of `names` is among the columns `among` (`FEATURE_NAMES` by default; `SHAPE_NAMES` too)."""
    return np.array([among.index(n) for n in names], dtype=np.intp)


def _assemble(shape: np.ndarray, patch: np.ndarray) -> np.ndarray:
    """The (N, len(FEATURE_NAMES)) feature matrix from its shape and patch columns."""
    x = np.empty((shape.shape[0], len(FEATURE_NAMES)))
    x[:, _SHAPE_COLUMNS] = shape
    x[:, _PATCH_COLUMNS] = patch
    return x


@dataclass(frozen=True)
class _View:
    """What the feature computation needs about the frame and where its candidates are."""

    signal: np.ndarray
    ys: np.ndarray
    xs: np.ndarray
    depression_deg: np.ndarray
    height_m: float
    unit: float
    frame_median: float
    frame_std: float
    patch_span: float
    context_span: float

    def take(self, idx: np.ndarray) -> _View:
        """The same view for a subset of the candidates."""
        return replace(self, ys=self.ys[idx], xs=self.xs[idx], depression_deg=self.depression_deg[idx])


def _grid(signal: np.ndarray, ys: np.ndarray, xs: np.ndarray, ew: np.ndarray, eh: np.ndarray, gx: np.ndarray,
          gy: np.ndarray, span: float) -> np.ndarray:
    """Signal samples on a grid scaled to each candidate's expected person size (N, grid points)."""
    h, w = signal.shape
    px = np.rint(xs[:, None] + gx[None, :] * (span * ew)[:, None]).astype(np.intp)
    py = np.rint(ys[:, None] + gy[None, :] * (span * eh)[:, None]).astype(np.intp)
    np.clip(px, 0, w - 1, out=px)
    np.clip(py, 0, h - 1, out=py)
    return signal[py, px].astype(np.float64)


def _shape_features(prof: blobs.Profiles, tophat: np.ndarray, s: np.ndarray, ew: np.ndarray, eh: np.ndarray,
                    blob_area: np.ndarray, view: _View) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`SHAPE_NAMES` columns (N, 26) for a person of expected size ew x eh, and the blob's length and width (px)."""
    ys, xs, unit = view.ys, view.xs, view.unit
    peak = prof.peak  # float32, like the ring: the contrasts are computed in float32, as the trees were fitted on
    q = prof.ring_quantile
    diam = prof.diameters
    length, width = diam.max(axis=1), diam.min(axis=1)
    quarter = blobs.N_DIRECTIONS // 4
    vertical, horizontal = diam[:, quarter], diam[:, 0]
    ext = prof.extent
    area = 0.5 * (ext.astype(np.float64) ** 2).sum(axis=1) * (2 * np.pi / blobs.N_DIRECTIONS)
    eL, eW = np.maximum(ew, eh), np.minimum(ew, eh)
    out = np.empty((xs.size, len(SHAPE_NAMES)))
    out[:, 0] = (peak - q(0.25)) / unit
    out[:, 1] = (peak - q(0.5)) / unit
    out[:, 2] = (peak - q(0.75)) / unit
    out[:, 3] = (peak - q(0.9)) / unit
    out[:, 4] = (peak - prof.ring[:, -1]) / unit
    out[:, 5] = (q(0.9) - q(0.1)) / unit
    out[:, 6] = tophat.astype(np.float64) / unit
    out[:, 7] = (peak - view.frame_median) / unit
    for j, (size, expected) in enumerate(((length, eL), (width, eW), (vertical, eh), (horizontal, ew),
                                          (area, ew * eh))):
        log_rel = np.log(np.maximum(size / expected, 1e-2))
        out[:, 8 + j] = log_rel
        out[:, 13 + j] = log_rel ** 2
    out[:, 18] = ext.std(axis=1) / np.maximum(ext.mean(axis=1), 1e-3)
    out[:, 19] = prof.open_fraction
    out[:, 20] = np.log1p(blobs.neighbours_within(xs, ys, 3.0 * eL))
    out[:, 21] = np.log(np.maximum(s, 1e-3) / 15.0)
    out[:, 22] = np.log((blob_area + 1.0) / (ew * eh))
    out[:, 23] = view.frame_std
    out[:, 24] = view.depression_deg
    out[:, 25] = view.height_m
    return out, length, width


def _patch_features(peak: np.ndarray, ew: np.ndarray, eh: np.ndarray, view: _View) -> np.ndarray:
    """`PATCH_NAMES` columns (N, 391): the signal around each peak on grids scaled to the expected person."""
    ys, xs, signal, unit = view.ys, view.xs, view.signal, view.unit
    peak = peak.astype(np.float64)
    out = np.empty((xs.size, len(PATCH_NAMES)))
    n = PATCH_SIDE * PATCH_SIDE
    v = _grid(signal, ys, xs, ew, eh, _GRID_X, _GRID_Y, view.patch_span)
    med = np.median(v, axis=1)
    rise = v - med[:, None]
    np.divide(rise, np.maximum(peak - med, 0.08 * unit)[:, None], out=out[:, :n])
    np.divide(rise, unit, out=out[:, n:2 * n])
    fine = _grid(signal, ys, xs, ew, eh, _FINE_X, _FINE_Y, view.patch_span)
    wide = _grid(signal, ys, xs, ew, eh, _WIDE_X, _WIDE_Y, view.context_span)
    wmed = np.median(wide, axis=1)[:, None]
    wsd = np.maximum(wide.std(axis=1), 0.04 * unit)[:, None]
    out[:, 2 * n] = (peak - wmed[:, 0]) / unit
    out[:, 2 * n + 1] = wsd[:, 0] / unit
    nf, nw = FINE_SIDE * FINE_SIDE, WIDE_SIDE * WIDE_SIDE
    k = 2 * n + 2
    np.divide(fine - wmed, wsd, out=out[:, k:k + nf])
    np.divide(wide - wmed, wsd, out=out[:, k + nf:k + nf + nw])
    np.divide(fine - wmed, unit, out=out[:, k + nf + nw:])
    return out


def _offsets(side: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of a side x side grid over [-1, 1]^2, row by row."""
    g = np.linspace(-1.0, 1.0, side)
    return np.tile(g, side), np.repeat(g, side)


_GRID_X, _GRID_Y = _offsets(PATCH_SIDE)
_SHAPE_COLUMNS = feature_columns(SHAPE_NAMES)
_PATCH_COLUMNS = feature_columns(PATCH_NAMES)
_FINE_X, _FINE_Y = _offsets(FINE_SIDE)
_WIDE_X, _WIDE_Y = _offsets(WIDE_SIDE)


def _empty_candidates() -> Candidates:
    z = np.zeros(0)
    zi = np.zeros(0, dtype=np.int64)
    return Candidates(zi, zi, np.zeros((0, len(FEATURE_NAMES))), z, z, z, z, np.zeros((0, 4), dtype=np.int64), z, z, z,
                      z, z)
