"""core: the bank's calendar — scheduled jobs with their lease, and the record of every run

Revision ID: core_0105_jobs
Revises: core_0104
Create Date: 2026-11-30 05:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'core_0105_jobs'
down_revision: str | Sequence[str] | None = 'core_0104'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('scheduled_jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('cadence', sa.String(length=20), nullable=False),
        sa.Column('local_time', sa.String(length=5), nullable=False),
        sa.Column('timezone', sa.String(length=60), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('next_business_date', sa.Date(), nullable=False),
        sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('rerun_date', sa.Date(), nullable=True),
        sa.Column('rerun_by', sa.String(length=100), nullable=True),
        sa.Column('lease_owner', sa.String(length=100), nullable=True),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_scheduled_jobs_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduled_jobs')),
        sa.UniqueConstraint('tenant_id', 'kind', name='uq_scheduled_jobs_kind')
    )
    with op.batch_alter_table('scheduled_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_scheduled_jobs_due', ['enabled', 'next_run_at'], unique=False)
    op.create_table('job_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('job_id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('business_date', sa.Date(), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('trigger', sa.String(length=20), nullable=False),
        sa.Column('worker', sa.String(length=100), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('figures', sa.Text(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('requested_by', sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(['job_id'], ['scheduled_jobs.id'], name=op.f('fk_job_runs_job_id_scheduled_jobs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_job_runs'))
    )
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_job_runs_job', ['job_id', 'id'], unique=False)
        batch_op.create_index('ix_job_runs_tenant', ['tenant_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_job_runs_tenant')
        batch_op.drop_index('ix_job_runs_job')
    op.drop_table('job_runs')
    with op.batch_alter_table('scheduled_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_scheduled_jobs_due')
    op.drop_table('scheduled_jobs')
