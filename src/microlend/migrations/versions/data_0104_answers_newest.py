"""data: the answers' facts indexed by subject and source, newest first, so the early-warning read ranks each
subject's answers of a source without sorting them (the index by source and time it replaces had no other reader)

Revision ID: data_0104_answers_newest
Revises: data_0103_answer_facts
Create Date: 2026-12-01 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "data_0104_answers_newest"
down_revision: str | Sequence[str] | None = "data_0103_answer_facts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_data_answer_facts_tenant_kind", table_name="data_answer_facts")
    op.create_index("ix_data_answer_facts_subject_newest", "data_answer_facts",
                    ["tenant_id", "subject_index", "kind", sa.text("at DESC"), sa.text("call_id DESC")])


def downgrade() -> None:
    op.drop_index("ix_data_answer_facts_subject_newest", table_name="data_answer_facts")
    op.create_index("ix_data_answer_facts_tenant_kind", "data_answer_facts", ["tenant_id", "kind", "at"])
