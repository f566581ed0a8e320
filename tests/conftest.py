"""Fixtures for the controller tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from controller.api.app import create_app
from controller.runtime import Runtime
from controller.settings import Settings
from tests import support
from tests.postgres import PostgresServer, PostgresUnavailable, postgres_server


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A small roster (support.SMALL_ROSTER stations around STATION_A): most tests are about rules, not the city."""
    return support.copy_configs(tmp_path / "configs", stations=support.SMALL_ROSTER)


@pytest.fixture
def full_config_dir(tmp_path: Path) -> Path:
    """The whole 140-station roster, for tests about the city-wide fleet."""
    return support.copy_configs(tmp_path / "configs")


def build_runtime(tmp_path: Path, config_dir: Path) -> Runtime:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'test.sqlite3'}", config_dir=config_dir, var_dir=tmp_path / "var"
    )
    return Runtime.build(settings, tokens=support.registry())


@pytest.fixture
async def runtime(tmp_path: Path, config_dir: Path) -> AsyncIterator[Runtime]:
    rt = build_runtime(tmp_path, config_dir)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
async def live_url(runtime: Runtime) -> AsyncIterator[str]:
    async with support.serve(create_app(runtime, manage_lifecycle=False)) as url:
        yield url


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=["sim", "ardupilot", "both"],
        default="both",
        help="flight backend for the end-to-end tests: the built-in simulator, real ArduPilot SITL "
        "(ARDUPILOT_SITL_BIN and ARDUPILOT_SITL_DEFAULTS), or both (SITL skips when absent)",
    )
    parser.addoption(
        "--speedup", type=float, default=10.0,
        help="simulated-time speed-up of the end-to-end tests' vehicles (their wall timeouts stretch below 10)",
    )


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (skips, saying why, where the binaries are missing)."""
    try:
        with postgres_server() as server:
            yield server
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on the embedded SQLite file and on a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()
