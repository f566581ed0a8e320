"""Evidence packages: one recording's signed manifest and files, the mission and incident timeline, and an
export manifest listing every file's SHA-256, signed with the same key (checked by `dronefleet evidence verify`)."""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature

from controller.evidence import manifest as mf
from controller.evidence.keys import SigningKey


class NotReady(Exception):
    """The recording's manifest could not be read consistently (or is missing)."""


def read_manifest(directory: Path, key: SigningKey, attempts: int = 5) -> tuple[bytes, bytes, dict[str, Any]]:
    """The manifest and its signature as one consistent pair (the writer may be re-signing right now)."""
    for _ in range(attempts):
        try:
            data = (directory / mf.MANIFEST).read_bytes()
            sig = (directory / mf.SIGNATURE).read_bytes()
            key.public.verify(base64.b64decode(sig.strip()), data)
            return data, sig, json.loads(data)
        except (FileNotFoundError, InvalidSignature, ValueError):
            time.sleep(0.05)
    raise NotReady(f"the manifest of {directory.name} is missing or does not match its signature")


def build_export(directory: Path, key: SigningKey, timeline: dict[str, Any], who: str, at: str) -> Path:
    """Write the package to a temporary .zip and return its path (the caller deletes it)."""
    data, sig, doc = read_manifest(directory, key)
    rec_id = directory.name
    prefix = f"recording/{rec_id}/"
    files: list[tuple[str, bytes | Path]] = [
        (prefix + mf.MANIFEST, data), (prefix + mf.SIGNATURE, sig), (prefix + mf.PUBLIC_KEY, key.public_pem()),
    ]
    for seg in doc.get("segments", []):
        files += [(prefix + seg["file"], directory / seg["file"]), (prefix + seg["sidecar"], directory / seg["sidecar"])]
    files.append(("timeline.json", (json.dumps(timeline, indent=1, default=str, sort_keys=True) + "\n").encode()))
    entries = []
    fd, name = tempfile.mkstemp(prefix=f"evidence-{rec_id}-", suffix=".zip")
    out = Path(name)
    with open(fd, "wb") as raw, zipfile.ZipFile(raw, "w") as zf:
        for path, content in files:
            if isinstance(content, Path):
                digest, size = mf.sha256_file(content)
                zf.write(content, path, compress_type=zipfile.ZIP_STORED)  # video: already compressed
            else:
                digest, size = hashlib.sha256(content).hexdigest(), len(content)
                zf.writestr(path, content, compress_type=zipfile.ZIP_DEFLATED)
            entries.append({"path": path, "bytes": size, "sha256": digest})
        export = {
            "format": mf.EXPORT_FORMAT, "recording_id": rec_id, "exported_by": who, "exported_at": at,
            "recording": doc.get("recording"), "files": entries, "key_id": key.id,
        }
        body = mf.canonical(export)
        zf.writestr(mf.EXPORT_MANIFEST, body, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr(mf.EXPORT_SIGNATURE, base64.b64encode(key.sign(body)) + b"\n")
        zf.writestr(mf.PUBLIC_KEY, key.public_pem())
    return out


def track(directory: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """Every segment's poses and marks, each with its segment index (the player maps video time to them)."""
    poses: list[dict[str, Any]] = []
    marks: list[dict[str, Any]] = []
    for seg in doc.get("segments", []):
        try:
            lines = (directory / seg["sidecar"]).read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            rec["segment"] = seg["index"]
            (poses if rec.get("type") == "pose" else marks).append(rec)
    return {"poses": poses, "marks": marks}
