"""Thumbnails: a small square crop around a hotspot, and its encoding for a team's phone.

A team deciding whether to walk to a spot wants to see it; a fixed-size uint8
crop (64 x 64 by default) is small enough to keep per hotspot and to send.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np


def crop_thumbnail(image: np.ndarray, bbox: tuple[int, int, int, int], side_px: int = 64,
                   context: float = 2.5) -> np.ndarray:
    """Square uint8 crop `side_px` wide centred on `bbox` (x, y, w, h), covering `context` times the box.

    Float images (degrees C) are stretched to 0..255 over the crop; edges are
    padded by replication so a hotspot at the border is still centred.
    """
    if side_px < 4:
        raise ValueError(f"side_px must be >= 4, got {side_px}")
    x, y, w, h = bbox
    span = max(side_px // 2, int(round(context * max(w, h, 1))))
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = int(round(cx - span / 2.0)), int(round(cy - span / 2.0))
    H, W = image.shape[:2]
    if 0 <= x0 and 0 <= y0 and x0 + span <= W and y0 + span <= H:
        crop = image[y0:y0 + span, x0:x0 + span]
    elif -span <= x0 and -span <= y0 and x0 <= W and y0 <= H:  # the edge rows and columns repeat outside
        rows = np.clip(np.arange(y0, y0 + span), 0, H - 1)
        cols = np.clip(np.arange(x0, x0 + span), 0, W - 1)
        crop = image[rows[:, None], cols[None, :]]
    else:  # box entirely outside the image
        crop = np.zeros((span, span), image.dtype)
    if crop.dtype != np.uint8:
        f = crop.astype(np.float32)
        lo, hi = float(f.min()), float(f.max())
        crop = np.clip((f - lo) * (255.0 / max(hi - lo, 1e-3)), 0, 255).astype(np.uint8)
    interp = cv2.INTER_AREA if span > side_px else cv2.INTER_NEAREST
    return np.ascontiguousarray(cv2.resize(crop, (side_px, side_px), interpolation=interp))


def encode_thumbnail(thumbnail: np.ndarray, fmt: Literal["png", "jpeg"] = "png", jpeg_quality: int = 85) -> bytes:
    """PNG or JPEG bytes of a uint8 thumbnail (grey or BGR)."""
    if thumbnail.dtype != np.uint8:
        raise ValueError(f"thumbnail must be uint8, got {thumbnail.dtype}")
    if fmt == "png":
        ok, buf = cv2.imencode(".png", thumbnail)
    elif fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", thumbnail, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    else:
        raise ValueError(f"fmt must be 'png' or 'jpeg', got {fmt!r}")
    if not ok:
        raise ValueError("image encoding failed")
    return buf.tobytes()
