"""Webhooks: the host's subscriptions per space, and the log of every delivery attempt.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("space_id", sa.String(32), sa.ForeignKey("spaces.id"), nullable=False, index=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(80), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("space_id", sa.String(32), nullable=False),
        sa.Column("hook_id", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("error", sa.String(300)),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
    )
    op.create_index("webhook_attempts_by_space", "webhook_attempts", ["space_id", "seq"])


def downgrade() -> None:
    op.drop_index("webhook_attempts_by_space", "webhook_attempts")
    for table in ("webhook_attempts", "webhooks"):
        op.drop_table(table)
