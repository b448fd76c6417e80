"""Spaces: the account that created one (what is announced publicly), and a pre-show closed for
good because nobody came (it does not open again after a restart).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("spaces") as batch:
        batch.add_column(sa.Column("created_by", sa.String(32)))
        batch.add_column(sa.Column("preshow_closed", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("spaces") as batch:
        batch.drop_column("preshow_closed")
        batch.drop_column("created_by")
