"""Signed-out sessions: a session token's id is kept here until the token would have expired.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revoked_sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("until", sa.String(40), nullable=False),
    )
    op.create_index("ix_revoked_sessions_until", "revoked_sessions", ["until"])


def downgrade() -> None:
    op.drop_index("ix_revoked_sessions_until", "revoked_sessions")
    op.drop_table("revoked_sessions")
