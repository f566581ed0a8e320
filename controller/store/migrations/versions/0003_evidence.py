"""Evidence: recorded mission video (one row per recorded feed) and the audit of who accessed or exported it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recordings',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('drone_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('codec', sa.String(length=16), nullable=False),
    sa.Column('station_id', sa.String(length=64), nullable=True),
    sa.Column('mission_id', sa.String(length=32), nullable=True),
    sa.Column('incident_id', sa.String(length=32), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('segments', sa.Integer(), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('frames', sa.BigInteger(), nullable=False),
    sa.Column('dropped', sa.BigInteger(), nullable=False),
    sa.Column('write_errors', sa.Integer(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_recordings_drone_id', 'recordings', ['drone_id'], unique=False)
    op.create_index('ix_recordings_station_id', 'recordings', ['station_id'], unique=False)
    op.create_index('ix_recordings_mission_id', 'recordings', ['mission_id'], unique=False)
    op.create_index('ix_recordings_incident_id', 'recordings', ['incident_id'], unique=False)
    op.create_index('ix_recordings_started_at', 'recordings', ['started_at'], unique=False)
    op.create_table('evidence_audit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('recording_id', sa.String(length=40), nullable=True),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_evidence_audit_action', 'evidence_audit', ['action'], unique=False)
    op.create_index('ix_evidence_audit_recording_id', 'evidence_audit', ['recording_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_evidence_audit_recording_id', table_name='evidence_audit')
    op.drop_index('ix_evidence_audit_action', table_name='evidence_audit')
    op.drop_table('evidence_audit')
    op.drop_index('ix_recordings_started_at', table_name='recordings')
    op.drop_index('ix_recordings_incident_id', table_name='recordings')
    op.drop_index('ix_recordings_mission_id', table_name='recordings')
    op.drop_index('ix_recordings_station_id', table_name='recordings')
    op.drop_index('ix_recordings_drone_id', table_name='recordings')
    op.drop_table('recordings')
