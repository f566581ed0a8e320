"""The two places where the relay reaches into aiortc, kept in one file.

aiortc decodes every received video frame and encodes every sent one. A relay
must do neither, so:

- on the publisher's receiver, the decoder queue is replaced (before the
  receiver starts) by a tap that takes the complete encoded frames; it can
  still pass them on to aiortc's own decoder thread when one consumer needs
  pixels (the thermal detector);
- the publisher's receiver completes frames on the RTP marker bit (aiortc waits
  for the next frame's first packet: one frame period of delay at the relay);
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
from aiortc.jitterbuffer import JitterBuffer, JitterFrame

_QUEUE = "_RTCRtpReceiver__decoder_queue"
_MAPPER = "_RTCRtpReceiver__timestamp_mapper"
_STARTED = "_RTCRtpReceiver__started"
_STREAMS = "_RTCRtpReceiver__remote_streams"
_RTX = "_RTCRtpReceiver__rtx_ssrc"
_JITTER = "_RTCRtpReceiver__jitter_buffer"


class AiortcIncompatible(RuntimeError):
    pass


def check_compatible(receiver: RTCRtpReceiver) -> None:
    for name in (_QUEUE, _MAPPER, _STARTED, _STREAMS, _RTX, _JITTER):
        if not hasattr(receiver, name):
            raise AiortcIncompatible(f"aiortc's RTCRtpReceiver has no {name}: the video relay needs updating")
    if not hasattr(RTCRtpSender, "_send_keyframe"):
        raise AiortcIncompatible("aiortc's RTCRtpSender has no _send_keyframe: the video relay needs updating")


class MarkerJitterBuffer(JitterBuffer):
    """Completes a video frame on the RTP marker bit (set on a frame's last packet) instead of when the
    next frame's first packet arrives, as aiortc does: at the relay that saves a whole frame period
    (67 ms at 15 fps). If the marker packet is missing, it falls back to aiortc's rule."""

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        packets = []
        timestamp = None
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                break
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                break
            packets.append(packet)
            if packet.marker:
                frame = JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)
                self.remove(count + 1)
                return frame
        return super()._remove_frame(sequence_number)


def complete_frames_on_marker(receiver: RTCRtpReceiver) -> None:
    """Give a video receiver the marker-bit jitter buffer (before it starts)."""
    check_compatible(receiver)
    setattr(receiver, _JITTER, MarkerJitterBuffer(capacity=512, is_video=True))


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



#: aiortc's own DTLS suites (rtcdtlstransport.RTCCertificate._create_ssl_context): ECDSA only, like its certificate.
AIORTC_SUITES = b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA"
#: Added for peers whose certificate is RSA: with ECDSA suites only, aiortc as the DTLS client cannot talk to
#: GStreamer's webrtcbin ("no shared cipher"), which many WHIP encoders are built on (aiortc pull request #1392).
RSA_PEER_SUITES = b"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"


def accept_rsa_dtls_peers() -> None:
    """Let every aiortc connection of this process also offer the ECDHE-RSA suites (idempotent)."""
    from aiortc.rtcdtlstransport import RTCCertificate

    original = RTCCertificate._create_ssl_context
    if getattr(original, "accepts_rsa_peers", False):
        return

    def create_ssl_context(self: Any, srtp_profiles: Any) -> Any:
        ctx = original(self, srtp_profiles)
        ctx.set_cipher_list(AIORTC_SUITES + b":" + RSA_PEER_SUITES)
        return ctx

    create_ssl_context.accepts_rsa_peers = True  # type: ignore[attr-defined]
    RTCCertificate._create_ssl_context = create_ssl_context
