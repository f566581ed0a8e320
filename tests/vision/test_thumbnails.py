"""Thumbnails: the crop around a box, at the frame's edge and beyond it, and its encoding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vision.thumbnails import crop_thumbnail, encode_thumbnail

FRAME = (np.arange(512 * 640) % 251).astype(np.uint8).reshape(512, 640)


def _padded_reference(image: np.ndarray, bbox: tuple[int, int, int, int], side: int = 64) -> np.ndarray:
    """The crop taken from the frame padded by edge replication (what the edge case must look like)."""
    x, y, w, h = bbox
    span = max(side // 2, int(round(2.5 * max(w, h, 1))))
    x0, y0 = int(round(x + w / 2.0 - span / 2.0)), int(round(y + h / 2.0 - span / 2.0))
    padded = cv2.copyMakeBorder(image, span, span, span, span, cv2.BORDER_REPLICATE)
    crop = padded[y0 + span:y0 + 2 * span, x0 + span:x0 + 2 * span]
    return cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA if span > side else cv2.INTER_NEAREST)


@pytest.mark.parametrize("bbox", [(300, 200, 10, 20), (0, 0, 8, 8), (630, 500, 10, 12), (-5, 250, 12, 30),
                                  (320, 505, 40, 20)])
def test_crop_inside_and_at_the_edge_repeats_the_edge_pixels(bbox: tuple[int, int, int, int]) -> None:
    thumb = crop_thumbnail(FRAME, bbox)
    assert thumb.shape == (64, 64) and thumb.dtype == np.uint8
    np.testing.assert_array_equal(thumb, _padded_reference(FRAME, bbox))


def test_box_outside_the_frame_gives_a_blank_thumbnail() -> None:
    assert not crop_thumbnail(FRAME, (-500, -500, 10, 10)).any()
    assert not crop_thumbnail(FRAME, (2000, 100, 10, 10)).any()


def test_float_frames_are_stretched_over_the_crop() -> None:
    celsius = np.full((512, 640), 8.0, dtype=np.float32)
    celsius[240:260, 310:330] = 30.0
    thumb = crop_thumbnail(celsius, (310, 240, 20, 20))
    assert thumb.min() == 0 and thumb.max() == 255
    assert encode_thumbnail(thumb)[:4] == b"\x89PNG"
