"""The two places where the relay reaches into aiortc, kept in one file.

aiortc decodes every received video frame and encodes every sent one. A relay
must do neither, so:

- on the publisher's receiver, the decoder queue is replaced (before the
  receiver starts) by a tap that takes the complete encoded frames; it can
  still pass them on to aiortc's own decoder thread when one consumer needs
  pixels (the thermal detector);
- on each viewer's sender, keyframe requests (PLI/FIR from the browser) would
  only set a flag for an encoder that never runs; they are redirected to the
  publisher instead.

Both rely on private attributes. `check_compatible()` fails loudly (and a test
runs it) if an aiortc upgrade moves them.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpSender

_QUEUE = "_RTCRtpReceiver__decoder_queue"
_MAPPER = "_RTCRtpReceiver__timestamp_mapper"
_STARTED = "_RTCRtpReceiver__started"
_STREAMS = "_RTCRtpReceiver__remote_streams"
_RTX = "_RTCRtpReceiver__rtx_ssrc"


class AiortcIncompatible(RuntimeError):
    pass


def check_compatible(receiver: RTCRtpReceiver) -> None:
    for name in (_QUEUE, _MAPPER, _STARTED, _STREAMS, _RTX):
        if not hasattr(receiver, name):
            raise AiortcIncompatible(f"aiortc's RTCRtpReceiver has no {name}: the video relay needs updating")
    if not hasattr(RTCRtpSender, "_send_keyframe"):
        raise AiortcIncompatible("aiortc's RTCRtpSender has no _send_keyframe: the video relay needs updating")


def decoder_queue(receiver: RTCRtpReceiver) -> queue.Queue:
    """The queue the receiver's decoder thread will read encoded frames from."""
    check_compatible(receiver)
    return getattr(receiver, _QUEUE)


def install_decoder_tap(receiver: RTCRtpReceiver, tap: Any) -> None:
    """Put `tap` where the receiver queues encoded frames (before the receiver starts its decoder thread)."""
    check_compatible(receiver)
    if getattr(receiver, _STARTED):
        raise AiortcIncompatible("the receiver already started; install the tap from the 'track' event")
    setattr(receiver, _QUEUE, tap)


def rtp_origin(receiver: RTCRtpReceiver) -> int | None:
    """The first RTP timestamp the receiver saw: received frames carry timestamps relative to it."""
    return getattr(receiver, _MAPPER)._origin


def media_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The publisher's media SSRC (not its retransmission SSRC), once packets have arrived."""
    rtx = getattr(receiver, _RTX)
    for ssrc in getattr(receiver, _STREAMS):
        if ssrc not in rtx:
            return ssrc
    return None


def watch_sender_reports(receiver: RTCRtpReceiver, on_report: Callable[[int, int], None]) -> None:
    """Call `on_report(ntp_timestamp, rtp_timestamp)` for every RTCP sender report the receiver gets."""
    from aiortc.rtp import RtcpSrPacket

    original = receiver._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            on_report(packet.sender_info.ntp_timestamp, packet.sender_info.rtp_timestamp)
        await original(packet)

    receiver._handle_rtcp_packet = handle  # type: ignore[method-assign]


def redirect_keyframe_requests(sender: RTCRtpSender, on_request: Callable[[], None]) -> None:
    """Call `on_request` when the viewer asks this sender for a keyframe (PLI or FIR)."""
    sender._send_keyframe = on_request  # type: ignore[method-assign]
