"""Alembic migrations of Podium's database: one history for SQLite and PostgreSQL.

`migrate(engine)` brings a database to the newest schema when a node starts. A database made by
Podium before migrations existed (its tables there, Alembic's version table not) is mended (the
columns added since) and stamped with the first revision, then upgraded like any other.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

FIRST = "0001"
# Columns added to `spaces` before migrations existed, as SQL a pre-migration database needs.
_ADDED_BEFORE = {
    "record": "ALTER TABLE spaces ADD COLUMN record BOOLEAN NOT NULL DEFAULT TRUE",
    "private": "ALTER TABLE spaces ADD COLUMN private BOOLEAN NOT NULL DEFAULT FALSE",
}


MIGRATION_LOCK = 0x706F6469756D  # "podium": the advisory lock nodes migrate under


def migrate(engine: Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Nodes starting together on an older schema: one migrates, the others wait for it
            # (the lock is the transaction's, let go at its end).
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        tables = set(sa.inspect(connection).get_table_names())
        if "spaces" in tables and "alembic_version" not in tables:
            _mend(connection)
            command.stamp(config, FIRST)
        command.upgrade(config, "head")


def _mend(connection: Connection) -> None:
    present = {column["name"] for column in sa.inspect(connection).get_columns("spaces")}
    for name, statement in _ADDED_BEFORE.items():
        if name not in present:
            connection.execute(sa.text(statement))
