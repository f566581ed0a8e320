"""Alembic environment: migrations run on the connection the controller (or a test) hands over.

There is no alembic.ini: `controller.store.migrate` builds the configuration in
code, so `make run`, the tests and a production start all migrate the same way.
"""

from __future__ import annotations

from alembic import context

from controller.store import schema

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through controller.store.migrate
    raise RuntimeError("run migrations through controller.store.migrate, which passes a connection")

context.configure(
    connection=connection,
    target_metadata=schema.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
