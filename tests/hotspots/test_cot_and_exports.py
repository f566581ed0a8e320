"""CoT events validate against the CoT 2.0 event schema and reach TAK listeners over UDP and TCP; GeoJSON and KML exports."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from lxml import etree

from controller.domain.errors import Conflict
from controller.hotspots.cot import hotspot_event
from controller.hotspots.cot_sender import CotEndpoint, CotSender
from controller.hotspots.exports import geojson, kml
from controller.hotspots.records import HotspotRecord, HotspotStatus

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parents[1] / "data" / "cot" / "event.xsd")))
NOW = datetime(2026, 11, 23, 21, 30, tzinfo=UTC)


def record(status: HotspotStatus = HotspotStatus.NEW, **kw) -> HotspotRecord:  # noqa: ANN003
    base = dict(
        id="HS-000007", incident_id="INC-000042", lat=32.3857577, lon=118.8402778, error_m=3.4, kind="person",
        score=0.83, hits=5, first_seen=NOW - timedelta(seconds=20), last_seen=NOW, drones=["NJ-LH-05-D1", "NJ-LH-06-D1"],
        status=status,
    )
    base.update(kw)
    return HotspotRecord(**base)


def validate(xml: bytes) -> etree._Element:
    doc = etree.fromstring(xml)
    SCHEMA.assertValid(doc)
    return doc


def test_event_is_valid_cot_with_position_error_and_stable_uid() -> None:
    doc = validate(hotspot_event(record(), NOW, stale_s=600))
    point = doc.find("point")
    assert float(point.get("lat")) == pytest.approx(32.3857577) and float(point.get("lon")) == pytest.approx(118.8402778)
    assert float(point.get("ce")) == pytest.approx(3.4)
    assert doc.get("uid") == "dronefleet.HS-000007" and doc.get("how") == "m-i" and doc.get("type") == "a-u-G"
    assert doc.get("stale") == "2026-11-23T21:40:00.000Z"
    assert "INC-000042" in doc.find("detail/remarks").text


def test_found_and_dismissed_events() -> None:
    found = validate(hotspot_event(record(HotspotStatus.FOUND), NOW, 600))
    assert found.get("type") == "a-f-G-U-C"
    dismissed = validate(hotspot_event(record(HotspotStatus.DISMISSED), NOW, 600))
    assert dismissed.get("stale") == dismissed.get("time"), "TAK clients drop a dismissed hotspot at once"


def test_the_schema_catches_bad_events() -> None:
    bad = ET.fromstring(hotspot_event(record(), NOW, 600))
    bad.find("point").set("lat", "91.0")
    with pytest.raises(etree.DocumentInvalid):
        validate(ET.tostring(bad))
    missing = ET.fromstring(hotspot_event(record(), NOW, 600))
    missing.remove(missing.find("point"))
    with pytest.raises(etree.DocumentInvalid):
        validate(ET.tostring(missing))


def test_status_transitions() -> None:
    r = record()
    r.move_to(HotspotStatus.CONFIRMED, "team-1", NOW)
    r.move_to(HotspotStatus.FOUND, "team-1", NOW)
    with pytest.raises(Conflict):
        r.move_to(HotspotStatus.DISMISSED, "team-1", NOW)
    assert r.status is HotspotStatus.FOUND and r.status_by == "team-1"


def test_geojson_is_rfc7946_lon_lat_and_kml_parses() -> None:
    fc = geojson([record(), record(id="HS-000008", lat=32.39, lon=118.85, status=HotspotStatus.CONFIRMED)])
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 2
    f = fc["features"][0]
    assert f["geometry"] == {"type": "Point", "coordinates": [118.8402778, 32.3857577]}
    assert f["properties"]["status"] == "new" and "lat" not in f["properties"]
    json.dumps(fc)
    root = ET.fromstring(kml([record()]))
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    coords = root.find("k:Document/k:Placemark/k:Point/k:coordinates", ns).text
    assert coords == "118.8402778,32.3857577,0"


def test_endpoint_parsing() -> None:
    assert str(CotEndpoint.parse("udp://239.2.3.1:6969")) == "udp://239.2.3.1:6969"
    for bad in ("http://x:1", "udp://host", "tcp://:8087"):
        with pytest.raises(ValueError):
            CotEndpoint.parse(bad)


async def test_sender_delivers_over_udp_and_tcp_and_survives_a_dead_endpoint() -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    received_tcp: list[bytes] = []

    async def on_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received_tcp.append(await reader.read(65536))
        writer.close()

    server = await asyncio.start_server(on_tcp, "127.0.0.1", 0)
    tcp_port = server.sockets[0].getsockname()[1]
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()  # nothing listens there
    sender = CotSender(
        [
            CotEndpoint("udp", "127.0.0.1", udp.getsockname()[1]),
            CotEndpoint("tcp", "127.0.0.1", tcp_port),
            CotEndpoint("tcp", "127.0.0.1", dead_port),
        ],
        timeout_s=0.5,
        retries=2,
    )
    sender.start()
    try:
        xml = hotspot_event(record(), NOW, 600)
        sender.send(xml)
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(udp, 65536), 5)
        validate(data)
        for _ in range(100):
            if received_tcp and sender.failed[f"tcp://127.0.0.1:{dead_port}"]:
                break
            await asyncio.sleep(0.05)
        validate(received_tcp[0])
        assert sender.sent[f"tcp://127.0.0.1:{tcp_port}"] == 1
        assert sender.failed[f"tcp://127.0.0.1:{dead_port}"] == 1
    finally:
        await sender.stop()
        server.close()
        udp.close()
