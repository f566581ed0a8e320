"""Schema migrations (Alembic): every start brings the database to the schema this code expects.

A database made before migrations existed (by `metadata.create_all`, up to
2026-11) has the baseline schema but no `alembic_version` table: it is stamped
as the baseline first, then upgraded like any other.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The schema every database made before migrations has.
BASELINE = "0001"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or BASELINE


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine, target: str = "head") -> None:
    """Upgrade the database to `target`, stamping a pre-migration database as the baseline first."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        tables = set(inspect(conn).get_table_names())
        if "alembic_version" not in tables and "incidents" in tables:
            log.info("database made before migrations: stamping it as revision %s", BASELINE)
            command.stamp(cfg, BASELINE)
        before = MigrationContext.configure(conn).get_current_revision()
        command.upgrade(cfg, target)
        after = MigrationContext.configure(conn).get_current_revision()
    if before != after:
        log.info("database schema migrated from %s to %s", before or "empty", after)
