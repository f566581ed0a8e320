"""Hotspots as files the teams' tools open: GeoJSON (RFC 7946) and KML 2.2."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from xml.etree import ElementTree as ET

from controller.hotspots.records import HotspotRecord

KML_NS = "http://www.opengis.net/kml/2.2"


def geojson(hotspots: Iterable[HotspotRecord]) -> dict[str, Any]:
    """A FeatureCollection of Points; RFC 7946 order is [longitude, latitude]."""
    features = []
    for h in hotspots:
        props = h.view()
        props.pop("lat")
        props.pop("lon")
        features.append(
            {
                "type": "Feature",
                "id": h.id,
                "geometry": {"type": "Point", "coordinates": [round(h.lon, 7), round(h.lat, 7)]},
                "properties": props,
            }
        )
    return {"type": "FeatureCollection", "features": features}


def kml(hotspots: Iterable[HotspotRecord], title: str = "dronefleet hotspots") -> bytes:
    ET.register_namespace("", KML_NS)
    root = ET.Element(f"{{{KML_NS}}}kml")
    doc = ET.SubElement(root, f"{{{KML_NS}}}Document")
    ET.SubElement(doc, f"{{{KML_NS}}}name").text = title
    for h in hotspots:
        pm = ET.SubElement(doc, f"{{{KML_NS}}}Placemark", {"id": h.id})
        ET.SubElement(pm, f"{{{KML_NS}}}name").text = f"{h.id} ({h.status.value})"
        ET.SubElement(pm, f"{{{KML_NS}}}description").text = (
            f"{h.kind}-like hotspot for {h.incident_id}; score {h.score:.2f}; ±{h.error_m:.0f} m; "
            f"seen {h.hits} times by {', '.join(h.drones)}; last seen {h.last_seen.isoformat()}"
        )
        point = ET.SubElement(pm, f"{{{KML_NS}}}Point")
        ET.SubElement(point, f"{{{KML_NS}}}coordinates").text = f"{h.lon:.7f},{h.lat:.7f},0"
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
