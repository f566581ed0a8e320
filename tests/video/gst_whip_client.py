#!/usr/bin/python3
"""A WHIP publisher (RFC 9725) built from GStreamer's webrtcbin: a WebRTC stack that is not aiortc, for the tests.

Runs under Debian's /usr/bin/python3 with python3-gi (gir1.2-gst-plugins-bad-1.0 for GstWebRTC, gstreamer1.0-nice
for ICE). Debian bookworm's own `whip-client` (simple-whip-client) cannot be used: it links libsoup 2 while libnice
pulls in libsoup 3, and it aborts ("libsoup2 symbols detected") when its pipeline starts.

    gst_whip_client.py URL TOKEN [vp8|h264] [audio]

Publishes a 320x240 15 fps test pattern (with `audio`, an Opus sine tone too, as OBS always sends audio): one
offer with its candidates (no trickle), POST application/sdp, the answer applied. Prints one JSON line
{"status", "location", "etag", "content_type", "audio"} ("audio": the answer's direction for the audio section,
or null) (or {"status", "body"} when refused, then exits 2); on SIGTERM/SIGINT it DELETEs the resource, prints
{"deleted": status} and exits 0.
"""

from __future__ import annotations

import json
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

ENCODERS = {
    "vp8": "vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 ! "
    "application/x-rtp,media=video,encoding-name=VP8,payload=96",
    "h264": "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile=constrained-baseline ! "
    "rtph264pay pt=102 config-interval=-1 aggregate-mode=zero-latency ! "
    "application/x-rtp,media=video,encoding-name=H264,payload=102",
}


def say(**what: object) -> None:
    print(json.dumps(what), flush=True)


def audio_direction(sdp: str) -> str | None:
    """The answer's audio section: "rejected" (port 0), its a= direction, or None without one."""
    for section in sdp.replace("\r\n", "\n").split("\nm=")[1:]:
        lines = section.split("\n")
        if lines[0].startswith("audio"):
            if lines[0].split()[1] == "0":
                return "rejected"
            for line in lines:
                if line in ("a=inactive", "a=sendonly", "a=recvonly", "a=sendrecv"):
                    return line[2:]
            return "sendrecv"
    return None


def main() -> int:
    url, token = sys.argv[1], sys.argv[2]
    codec = sys.argv[3] if len(sys.argv) > 3 else "vp8"
    audio = len(sys.argv) > 4 and sys.argv[4] == "audio"
    Gst.init(None)
    pipeline = Gst.parse_launch(
        "webrtcbin name=send bundle-policy=max-bundle "
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 ! videoconvert ! "
        f"queue ! {ENCODERS[codec]} ! send.sink_0"
        + (
            " audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! queue ! opusenc ! rtpopuspay pt=111 ! "
            "application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! send.sink_1"
            if audio else ""
        )
    )
    sinks = ["sink_0", "sink_1"] if audio else ["sink_0"]
    webrtc = pipeline.get_by_name("send")
    loop = GLib.MainLoop()
    state: dict[str, object] = {"location": None, "code": 0, "posted": False}

    def request(method: str, target: str, body: bytes | None = None) -> tuple[int, Any, str]:
        headers = {"Authorization": f"Bearer {token}"}
        if body is not None:
            headers["Content-Type"] = "application/sdp"
        req = urllib.request.Request(target, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=15) as res:
                return res.status, res.headers, res.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read().decode()

    def post_offer() -> None:
        if state["posted"]:
            return
        state["posted"] = True
        local = webrtc.get_property("local-description")
        if local is None:
            say(status=0, body="webrtcbin made no offer in time")
            state["code"] = 3
            loop.quit()
            return
        offer = local.sdp.as_text()
        status, headers, body = request("POST", url, offer.encode())
        if status != 201:
            say(status=status, body=body[:500])
            state["code"] = 2
            loop.quit()
            return
        _, message = GstSdp.SDPMessage.new()
        GstSdp.sdp_message_parse_buffer(body.encode(), message)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, message)
        webrtc.emit("set-remote-description", answer, None)
        state["location"] = urllib.parse.urljoin(url, headers.get("Location", ""))
        say(status=status, location=headers.get("Location"), etag=headers.get("ETag"), content_type=headers.get("Content-Type"),
            audio=audio_direction(body))

    def on_gathering(*_: object) -> None:
        if webrtc.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            GLib.idle_add(lambda: post_offer() and False)

    def on_offer(promise: Gst.Promise) -> None:
        reply = promise.get_reply()
        if reply is None or reply.has_field("error") or not reply.has_field("offer"):
            GLib.timeout_add(200, make_offer)  # webrtcbin was not ready yet: ask again shortly
            return
        offer = reply.get_value("offer")
        webrtc.emit("set-local-description", offer, None)

    def make_offer() -> bool:
        """Once the encoder's caps have reached webrtcbin (before that its offer would be empty)."""
        for name in sinks:
            pad = webrtc.get_static_pad(name)
            if pad is None or pad.get_current_caps() is None:
                return True  # keep polling
        webrtc.emit("create-offer", None, Gst.Promise.new_with_change_func(on_offer))
        return False

    def stop() -> bool:
        if state["location"]:
            status, _, _ = request("DELETE", str(state["location"]))
            say(deleted=status)
        loop.quit()
        return False

    webrtc.connect("notify::ice-gathering-state", on_gathering)
    pipeline.set_state(Gst.State.PLAYING)
    for i in range(len(sinks)):
        transceiver = webrtc.emit("get-transceiver", i)
        if transceiver is not None:
            transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
    GLib.timeout_add(100, make_offer)
    GLib.timeout_add_seconds(10, lambda: post_offer() and False)  # ICE gathering never completed: send what there is
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, stop)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    return int(state["code"])


if __name__ == "__main__":
    sys.exit(main())
