"""servicing: journal lines indexed by tenant, account and entry, so a balance of one account as of a date (the
finance reports' principal by loan) reads each dated entry's lines of that account directly instead of every
line of the account for every entry

Revision ID: servicing_0114_lines_by_entry
Revises: servicing_0113_batch_paths
Create Date: 2026-11-30 16:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "servicing_0114_lines_by_entry"
down_revision: str | Sequence[str] | None = "servicing_0113_batch_paths"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # the new index starts with the old one's columns, so it serves every query the old one did
    op.create_index("ix_journal_lines_tenant_account_entry", "journal_lines", ["tenant_id", "account_code", "entry_id"])
    op.drop_index("ix_journal_lines_tenant_account", table_name="journal_lines")


def downgrade() -> None:
    op.create_index("ix_journal_lines_tenant_account", "journal_lines", ["tenant_id", "account_code"])
    op.drop_index("ix_journal_lines_tenant_account_entry", table_name="journal_lines")
