"""H.264 in Annex B as the relay forwards it: NAL units, parameter sets, and access units a decoder can start at.

A camera's RTSP stream often carries its SPS and PPS only in the SDP
(sprop-parameter-sets, FFmpeg's extradata), not in front of each IDR picture.
A viewer or recorder that joins later starts at a keyframe and needs them
there, so `ParameterSets.complete` puts the latest SPS/PPS in front of every
IDR access unit that lacks them. Nothing is decoded or re-encoded.
"""

from __future__ import annotations

NAL_SLICE, NAL_IDR, NAL_SEI, NAL_SPS, NAL_PPS, NAL_AUD = 1, 5, 6, 7, 8, 9
START_CODE = b"\x00\x00\x00\x01"


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex-B byte stream, without their start codes (3- or 4-byte)."""
    nals: list[bytes] = []
    n = len(data)
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        j = data.find(b"\x00\x00\x01", start)
        end = n if j < 0 else j
        if j >= 0 and data[j - 1] == 0:  # a 4-byte start code (or trailing zero) belongs to the next unit
            end = j - 1
        nal = data[start:end].rstrip(b"\x00") if j < 0 else data[start:end]
        if nal:
            nals.append(nal)
        i = j
    return nals


def length_prefixed_to_annexb(data: bytes, length_size: int = 4) -> bytes:
    """AVCC (MP4-style length-prefixed NAL units) to Annex B."""
    out, i, n = bytearray(), 0, len(data)
    while i + length_size <= n:
        size = int.from_bytes(data[i : i + length_size], "big")
        i += length_size
        if size <= 0 or i + size > n:
            raise ValueError("malformed length-prefixed H.264 access unit")
        out += START_CODE + data[i : i + size]
        i += size
    return bytes(out)


def is_annexb(data: bytes) -> bool:
    return data.startswith(b"\x00\x00\x01") or data.startswith(b"\x00\x00\x00\x01")


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F if nal else 0


def parse_extradata(extradata: bytes | None) -> tuple[list[bytes], list[bytes], int | None]:
    """(SPS list, PPS list, AVCC length size or None for Annex B) from FFmpeg's extradata."""
    if not extradata:
        return [], [], None
    if is_annexb(extradata):
        nals = split_annexb(extradata)
        return [x for x in nals if nal_type(x) == NAL_SPS], [x for x in nals if nal_type(x) == NAL_PPS], None
    # avcC: version, profile, compat, level, 0xFC|lengthSizeMinusOne, 0xE0|numSPS, (len, sps)*, numPPS, (len, pps)*
    if len(extradata) < 7 or extradata[0] != 1:
        raise ValueError("unrecognised H.264 extradata")
    length_size = (extradata[4] & 0x03) + 1
    sps: list[bytes] = []
    pps: list[bytes] = []
    i = 6
    for _ in range(extradata[5] & 0x1F):
        size = int.from_bytes(extradata[i : i + 2], "big")
        sps.append(extradata[i + 2 : i + 2 + size])
        i += 2 + size
    count = extradata[i] if i < len(extradata) else 0
    i += 1
    for _ in range(count):
        size = int.from_bytes(extradata[i : i + 2], "big")
        pps.append(extradata[i + 2 : i + 2 + size])
        i += 2 + size
    return sps, pps, length_size


class ParameterSets:
    """The stream's current SPS/PPS (from extradata, then from the stream itself), put in front of bare IDRs."""

    def __init__(self, sps: list[bytes] | None = None, pps: list[bytes] | None = None) -> None:
        self.sps = list(sps or [])
        self.pps = list(pps or [])
        self.inserted = 0

    def complete(self, access_unit: bytes) -> tuple[bytes, bool]:
        """(access unit with SPS/PPS before its IDR slice if it lacked them, whether it holds an IDR picture)."""
        nals = split_annexb(access_unit)
        types = [nal_type(x) for x in nals]
        if NAL_SPS in types:
            self.sps = [x for x in nals if nal_type(x) == NAL_SPS]
        if NAL_PPS in types:
            self.pps = [x for x in nals if nal_type(x) == NAL_PPS]
        idr = NAL_IDR in types
        if not idr or (NAL_SPS in types and NAL_PPS in types) or not (self.sps and self.pps):
            return access_unit, idr
        # Parameter sets go after an access unit delimiter (it must come first) and before everything else.
        lead = 1 if types and types[0] == NAL_AUD else 0
        ordered = nals[:lead] + self.sps + self.pps + [x for x in nals[lead:] if nal_type(x) not in (NAL_SPS, NAL_PPS)]
        self.inserted += 1
        return b"".join(START_CODE + x for x in ordered), True
