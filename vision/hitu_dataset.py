"""Loader for HIT-UAV-style thermal datasets: a folder of frames plus one COCO-like JSON file.

HIT-UAV (Suo et al., Scientific Data 10, 227, 2023; CC BY 4.0) stores its boxes
under the key `annotation` (singular); standard COCO uses `annotations`, and both
are accepted. Each file name carries the flight: `{light}_{altitude_m}_{angle_deg}_{x}_{frame}.jpg`,
light 0 = day and 1 = night (the dataset's own naming; it matches what the frames
show: persons stand out far more strongly in the "1" frames), camera angle 90 =
looking straight down. The loader reads every frame the JSON lists and fails with
a message naming the file when something is missing or malformed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vision.camera import CameraIntrinsics
from vision.evaluation import LabelledBox
from vision.pose import CameraPose

#: HIT-UAV's category ids; used when the JSON has no `categories` list.
DEFAULT_CATEGORIES = {0: "Person", 1: "Car", 2: "Bicycle", 3: "OtherVehicle", 4: "DontCare"}
_NAME = re.compile(r"^(?P<light>[01])_(?P<alt>\d+(?:\.\d+)?)_(?P<angle>\d+(?:\.\d+)?)_[^_]+_[^_]+\.[A-Za-z]+$")


@dataclass(frozen=True)
class FlightInfo:
    """What a HIT-UAV file name says about the flight."""

    night: bool
    altitude_m: float
    #: Camera angle below the horizon, degrees (90 = nadir).
    camera_angle_deg: float


def parse_flight_info(filename: str) -> FlightInfo:
    """Flight data from a file name like `1_60_30_0_00026.jpg`; ValueError naming the file if it does not fit."""
    m = _NAME.match(Path(filename).name)
    if not m:
        raise ValueError(
            f"{filename!r}: expected a HIT-UAV name {{light}}_{{altitude_m}}_{{angle_deg}}_{{x}}_{{frame}}.jpg "
            "(e.g. 1_60_30_0_00026.jpg)"
        )
    angle = float(m["angle"])
    if not 0.0 < angle <= 90.0:
        raise ValueError(f"{filename!r}: camera angle {angle} is outside (0, 90] degrees")
    return FlightInfo(night=m["light"] == "1", altitude_m=float(m["alt"]), camera_angle_deg=angle)


@dataclass(frozen=True)
class Sample:
    """One labelled frame."""

    path: Path
    image_id: int
    width: int
    height: int
    flight: FlightInfo
    boxes: tuple[LabelledBox, ...]

    def load_gray(self) -> np.ndarray:
        """The frame as an 8-bit single-channel array."""
        img = cv2.imread(str(self.path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f"{self.path}: cannot be read as an image")
        return img


class HitUavDataset:
    """Frames and boxes of one split, in the order the JSON lists the frames."""

    def __init__(self, images_dir: Path | str, annotations_file: Path | str) -> None:
        self.images_dir = Path(images_dir)
        self.annotations_file = Path(annotations_file)
        if not self.images_dir.is_dir():
            raise FileNotFoundError(f"images folder not found: {self.images_dir}")
        if not self.annotations_file.is_file():
            raise FileNotFoundError(f"annotations file not found: {self.annotations_file}")
        try:
            doc = json.loads(self.annotations_file.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.annotations_file}: not valid JSON ({exc})") from exc
        self.samples = _samples(doc, self.images_dir, self.annotations_file)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)


def _samples(doc: dict, images_dir: Path, source: Path) -> list[Sample]:
    if not isinstance(doc, dict) or "images" not in doc:
        raise ValueError(f"{source}: expected a COCO-like object with an 'images' list")
    anns = doc.get("annotation", doc.get("annotations"))
    if anns is None:
        raise ValueError(f"{source}: no 'annotation' (HIT-UAV) or 'annotations' (COCO) list")
    cats = {int(c["id"]): str(c["name"]) for c in doc.get("categories", [])} or dict(DEFAULT_CATEGORIES)
    for cid, name in DEFAULT_CATEGORIES.items():
        cats.setdefault(cid, name)  # HIT-UAV's val.json lists only 3 of the 5 categories it uses
    by_image: dict[int, list[LabelledBox]] = {}
    for k, a in enumerate(anns):
        try:
            x, y, w, h = (float(t) for t in a["bbox"])
            by_image.setdefault(int(a["image_id"]), []).append(LabelledBox(x, y, w, h, cats[int(a["category_id"])]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: annotation #{k} is malformed ({exc!r}): {a!r}") from exc
    out = []
    for im in doc["images"]:
        name = im.get("filename") or im.get("file_name")
        if not name:
            raise ValueError(f"{source}: image entry without 'filename'/'file_name': {im!r}")
        path = images_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"{source} lists {name!r} but {path} does not exist")
        out.append(Sample(path, int(im["id"]), int(im.get("width", 0)), int(im.get("height", 0)),
                          parse_flight_info(name), tuple(by_image.get(int(im["id"]), ()))))
    return out


def hit_uav_camera() -> CameraIntrinsics:
    """Assumed intrinsics for HIT-UAV's 640x512 frames: 25 degrees horizontal field of view (f ~ 1,440 px).

    The dataset gives no intrinsics. It was flown with a DJI Zenmuse XT2-class
    640x512 camera; its lens options give 69, 45, 32 or 25 degrees. The labelled
    boxes choose between them: in nadir frames, car boxes (cars are ~4.5 m long)
    measure about f x 4.5 m / altitude along their length with f ~ 1,400-2,000 px,
    so the 25-degree lens is the closest. An assumption, stated in the
    benchmark output, not a calibration.
    """
    return CameraIntrinsics.from_hfov(640, 512, 25.0)


def hit_uav_pose(flight: FlightInfo) -> CameraPose:
    """The pose a HIT-UAV file name implies: height above flat ground and camera depression, position unknown (0, 0)."""
    return CameraPose.from_height(0.0, 0.0, flight.altitude_m, gimbal_pitch=-flight.camera_angle_deg)
