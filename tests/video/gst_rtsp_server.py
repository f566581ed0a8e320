"""A real RTSP server for the ingest tests: GStreamer's gst-rtsp-server, H.264 test pattern.

Run by the system Python (Debian's python3-gi and gir1.2-gst-rtsp-server-1.0), not the project's venv:

    /usr/bin/python3 tests/video/gst_rtsp_server.py PORT [--gop N] [--fps N] [--inline-sps]

Serves rtsp://127.0.0.1:PORT/cam (videotestsrc -> x264enc -> rtph264pay) over TCP and UDP, prints
"ready" once listening, and runs until killed. By default the encoder puts SPS/PPS only in the SDP
(sprop-parameter-sets), as many cameras do; --inline-sps repeats them before every IDR instead.
"""

from __future__ import annotations

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--gop", type=int, default=15, help="frames between IDR pictures")
    ap.add_argument("--fps", type=int, default=15)
    ap.add_argument("--inline-sps", action="store_true")
    args = ap.parse_args()
    Gst.init(None)
    repeat = "1" if args.inline_sps else "0"
    launch = (
        f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate={args.fps}/1 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.gop} bitrate=300 "
        f"option-string=repeat-headers={repeat} ! video/x-h264,profile=constrained-baseline "
        "! rtph264pay name=pay0 pt=96 config-interval=0 )"
    )
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on port {args.port}", file=sys.stderr, flush=True)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
