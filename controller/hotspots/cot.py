"""Cursor-on-Target (CoT 2.0) events for hotspots, as ATAK and WinTAK teams receive them.

One event per hotspot, with a stable uid so every update (moved, confirmed,
found) replaces the marker on the teams' maps, and `stale` set to now when a
hotspot is dismissed so TAK clients drop it. `ce` carries the position error
(one sigma, metres) as the CoT schema defines it; `how` is "m-i" (machine,
mensurated from imagery).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

from controller.hotspots.records import HotspotRecord, HotspotStatus

#: CoT types: an unknown ground object for a raw hotspot, a friendly person once the team has found them.
TYPE_BY_STATUS = {
    HotspotStatus.NEW: "a-u-G",
    HotspotStatus.CONFIRMED: "a-u-G",
    HotspotStatus.DISMISSED: "a-u-G",
    HotspotStatus.FOUND: "a-f-G-U-C",
}
UNKNOWN_LE = 9999999.0  # the CoT convention for "no height error known"


def cot_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def hotspot_event(h: HotspotRecord, now: datetime, stale_s: float, ground_hae_m: float = 0.0) -> bytes:
    """The CoT XML for one hotspot (UTF-8 bytes with the XML declaration)."""
    stale = now if h.status is HotspotStatus.DISMISSED else now + timedelta(seconds=stale_s)
    event = ET.Element(
        "event",
        {
            "version": "2.0",
            "uid": f"dronefleet.{h.id}",
            "type": TYPE_BY_STATUS[h.status],
            "time": cot_time(now),
            "start": cot_time(now),
            "stale": cot_time(stale),
            "how": "m-i",
        },
    )
    ET.SubElement(
        event,
        "point",
        {"lat": f"{h.lat:.7f}", "lon": f"{h.lon:.7f}", "hae": f"{ground_hae_m:.1f}", "ce": f"{h.error_m:.1f}", "le": f"{UNKNOWN_LE:.1f}"},
    )
    detail = ET.SubElement(event, "detail")
    ET.SubElement(detail, "contact", {"callsign": f"Hotspot {h.id}"})
    drones = ", ".join(h.drones)
    remarks = ET.SubElement(detail, "remarks")
    remarks.text = (
        f"{h.status.value} {h.kind}-like thermal hotspot for {h.incident_id}, score {h.score:.2f}, "
        f"{h.hits} sightings by {drones}, first seen {cot_time(h.first_seen)}, last seen {cot_time(h.last_seen)}"
    )
    ET.SubElement(detail, "link", {"uid": h.incident_id, "relation": "p-p", "type": "b-r-f-h-c"})
    return ET.tostring(event, encoding="utf-8", xml_declaration=True)
