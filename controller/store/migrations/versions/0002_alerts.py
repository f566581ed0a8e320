"""Alerts with a kind and an acknowledgement: one row per `alert` event, who acknowledged it and when.

Alerts raised before this revision stay in the event log only (they have no kind and nobody could
acknowledge them, so they are not brought back as open alerts).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('text', sa.String(length=500), nullable=False),
    sa.Column('drone_id', sa.String(length=64), nullable=True),
    sa.Column('mission_id', sa.String(length=32), nullable=True),
    sa.Column('incident_id', sa.String(length=32), nullable=True),
    sa.Column('station_id', sa.String(length=64), nullable=True),
    sa.Column('category', sa.String(length=32), nullable=True),
    sa.Column('acked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acked_by', sa.String(length=120), nullable=True),
    sa.Column('acked_role', sa.String(length=16), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_alerts_kind', 'alerts', ['kind'], unique=False)
    op.create_index('ix_alerts_station_id', 'alerts', ['station_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_alerts_station_id', table_name='alerts')
    op.drop_index('ix_alerts_kind', table_name='alerts')
    op.drop_table('alerts')
