"""`dronefleet evidence verify` on an export (exit 0, 1 naming the altered file, 2 unreadable), retention by
policy, and migration 0003 down and up again on both databases."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from controller.config.models import EvidencePolicy
from controller.evidence.export import build_export
from controller.evidence.keys import SigningKey, parse_private
from controller.evidence.recorder import Recorder, RecordingMeta
from controller.evidence.service import expired
from controller.store.migrate import current, migrate
from tests.evidence.frames import frames

REPO = Path(__file__).resolve().parents[2]
SEED = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # base64 of a 32-byte seed, as DRONEFLEET_EVIDENCE_KEY


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "controller.cli", "evidence", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def package(tmp_path: Path) -> tuple[Path, SigningKey]:
    key = SigningKey(parse_private(SEED), "env")
    r = Recorder(tmp_path / "ev", key, segment_s=1.0)
    r.start()
    h = r.begin(RecordingMeta("REC-9", "D1", "visible", "VP8", datetime.now(UTC), "S1", "M-9", "INC-9"))
    for f in frames("VP8", 45, capture0=1_790_000_000.0):
        r.offer_frame(h, f)
    r.end(h)
    r.stop()
    path = build_export(tmp_path / "ev" / "REC-9", key, {"events": []}, "commander:cmd", "2026-12-06T00:00:00Z")
    out = tmp_path / "package.zip"
    path.rename(out)
    return out, key


def test_verify_passes_then_names_what_was_tampered(package, tmp_path: Path) -> None:
    path, key = package
    ok = cli("verify", str(path), "--key", key.public_b64())
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "VERIFIED" in ok.stdout and key.id in ok.stdout

    def altered(member: str, change) -> Path:  # noqa: ANN001
        out = tmp_path / f"t-{member.replace('/', '_')}.zip"
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
            for info in src.infolist():
                data = src.read(info)
                dst.writestr(info, change(data) if info.filename.endswith(member) else data)
        return out

    def flip(data: bytes) -> bytes:
        b = bytearray(data)
        b[len(b) // 2] ^= 0x01
        return bytes(b)

    bad = cli("verify", str(altered("seg-00002.webm", flip)))
    assert bad.returncode == 1 and "seg-00002.webm was altered" in bad.stdout, bad.stdout
    bad = cli("verify", str(altered("seg-00001.jsonl", lambda d: d + b'{"type":"pose"}\n')))
    assert bad.returncode == 1 and "seg-00001.jsonl was altered" in bad.stdout
    bad = cli("verify", str(altered("timeline.json", lambda d: d.replace(b"[]", b"[1]"))))
    assert bad.returncode == 1 and "timeline.json was altered" in bad.stdout
    bad = cli("verify", str(altered("export.json", lambda d: d.replace(b"commander:cmd", b"commander:eve"))))
    assert bad.returncode == 1 and "export.json: the signature does not match" in bad.stdout
    other = SigningKey(parse_private("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="), "x")
    bad = cli("verify", str(path), "--key", other.public_b64())
    assert bad.returncode == 1 and "not the pinned key" in bad.stdout
    assert cli("verify", str(tmp_path / "nothing.zip")).returncode == 2


def test_retention_deletes_old_recordings_then_the_oldest_over_the_size_cap() -> None:
    now = datetime(2026, 12, 6, tzinfo=UTC)

    def row(i: str, days_ago: float | None, gb: float) -> dict:
        return {"id": i, "ended_at": None if days_ago is None else now - timedelta(days=days_ago), "deleted_at": None,
                "bytes": int(gb * 1e9)}

    rows = [row("old", 100, 1), row("a", 30, 4), row("b", 20, 4), row("c", 1, 4), row("live", None, 4)]
    assert expired(rows, now, EvidencePolicy(retention_days=90)) == ["old"]
    assert expired(rows, now, EvidencePolicy(retention_days=90, max_total_gb=10)) == ["old", "a", "b"]
    assert expired(rows, now, EvidencePolicy(retention_days=10)) == ["old", "a", "b"]  # never one still recording
    with pytest.raises(ValueError):
        EvidencePolicy(retention_days=0)


def test_migration_0003_goes_down_and_up(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        migrate(engine)
        assert {"recordings", "evidence_audit"} <= set(inspect(engine).get_table_names())
        from alembic import command

        from controller.store.migrate import alembic_config

        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0002")
        assert current(engine) == "0002"
        assert not {"recordings", "evidence_audit"} & set(inspect(engine).get_table_names())
        migrate(engine)
        assert current(engine) == "0003"
    finally:
        engine.dispose()
