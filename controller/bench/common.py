"""Shared helpers for benchmarks: percentiles, machine description, progress, a controller subprocess."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np


def percentiles(values: Sequence[float], scale: float = 1.0) -> dict[str, float]:
    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=float) * scale
    return {
        "n": int(a.size),
        "mean": round(float(a.mean()), 3),
        "p50": round(float(np.percentile(a, 50)), 3),
        "p90": round(float(np.percentile(a, 90)), 3),
        "p95": round(float(np.percentile(a, 95)), 3),
        "p99": round(float(np.percentile(a, 99)), 3),
        "max": round(float(a.max()), 3),
    }


def machine() -> dict[str, object]:
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or "unknown"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
    }


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class ControllerProcess:
    """A real `dronefleet serve` on loopback with its own temporary database and the given tokens."""

    def __init__(self, tokens: dict, port: int, extra_args: Sequence[str] = (), config_dir: Path | None = None) -> None:
        self.tokens = tokens
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.extra_args = list(extra_args)
        self.config_dir = config_dir
        self.tmp = Path(tempfile.mkdtemp(prefix="dronefleet-bench-"))
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ControllerProcess:
        env = dict(os.environ, DRONEFLEET_TOKENS=json.dumps({"tokens": self.tokens}))
        cmd = [sys.executable, "-m", "controller.cli", "serve", "--port", str(self.port), "--var-dir", str(self.tmp),
               "--log-level", "warning", *self.extra_args]
        if self.config_dir:
            cmd += ["--config-dir", str(self.config_dir)]
        self.log = (self.tmp / "controller.log").open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("controller exited:\n" + (self.tmp / "controller.log").read_text()[-3000:])
            try:
                if httpx.get(self.url + "/health", timeout=1).json().get("status") == "ok":
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("controller did not become healthy in 90 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
