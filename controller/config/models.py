"""Validated shapes of the files in configs/.

Everything the controller reads from disk passes through these models once, at
start, so the rest of the code can trust its inputs. Models are frozen: the
configuration is not mutable state.
"""

from __future__ import annotations

import math
from datetime import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from controller.domain.categories import INCIDENT_CATEGORIES

Latitude = Annotated[float, Field(ge=-90.0, le=90.0)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- city -------------------------------------------------------------------


class District(Frozen):
    name: str = Field(min_length=1)
    code: str = Field(pattern=r"^[A-Z]{2}$")
    population: int = Field(gt=0)
    area_km2: float = Field(gt=0)
    lat: Latitude
    lon: Longitude


class Airport(Frozen):
    name: str
    lat: Latitude
    lon: Longitude
    no_fly_radius_m: float = Field(gt=0)


class City(Frozen):
    name: str
    timezone: str
    seed: int
    station_count: int = Field(gt=0, le=10000)
    districts: tuple[District, ...] = Field(min_length=1)
    airport: Airport

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


# --- stations ---------------------------------------------------------------


class Shift(Frozen):
    """A daily duty window in the city's local time; may wrap past midnight."""

    start: time
    end: time

    def covers(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class Pilot(Frozen):
    id: Identifier
    name: str = Field(min_length=1, max_length=120)
    shift: Shift


class DroneVideoStream(Frozen):
    """A camera stream the controller pulls for a drone (RTSP), instead of the one the drone announces over MAVLink.

    In a stations file, either `"rtsp://host:8554/thermal"` or `{"uri": ..., "transport": "udp"}`.
    """

    uri: str = Field(min_length=8, max_length=500)
    #: RTP over the RTSP connection (tcp, robust through firewalls) or over UDP ports.
    transport: Literal["tcp", "udp"] = "tcp"

    @model_validator(mode="before")
    @classmethod
    def _plain_uri(cls, value: object) -> object:
        return {"uri": value} if isinstance(value, str) else value

    @field_validator("uri")
    @classmethod
    def _rtsp_uri(cls, uri: str) -> str:
        from urllib.parse import urlsplit

        if any(c.isspace() for c in uri):
            raise ValueError("a stream URI has no spaces")
        parts = urlsplit(uri)
        if parts.scheme.lower() not in ("rtsp", "rtsps"):
            raise ValueError(f"expected an rtsp:// or rtsps:// URI, not {parts.scheme or 'no scheme'}")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ValueError(f"bad port in {uri!r}") from exc
        if not parts.hostname:
            raise ValueError("the URI names no host")
        return uri


class StationDrone(Frozen):
    id: Identifier
    model: Identifier
    #: Camera streams to pull by kind (visible, thermal); a kind given here is not asked of the drone over MAVLink.
    video: dict[Literal["visible", "thermal"], DroneVideoStream] = Field(default_factory=dict)


class Station(Frozen):
    id: Identifier
    name: str = Field(min_length=1, max_length=200)
    district: str
    lat: Latitude
    lon: Longitude
    elevation_m: float = 10.0
    drones: tuple[StationDrone, ...] = Field(min_length=1)
    pilots: tuple[Pilot, ...] = ()

    def on_duty(self, local: time) -> Pilot | None:
        for pilot in self.pilots:
            if pilot.shift.covers(local):
                return pilot
        return None


class StationRoster(Frozen):
    illustrative: bool = False
    note: str = ""
    stations: tuple[Station, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> StationRoster:
        seen: set[str] = set()
        for kind, ids in (
            ("station", [s.id for s in self.stations]),
            ("drone", [d.id for s in self.stations for d in s.drones]),
            ("pilot", [p.id for s in self.stations for p in s.pilots]),
        ):
            seen.clear()
            for ident in ids:
                if ident in seen:
                    raise ValueError(f"duplicate {kind} id {ident!r}")
                seen.add(ident)
        return self


# --- drone models -----------------------------------------------------------


class CameraIntrinsics(Frozen):
    width: int = Field(gt=0, le=8192)
    height: int = Field(gt=0, le=8192)
    hfov_deg: float = Field(gt=1, lt=180)
    focal_px: float = Field(gt=0)

    @model_validator(mode="after")
    def _focal_matches_fov(self) -> CameraIntrinsics:
        expected = (self.width / 2) / math.tan(math.radians(self.hfov_deg) / 2)
        if abs(expected - self.focal_px) > 0.01 * expected:
            raise ValueError(
                f"focal_px {self.focal_px} disagrees with width {self.width} and hfov_deg "
                f"{self.hfov_deg} (expected about {expected:.1f})"
            )
        return self


class Cameras(Frozen):
    visible: CameraIntrinsics
    thermal: CameraIntrinsics | None = None


class DroneModel(Frozen):
    name: str
    cruise_speed_ms: float = Field(gt=0, le=60)
    max_speed_ms: float = Field(gt=0, le=80)
    climb_rate_ms: float = Field(gt=0, le=20)
    descent_rate_ms: float = Field(gt=0, le=20)
    acceleration_ms2: float = Field(gt=0, le=20)
    endurance_min: float = Field(gt=0, le=600)
    battery_capacity_mah: int = Field(gt=0)
    max_wind_ms: float = Field(gt=0, le=40)
    cameras: Cameras

    @model_validator(mode="after")
    def _cruise_below_max(self) -> DroneModel:
        if self.cruise_speed_ms > self.max_speed_ms:
            raise ValueError(f"cruise_speed_ms {self.cruise_speed_ms} exceeds max_speed_ms {self.max_speed_ms}")
        return self


class DroneModelCatalog(Frozen):
    models: dict[Identifier, DroneModel] = Field(min_length=1)


# --- dispatch policy --------------------------------------------------------


class DuplicateMerge(Frozen):
    radius_m: float = Field(gt=0, le=10000)
    window_s: float = Field(gt=0, le=86400)


class LaunchDelay(Frozen):
    standby: float = Field(ge=0, le=3600)
    charging: float = Field(ge=0, le=3600)
    landed: float = Field(ge=0, le=3600)


class SearchPolicy(Frozen):
    """How missing-person searches are flown."""

    altitude_m: float = Field(default=60.0, gt=10, le=300)
    overlap: float = Field(default=0.2, ge=0, lt=0.9)
    speed_ms: float = Field(default=8.0, gt=0, le=30)
    default_radius_m: float = Field(default=500.0, gt=10, le=10_000)
    #: Drones asked for a missing-person search, by grade (1 most urgent).
    drones_by_grade: dict[int, int] = Field(default_factory=lambda: {1: 3, 2: 2, 3: 2, 4: 1})
    #: Frames per second per search drone run through the hotspot detector (the feed is decoded in full).
    detect_fps: float = Field(default=5.0, gt=0, le=30)
    #: A hotspot is confirmed after `confirm_hits` sightings within `confirm_frames` frames that could see it.
    confirm_hits: int = Field(default=3, ge=1, le=50)
    confirm_frames: int = Field(default=6, ge=1, le=100)
    #: Sightings closer than this on the ground are the same hotspot (also across drones).
    merge_radius_m: float = Field(default=8.0, gt=0, le=100)
    #: A dismissed hotspot suppresses new ones within this radius for the rest of the search.
    dismissed_radius_m: float = Field(default=15.0, gt=0, le=200)
    #: Cursor-on-Target receivers (udp://host:port or tcp://host:port), e.g. a TAK server or ATAK's multicast mesh.
    cot_endpoints: list[str] = Field(default_factory=list, max_length=20)
    cot_stale_s: float = Field(default=900.0, gt=0, le=86_400)
    cot_timeout_s: float = Field(default=2.0, gt=0, le=60)
    cot_retries: int = Field(default=3, ge=1, le=10)
    #: The search drones' thermal cameras stream in fixed-span mode over this range (°C), so grey levels read as
    #: temperatures and the detector applies its body-temperature gates; null: automatic gain (display frames only).
    thermal_span_c: tuple[float, float] | None = (-10.0, 40.0)
    #: Warmest-point temperature below which a blob is not a person (skin/clothing at night; sun-warmed rocks are cooler).
    body_min_c: float = Field(default=20.0, ge=0, le=40)
    #: Detector classes raised to the teams. A confirmed hotspot of another class (a sun-warmed rock, a car's
    #: bonnet) stays a track and is raised if later sightings make it person-like.
    report_kinds: list[Literal["person", "vehicle", "other"]] = Field(default_factory=lambda: ["person"], min_length=1)

    @field_validator("cot_endpoints")
    @classmethod
    def _endpoints(cls, v: list[str]) -> list[str]:
        from urllib.parse import urlsplit

        for url in v:
            parts = urlsplit(url)
            if parts.scheme not in ("udp", "tcp") or not parts.hostname or not parts.port:
                raise ValueError(f"{url!r} is not udp://host:port or tcp://host:port")
        return v

    @model_validator(mode="after")
    def _window(self) -> SearchPolicy:
        if self.thermal_span_c is not None and not self.thermal_span_c[0] < self.thermal_span_c[1]:
            raise ValueError(f"thermal_span_c {list(self.thermal_span_c)} must be [low, high] with low < high")
        if self.confirm_hits > self.confirm_frames:
            raise ValueError(f"confirm_hits ({self.confirm_hits}) cannot exceed confirm_frames ({self.confirm_frames})")
        return self


class Wind(Frozen):
    """The wind dispatch plans with (one value for the city; replace with a feed when there is one)."""

    speed_ms: float = Field(default=0.0, ge=0, le=60)
    #: Meteorological convention: the direction the wind blows FROM, degrees clockwise from north.
    from_deg: float = Field(default=0.0, ge=0, lt=360)


class EnginePolicy(Frozen):
    """Dispatch engine knobs: how grades trade off, when a grade-1 call may take a drone in flight."""

    #: Weight of a second of time to scene, by grade, in the joint assignment.
    grade_weights: dict[int, float] = Field(default_factory=lambda: {1: 8.0, 2: 4.0, 3: 2.0, 4: 1.0})
    #: A preempting call takes a drone in flight only if that arrives this much sooner than any free drone.
    preempt_margin_s: float = Field(default=90.0, ge=0, le=3600)
    preempting_grades: tuple[int, ...] = (1,)
    preemptible_grades: tuple[int, ...] = (3, 4)
    #: Keep this far from no-fly polygons when routing around them.
    nofly_buffer_m: float = Field(default=150.0, ge=0, le=5000)
    #: Height over the scene; the drone flies straight to it, or descends to it from transit height on the way.
    scene_altitude_m: float = Field(default=60.0, ge=0, le=500)

    @field_validator("grade_weights")
    @classmethod
    def _weights(cls, value: dict[int, float]) -> dict[int, float]:
        for grade, weight in value.items():
            if not 1 <= grade <= 9 or weight <= 0:
                raise ValueError(f"grade {grade}: weight {weight} must be > 0 for a grade in 1..9")
        return value

    def weight(self, grade: int) -> float:
        return self.grade_weights.get(grade, min(self.grade_weights.values()))


class Geofence(Frozen):
    """A circle the pilot's commands must keep inside: around the drone's own station unless a centre is given."""

    radius_m: float = Field(default=8000.0, gt=0, le=100_000)


class ControlPolicy(Frozen):
    """Limits on what a pilot may command in flight (issue 17): every command is checked against them first."""

    #: Heights above home a pilot may command (ArduCopter's relative altitude); 120 m is the legal ceiling.
    min_alt_m: float = Field(default=20.0, ge=5, le=120)
    max_alt_m: float = Field(default=120.0, gt=5, le=120)
    min_orbit_radius_m: float = Field(default=20.0, ge=5, le=1000)
    max_orbit_radius_m: float = Field(default=500.0, gt=5, le=2000)
    #: Fastest orbit speed a pilot may ask for (ArduCopter's CIRCLE_RATE is capped at 90 deg/s as well).
    max_speed_ms: float = Field(default=15.0, gt=0, le=40)
    geofence: Geofence = Field(default_factory=Geofence)
    #: A COMMAND_ACK (or PARAM_VALUE echo) must come within this long, else 504.
    ack_timeout_s: float = Field(default=1.0, gt=0, le=10)

    @model_validator(mode="after")
    def _ranges(self) -> ControlPolicy:
        if self.min_alt_m >= self.max_alt_m:
            raise ValueError(f"min_alt_m {self.min_alt_m} must be below max_alt_m {self.max_alt_m}")
        if self.min_orbit_radius_m >= self.max_orbit_radius_m:
            raise ValueError(f"min_orbit_radius_m {self.min_orbit_radius_m} must be below max_orbit_radius_m {self.max_orbit_radius_m}")
        return self


class EvidencePolicy(Frozen):
    """Mission video recorded as evidence (controller/evidence): segments, retention, the recorder's queue."""

    #: Record every mission's feeds (off: nothing is recorded, the relay is unchanged).
    enabled: bool = True
    #: Where recordings are kept; a relative path is under the controller's var directory (default var/evidence).
    directory: Path = Path("evidence")
    #: A new segment starts at the first keyframe after this many minutes.
    segment_minutes: float = Field(default=5.0, gt=0, le=60)
    #: Container for H.264 feeds: Matroska (mkv) or fragmented MP4 (mp4). VP8 always goes into WebM.
    h264_container: Literal["mkv", "mp4"] = "mkv"
    #: Recordings ended longer ago than this are deleted (with their segments) by the retention sweep.
    retention_days: float = Field(default=90.0, gt=0, le=3650)
    #: Over this many GB in all, the oldest ended recordings are deleted first (None: no size cap).
    max_total_gb: float | None = Field(default=None, gt=0, le=1_000_000)
    #: Frames waiting for the recorder's writer thread, all feeds together; beyond it frames are dropped (counted),
    #: never the live relay slowed.
    queue_frames: int = Field(default=3000, ge=10, le=1_000_000)


class DispatchPolicy(Frozen):
    offer_timeout_s: float = Field(default=30, gt=0, le=3600)
    duplicate_merge: DuplicateMerge
    battery_reserve_pct: float = Field(ge=0, lt=100)
    transit_altitude_m: float = Field(gt=0, le=500)
    #: Straight up to this height (clear of the station's surroundings) before flying toward the scene.
    departure_altitude_m: float = Field(default=30.0, gt=0, le=500)
    launch_delay_s: LaunchDelay
    time_on_scene_s: dict[str, float]
    search: SearchPolicy = Field(default_factory=SearchPolicy)
    wind: Wind = Field(default_factory=Wind)
    engine: EnginePolicy = Field(default_factory=EnginePolicy)
    #: What a pilot may command in flight (limits checked before anything is sent).
    control: ControlPolicy = Field(default_factory=ControlPolicy)
    #: Recording mission video as evidence (segments, retention).
    evidence: EvidencePolicy = Field(default_factory=EvidencePolicy)

    @field_validator("time_on_scene_s")
    @classmethod
    def _categories(cls, value: dict[str, float]) -> dict[str, float]:
        if "default" not in value:
            raise ValueError("needs a 'default' entry")
        for key, seconds in value.items():
            if key != "default" and key not in INCIDENT_CATEGORIES:
                raise ValueError(f"unknown incident category {key!r}; known: {', '.join(INCIDENT_CATEGORIES)}")
            if not 0 < seconds <= 6 * 3600:
                raise ValueError(f"{key}: {seconds} s is outside 0..21600")
        return value

    def on_scene_seconds(self, category: str) -> float:
        return self.time_on_scene_s.get(category, self.time_on_scene_s["default"])


# --- no-fly zones (GeoJSON) -------------------------------------------------


class NoFlyProperties(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")
    id: Identifier
    name: str
    reason: str = ""


class PolygonGeometry(Frozen):
    type: Literal["Polygon"]
    coordinates: tuple[tuple[tuple[float, float], ...], ...] = Field(min_length=1)

    @field_validator("coordinates")
    @classmethod
    def _rings(cls, rings: tuple[tuple[tuple[float, float], ...], ...]):
        for ring in rings:
            if len(ring) < 4:
                raise ValueError("a polygon ring needs at least 4 positions")
            if ring[0] != ring[-1]:
                raise ValueError("a polygon ring must be closed (first position == last)")
            for lon, lat in ring:
                if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                    raise ValueError(f"position [{lon}, {lat}] is not [lon, lat] in range")
        return rings


class NoFlyFeature(Frozen):
    type: Literal["Feature"]
    properties: NoFlyProperties
    geometry: PolygonGeometry


class NoFlyCollection(Frozen):
    type: Literal["FeatureCollection"]
    features: tuple[NoFlyFeature, ...]



# --- flight profile and links (configs/flight.yaml) ----------------------------


class Failsafe(Frozen):
    gcs_enable: int = Field(ge=0, le=7)
    gcs_timeout_s: float = Field(gt=0, le=120)
    battery_low_action: int = Field(ge=0, le=7)
    battery_low_pct: float = Field(ge=0, lt=100)
    #: FS_EKF_ACTION: what the vehicle does when its position estimate fails. 1 = LAND (ArduCopter's default);
    #: set explicitly so a vehicle configured for ALT_HOLD (2) does not drift down with nobody flying it.
    ekf_action: int = Field(default=1, ge=1, le=3)


class LinkOverride(Frozen):
    url: str | None = Field(default=None, pattern=r"^(tcp|udp):[^:]+:\d{1,5}$")
    sysid: int | None = Field(default=None, ge=1, le=255)
    signing_key_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")


class Links(Frozen):
    scheme: Literal["tcp", "udp"] = "tcp"
    host: str = "127.0.0.1"
    base_port: int = Field(default=5760, ge=1, le=65535)
    port_step: int = Field(default=10, ge=1, le=1000)
    overrides: dict[str, LinkOverride] = Field(default_factory=dict)


class FlightProfile(Frozen):
    arm_ready_timeout_s: float = Field(gt=0, le=1800)
    arm_attempts: int = Field(ge=1, le=600)
    takeoff_timeout_s: float = Field(gt=0, le=600)
    arrival_radius_m: float = Field(gt=0, le=1000)
    target_resend_s: float = Field(gt=0, le=60)
    on_scene: Literal["hold", "orbit"]
    orbit_radius_m: float = Field(gt=0, le=2000)
    orbit_points: int = Field(ge=3, le=72)
    battery_return_margin_pct: float = Field(ge=0, le=50)
    command_timeout_s: float = Field(gt=0, le=30)
    command_retries: int = Field(ge=1, le=20)
    failsafe: Failsafe
    links: Links


# --- map (optional configs/map.yaml) ------------------------------------------


class MapConfig(Frozen):
    """The pages' basemap: an XYZ tile URL, or a local MBTiles file the controller serves (offline rooms)."""

    #: e.g. "https://tile.openstreetmap.org/{z}/{x}/{y}.png" (the browser fetches it).
    tiles_url: str | None = Field(default=None, min_length=1, max_length=500)
    #: A raster (png/jpg/webp) .mbtiles file; relative paths are relative to the config directory.
    mbtiles: Path | None = None
    attribution: str = Field(default="", max_length=500)
    #: Default: the tileset's own (MBTiles metadata), else 0 and 19.
    min_zoom: int | None = Field(default=None, ge=0, le=24)
    max_zoom: int | None = Field(default=None, ge=0, le=24)

    @field_validator("tiles_url")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            if not value.startswith(("https://", "http://", "/")):
                raise ValueError("must be an http(s) URL or a path on this controller")
            missing = [p for p in ("{z}", "{x}", "{y}") if p not in value]
            if missing:
                raise ValueError(f"must be an XYZ template; {', '.join(missing)} missing")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> MapConfig:
        if self.tiles_url and self.mbtiles:
            raise ValueError("give tiles_url or mbtiles, not both")
        if self.min_zoom is not None and self.max_zoom is not None and self.min_zoom > self.max_zoom:
            raise ValueError(f"min_zoom {self.min_zoom} is above max_zoom {self.max_zoom}")
        return self
