"""Alembic's entry point: Podium runs migrations itself (`podium.backends.migrations.migrate`), on a
connection it hands over in the config's attributes."""

from __future__ import annotations

from alembic import context

from podium.backends.sql import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
