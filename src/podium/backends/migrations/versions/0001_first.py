"""The first schema: spaces, stage and moderation state, accounts, posts and votes.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spaces",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("title", sa.String(400), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("starts_at", sa.String(40)),
        sa.Column("started_at", sa.String(40)),
        sa.Column("ended_at", sa.String(40)),
        sa.Column("peak_listeners", sa.Integer, nullable=False),
        sa.Column("record", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("private", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "stages",
        sa.Column("space_id", sa.String(32), sa.ForeignKey("spaces.id"), primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("username", sa.String(32), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "posts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("space_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("votes", sa.Integer, nullable=False),
        sa.UniqueConstraint("space_id", "user_id", "client_id", name="posts_once"),
    )
    op.create_index("posts_by_space", "posts", ["space_id", "kind", "state"])
    op.create_table(
        "moderation",
        sa.Column("space_id", sa.String(32), primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
    )
    op.create_table(
        "votes",
        sa.Column("post_id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), primary_key=True),
    )


def downgrade() -> None:
    for table in ("votes", "moderation", "posts", "accounts", "stages", "spaces"):
        op.drop_table(table)
