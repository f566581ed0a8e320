"""Map a received frame's RTP timestamp to its wall-clock capture time, from RTCP sender reports.

A sender report pairs an NTP time with an RTP timestamp (RFC 3550 section
6.4.1); with synchronised clocks on drone and controller that gives each
frame's capture time, which the thermal pipeline needs to pick the drone's pose
at that instant. Until the first report arrives, times are unknown (None).
"""

from __future__ import annotations

from controller.video.encoded_frames import VIDEO_CLOCK_HZ

NTP_UNIX_OFFSET_S = 2_208_988_800


def ntp_to_unix(ntp: int) -> float:
    return (ntp >> 32) - NTP_UNIX_OFFSET_S + (ntp & 0xFFFFFFFF) / 2**32


class CaptureClock:
    def __init__(self, clock_hz: int = VIDEO_CLOCK_HZ) -> None:
        self.clock_hz = clock_hz
        self._sr: tuple[float, int] | None = None

    def observe_sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
        """Take a report's clock pairing, except an NTP time of zero: RFC 3550 (6.4.1) lets a sender with no wall
        clock yet send that, and aiortc does in the reports before its first frame — taken at its word, frames
        would be stamped 1900 (the first evidence segment of every recording was, and thermal frames looked
        for the drone's pose 126 years back)."""
        if ntp_timestamp == 0:
            return
        self._sr = (ntp_to_unix(ntp_timestamp), rtp_timestamp)

    def capture_time(self, rtp_timestamp: int) -> float | None:
        """Wall time of an absolute (not origin-relative) RTP timestamp, or None before any report."""
        if self._sr is None:
            return None
        sr_time, sr_rtp = self._sr
        delta = (rtp_timestamp - sr_rtp) & 0xFFFFFFFF
        if delta >= 1 << 31:
            delta -= 1 << 32
        return sr_time + delta / self.clock_hz
