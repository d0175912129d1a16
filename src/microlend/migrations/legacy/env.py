"""Alembic environment of the retired single chain: run only by ``core.migrate``, on its connection."""

from __future__ import annotations

from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
