"""Simulated drone cameras: visible and thermal frames rendered from the drone's live pose.

The camera looks straight down (nadir). A procedural ground texture (fields,
roads, roofs, trees) is generated once per process and sampled with one affine
warp per frame, so the picture moves with the drone's position and turns with
its heading, at any altitude. The thermal camera renders a cool background and
warm sources (people, cars, animals, rocks, roofs) at their ground positions,
blurred by the optics, with sensor noise and the camera's automatic gain.

Every visible frame carries its capture time twice: as on-screen text, and as
a barcode in the top rows that a receiver can read back exactly
(`read_capture_time`), which is how the video benchmark measures latency end
to end. Thermal frames carry no marks (a detector would see them); their
capture time comes from the RTCP sender reports, as with a real drone.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

TEXTURE_PX = 2048
TEXTURE_M_PER_PX = 0.5
BARCODE_BITS = 40  # 40 cells of 16 px span a 640-pixel-wide frame
BARCODE_CELL = (16, 12)  # width, height in pixels
METRES_PER_DEG_LAT = 110_574.0


@dataclass(frozen=True, slots=True)
class Intrinsics:
    width: int
    height: int
    hfov_deg: float

    @property
    def focal_px(self) -> float:
        return (self.width / 2) / math.tan(math.radians(self.hfov_deg) / 2)


@dataclass(frozen=True, slots=True)
class CameraPose:
    """Where the camera is: position, height above ground, heading (0 = north, clockwise)."""

    lat: float
    lon: float
    agl_m: float
    heading_deg: float


@dataclass(frozen=True, slots=True)
class ThermalSource:
    """Something warm on the ground: an ellipse `length_m` x `width_m` oriented along `heading_deg`."""

    lat: float
    lon: float
    length_m: float
    width_m: float
    heading_deg: float
    temp_c: float
    kind: str = "person"


def local_xy(lat: float, lon: float, origin: tuple[float, float]) -> tuple[float, float]:
    """East/north metres from `origin` (equirectangular: fine over a city for rendering)."""
    lat0, lon0 = origin
    return (
        (lon - lon0) * METRES_PER_DEG_LAT * 1.00336 * math.cos(math.radians(lat0)),
        (lat - lat0) * METRES_PER_DEG_LAT,
    )


@lru_cache(maxsize=2)
def ground_texture(seed: int = 7) -> np.ndarray:
    """A 1 km square of plausible peri-urban ground at 0.5 m/px (wraps seamlessly at the edges)."""
    rng = np.random.default_rng(seed)
    n = TEXTURE_PX
    # Fields: coarse noise blown up, wrapped so the tile repeats without seams.
    coarse = rng.random((16, 16, 3)).astype(np.float32)
    base = cv2.resize(np.tile(coarse, (3, 3, 1)), (3 * n, 3 * n), interpolation=cv2.INTER_CUBIC)[n : 2 * n, n : 2 * n]
    palette = np.array([[70, 110, 60], [120, 140, 70], [150, 130, 90]], np.float32)
    img = (base[..., :1] * palette[0] + base[..., 1:2] * palette[1] + base[..., 2:] * palette[2]) / 1.5
    img += rng.normal(0, 6, (n, n, 1)).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    # Roads every 200 m, roofs and tree clumps at random.
    for k in range(0, n, 400):
        cv2.line(img, (k, 0), (k, n), (90, 90, 90), 16)
        cv2.line(img, (0, k), (n, k), (90, 90, 90), 16)
    for _ in range(220):
        x, y = (int(v) for v in rng.integers(0, n, 2))
        w, h = (int(v) for v in rng.integers(20, 70, 2))
        cv2.rectangle(img, (x, y), (x + w, y + h), tuple(int(c) for c in rng.integers(100, 200, 3)), -1)
    for _ in range(400):
        x, y = (int(v) for v in rng.integers(0, n, 2))
        cv2.circle(img, (x, y), int(rng.integers(6, 18)), (40, 80, 35), -1)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _ground_affine(pose: CameraPose, cam: Intrinsics, origin: tuple[float, float]) -> np.ndarray:
    """Matrix taking output pixels (u, v) to texture pixels, for cv2.warpAffine(..., WARP_INVERSE_MAP)."""
    gsd = pose.agl_m / cam.focal_px  # metres per pixel at nadir
    x, y = local_xy(pose.lat, pose.lon, origin)
    span = TEXTURE_PX * TEXTURE_M_PER_PX
    x, y = x % span, y % span
    psi = math.radians(pose.heading_deg)
    c, s = math.cos(psi), math.sin(psi)
    cx, cy = cam.width / 2, cam.height / 2
    k = gsd / TEXTURE_M_PER_PX
    # east = x + (u-cx)*gsd*c + (cy-v)*gsd*s ; north = y - (u-cx)*gsd*s + (cy-v)*gsd*c ; tx = east/res, ty = -north/res
    return np.array(
        [
            [k * c, -k * s, x / TEXTURE_M_PER_PX - k * (c * cx - s * cy)],
            [k * s, k * c, -y / TEXTURE_M_PER_PX - k * (s * cx + c * cy)],
        ],
        dtype=np.float64,
    )


def pixel_of(lat: float, lon: float, pose: CameraPose, cam: Intrinsics, origin: tuple[float, float]) -> tuple[float, float]:
    """Where a ground point appears in the image (may be outside it)."""
    gsd = pose.agl_m / cam.focal_px
    dx, dy = np.subtract(local_xy(lat, lon, origin), local_xy(pose.lat, pose.lon, origin))
    psi = math.radians(pose.heading_deg)
    right = dx * math.cos(psi) - dy * math.sin(psi)
    forward = dx * math.sin(psi) + dy * math.cos(psi)
    return cam.width / 2 + right / gsd, cam.height / 2 - forward / gsd


def draw_capture_time(img: np.ndarray, capture_time: float) -> None:
    """Write the capture time (ms since the epoch) as black/white cells along the top edge."""
    value = int(capture_time * 1000) & ((1 << BARCODE_BITS) - 1)
    w, h = BARCODE_CELL
    for i in range(BARCODE_BITS):
        bit = (value >> (BARCODE_BITS - 1 - i)) & 1
        img[0:h, i * w : (i + 1) * w] = 255 if bit else 0


def read_capture_time(img: np.ndarray, now: float | None = None) -> float | None:
    """Read back the barcode written by `draw_capture_time` (any colour image or gray); None if absent."""
    w, h = BARCODE_CELL
    if img.shape[1] < BARCODE_BITS * w or img.shape[0] < h:
        return None
    band = img[2 : h - 2]
    gray = band.mean(axis=2) if band.ndim == 3 else band
    value = 0
    for i in range(BARCODE_BITS):
        cell = gray[:, i * w + 4 : (i + 1) * w - 4]
        level = float(cell.mean())
        if 60 < level < 195:
            return None  # not a clean barcode
        value = (value << 1) | int(level >= 128)
    now = time.time() if now is None else now
    full = (int(now * 1000) & ~((1 << BARCODE_BITS) - 1)) | value
    if full > now * 1000 + 60_000:  # the counter wrapped since capture
        full -= 1 << BARCODE_BITS
    return full / 1000.0


def _osd(img: np.ndarray, lines: list[str]) -> None:
    y = 40
    for text in lines:
        cv2.putText(img, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        y += 24


def render_visible(
    pose: CameraPose, cam: Intrinsics, origin: tuple[float, float], drone_id: str, capture_time: float
) -> np.ndarray:
    """An RGB frame of the ground under the drone, with OSD and the capture-time barcode."""
    texture = ground_texture()
    img = cv2.warpAffine(
        texture, _ground_affine(pose, cam, origin), (cam.width, cam.height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_WRAP,
    )
    stamp = time.strftime("%H:%M:%S", time.gmtime(capture_time)) + f".{int(capture_time * 1000) % 1000:03d}Z"
    _osd(img, [f"{drone_id}  {stamp}", f"ALT {pose.agl_m:.0f} m  HDG {pose.heading_deg:03.0f}"])
    draw_capture_time(img, capture_time)
    return img


#: Fixed-span display range (°C) of the search drones' thermal cameras: 0..255 grey maps linearly onto it
#: (the "temperature range"/fixed-gain mode of radiometric drone cameras), so the ground can read temperatures.
SEARCH_SPAN_C = (-10.0, 40.0)


@dataclass(frozen=True, slots=True)
class ThermalConditions:
    background_c: float = 8.0
    background_var_c: float = 2.0
    noise_c: float = 0.15
    blur_px: float = 0.8


def render_thermal(
    pose: CameraPose,
    cam: Intrinsics,
    origin: tuple[float, float],
    sources: list[ThermalSource],
    conditions: ThermalConditions = ThermalConditions(),
    rng: np.random.Generator | None = None,
    span_c: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(8-bit display frame, temperature image in °C) of the ground under the drone.

    The display frame uses the camera's automatic gain, or with `span_c` a fixed span (lo, hi) in °C.
    """
    rng = rng or np.random.default_rng()
    texture = ground_texture()
    ground = cv2.warpAffine(
        texture, _ground_affine(pose, cam, origin), (cam.width, cam.height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_WRAP,
    )
    # Darker ground (roads, roofs) is a little warmer at night; fields and trees cooler.
    lum = ground.mean(axis=2).astype(np.float32) / 255.0
    temp = conditions.background_c + conditions.background_var_c * (0.6 - lum)
    gsd = pose.agl_m / cam.focal_px
    margin = 50.0 / gsd
    for src in sources:
        u, v = pixel_of(src.lat, src.lon, pose, cam, origin)
        if not (-margin < u < cam.width + margin and -margin < v < cam.height + margin):
            continue
        axes = (max(0.5, src.length_m / 2 / gsd), max(0.5, src.width_m / 2 / gsd))
        angle = (src.heading_deg - pose.heading_deg) - 90.0
        mask = np.zeros(temp.shape, np.uint8)
        cv2.ellipse(mask, (round(u * 16), round(v * 16)), (round(axes[0] * 16), round(axes[1] * 16)), angle, 0, 360, 255, -1, cv2.LINE_AA, 4)
        alpha = mask.astype(np.float32) / 255.0
        temp = temp * (1 - alpha) + src.temp_c * alpha
    if conditions.blur_px > 0:
        temp = cv2.GaussianBlur(temp, (0, 0), conditions.blur_px)
    temp = temp + rng.normal(0, conditions.noise_c, temp.shape).astype(np.float32)
    if span_c is not None:
        lo, hi = span_c
    else:
        lo, hi = np.percentile(temp, (1.0, 99.9))
        hi = max(hi, lo + 4.0)  # automatic gain, with a minimum span so noise is not stretched to full scale
    display = np.clip((temp - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return display, temp
