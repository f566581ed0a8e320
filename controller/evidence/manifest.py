"""Signed manifests: what a recording (or an export) holds, each file's SHA-256, an Ed25519 signature over it all.

A recording directory::

    manifest.json    the recording, its segments (file, bytes, SHA-256, frames, times) and sidecars
    manifest.sig     base64 Ed25519 signature of manifest.json's exact bytes
    public-key.pem   the signing key's public half (pin it with `verify --key` to trust it)
    seg-00001.webm   video as the drone sent it (VP8 in WebM; H.264 in Matroska or fragmented MP4)
    seg-00001.jsonl  telemetry (time, position, altitude, heading, gimbal pitch) and hotspot marks

The manifest is rewritten and re-signed whenever a segment closes, so a recording cut short by a crash is still
verifiable up to its last closed segment. `verify_recording` and `verify_export` need only the files: they are
what `dronefleet evidence verify` runs, offline.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controller.evidence.keys import SigningKey, key_id, load_public

FORMAT = "dronefleet-evidence/1"
EXPORT_FORMAT = "dronefleet-evidence-export/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public-key.pem"
EXPORT_MANIFEST = "export.json"
EXPORT_SIGNATURE = "export.sig"
SEGMENT_RE = re.compile(r"^seg-(\d{5})\.(webm|mkv|mp4|jsonl)$")


def sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def canonical(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_signed(directory: Path, doc: dict[str, Any], key: SigningKey, name: str = MANIFEST, sig: str = SIGNATURE) -> bytes:
    """Write `doc` as `name` with its signature beside it (and the public key). Returns the manifest bytes."""
    data = canonical({**doc, "key_id": key.id})
    _atomic_write(directory / name, data)
    _atomic_write(directory / sig, base64.b64encode(key.sign(data)) + b"\n")
    pem = directory / PUBLIC_KEY
    if not pem.exists() or pem.read_bytes() != key.public_pem():
        _atomic_write(pem, key.public_pem())
    return data


# --- verification ----------------------------------------------------------------------------------------


@dataclass
class Report:
    """What verification found: `problems` (tampering, missing files) make it fail; `notes` do not."""

    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_signature(data: bytes, sig_path: Path, key: Ed25519PublicKey, what: str, report: Report) -> bool:
    try:
        signature = base64.b64decode(sig_path.read_bytes().strip(), validate=True)
        key.verify(signature, data)
    except FileNotFoundError:
        report.problems.append(f"{what}: signature file {sig_path.name} is missing")
        return False
    except (InvalidSignature, ValueError):
        report.problems.append(f"{what}: the signature does not match (the manifest was changed or signed by another key)")
        return False
    report.checked.append(f"{what}: Ed25519 signature valid (key {key_id(key)})")
    return True


def _public_key(directory: Path, pinned: Ed25519PublicKey | None, what: str, report: Report) -> Ed25519PublicKey | None:
    if pinned is not None:
        embedded = directory / PUBLIC_KEY
        if embedded.exists():
            try:
                if key_id(load_public(embedded.read_bytes())) != key_id(pinned):
                    report.problems.append(f"{what}: {PUBLIC_KEY} is not the pinned key {key_id(pinned)}")
            except ValueError:
                report.problems.append(f"{what}: {PUBLIC_KEY} is not a readable Ed25519 public key")
        return pinned
    try:
        key = load_public((directory / PUBLIC_KEY).read_bytes())
    except FileNotFoundError:
        report.problems.append(f"{what}: {PUBLIC_KEY} is missing (or give the key with --key)")
        return None
    except ValueError:
        report.problems.append(f"{what}: {PUBLIC_KEY} is not a readable Ed25519 public key")
        return None
    report.notes.append(f"{what}: signed by key {key_id(key)} (from the package itself; pin it with --key to trust it)")
    return key


def _check_file(directory: Path, name: str, size: int, digest: str, what: str, report: Report) -> None:
    path = directory / name
    if not path.is_file():
        report.problems.append(f"{what}: {name} is missing")
        return
    got, got_size = sha256_file(path)
    if got != digest:
        report.problems.append(
            f"{what}: {name} was altered: SHA-256 {got[:16]}… but the manifest says {digest[:16]}… ({got_size} vs {size} bytes)"
        )
        return
    report.checked.append(f"{what}: {name} SHA-256 ok ({size} bytes)")


def verify_recording(directory: Path, pinned: Ed25519PublicKey | None = None, report: Report | None = None) -> Report:
    report = report or Report()
    what = directory.name
    try:
        data = (directory / MANIFEST).read_bytes()
        doc = json.loads(data)
    except FileNotFoundError:
        report.problems.append(f"{what}: {MANIFEST} is missing")
        return report
    except ValueError:
        report.problems.append(f"{what}: {MANIFEST} is not valid JSON (altered?)")
        return report
    key = _public_key(directory, pinned, what, report)
    if key is not None:
        _check_signature(data, directory / SIGNATURE, key, f"{what}/{MANIFEST}", report)
    if doc.get("format") != FORMAT:
        report.problems.append(f"{what}: unknown manifest format {doc.get('format')!r}")
        return report
    segments = doc.get("segments", [])
    listed: set[str] = set()
    for n, seg in enumerate(segments, start=1):
        if seg.get("index") != n:
            report.problems.append(f"{what}: segment {n} is missing from the manifest (found index {seg.get('index')})")
        for name_key, bytes_key, sha_key in (("file", "bytes", "sha256"), ("sidecar", "sidecar_bytes", "sidecar_sha256")):
            name = seg.get(name_key)
            if not name or not seg.get(sha_key):
                report.problems.append(f"{what}: segment {n} has no {name_key} or hash in the manifest")
                continue
            listed.add(name)
            _check_file(directory, name, seg.get(bytes_key, -1), seg[sha_key], what, report)
    for path in sorted(directory.iterdir()):
        if SEGMENT_RE.match(path.name) and path.name not in listed:
            report.problems.append(f"{what}: {path.name} is not in the signed manifest (added, or its entry removed)")
    rec = doc.get("recording", {})
    if doc.get("status") != "complete":
        report.notes.append(f"{what}: the recording was still going on when this manifest was signed ({len(segments)} segments)")
    for gap in doc.get("gaps", []):
        report.notes.append(f"{what}: gap at {gap.get('at')}: {gap.get('reason')}")
    report.checked.append(
        f"{what}: {len(segments)} segments of {rec.get('drone_id')} {rec.get('kind')} "
        f"(mission {rec.get('mission_id')}, incident {rec.get('incident_id')}), {doc.get('frames', 0)} frames"
    )
    return report


def _safe_extract(zf: zipfile.ZipFile, target: Path, report: Report) -> bool:
    for info in zf.infolist():
        name = info.filename
        if name.startswith("/") or ".." in Path(name).parts:
            report.problems.append(f"package: unsafe path {name!r} in the archive")
            return False
    zf.extractall(target)
    return True


def verify_export(path: Path, pinned: Ed25519PublicKey | None = None) -> Report:
    report = Report()
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        report.problems.append(f"package: {path.name} is not a readable zip ({exc})")
        return report
    with zf, tempfile.TemporaryDirectory(prefix="evidence-verify-") as tmp:
        root = Path(tmp)
        if not _safe_extract(zf, root, report):
            return report
        try:
            data = (root / EXPORT_MANIFEST).read_bytes()
            doc = json.loads(data)
        except FileNotFoundError:
            report.problems.append(f"package: {EXPORT_MANIFEST} is missing")
            return report
        except ValueError:
            report.problems.append(f"package: {EXPORT_MANIFEST} is not valid JSON (altered?)")
            return report
        key = _public_key(root, pinned, "package", report)
        if key is not None:
            _check_signature(data, root / EXPORT_SIGNATURE, key, f"package/{EXPORT_MANIFEST}", report)
        if doc.get("format") != EXPORT_FORMAT:
            report.problems.append(f"package: unknown export format {doc.get('format')!r}")
            return report
        listed = set()
        for entry in doc.get("files", []):
            listed.add(entry["path"])
            _check_file(root, entry["path"], entry.get("bytes", -1), entry.get("sha256", ""), "package", report)
        present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
        for extra in sorted(present - listed - {EXPORT_MANIFEST, EXPORT_SIGNATURE, PUBLIC_KEY}):
            report.problems.append(f"package: {extra} is not listed in the signed {EXPORT_MANIFEST}")
        for rec_dir in sorted({(root / p).parent for p in listed if p.endswith("/" + MANIFEST)}):
            verify_recording(rec_dir, key, report)
        report.checked.append(
            f"package: recording {doc.get('recording_id')} exported by {doc.get('exported_by')} at {doc.get('exported_at')}"
        )
    return report


def verify_path(path: Path, pinned: Ed25519PublicKey | None = None) -> Report:
    """An export (.zip), a recording directory, or a recording's manifest.json."""
    if path.is_dir():
        return verify_recording(path, pinned)
    if path.name == MANIFEST:
        return verify_recording(path.parent, pinned)
    return verify_export(path, pinned)
