"""marketing

Revision ID: marketing_0001
Revises: decisioning_0001
Create Date: 2026-11-28 23:26:08.547917
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'marketing_0001'
down_revision: str | Sequence[str] | None = 'decisioning_0001'
branch_labels: str | Sequence[str] | None = ('marketing',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _create_marketing_opt_outs()
    _create_marketing_segments()
    _create_marketing_preapproval_runs()
    _create_marketing_campaigns()
    _create_marketing_offers()
    _create_marketing_assignments()
    _create_marketing_contact_history()
    _create_marketing_events()
    _create_marketing_outbox()
    _create_marketing_visit_tasks()


def downgrade() -> None:
    _drop_marketing_visit_tasks()
    _drop_marketing_outbox()
    _drop_marketing_events()
    _drop_marketing_contact_history()
    _drop_marketing_assignments()
    _drop_marketing_offers()
    _drop_marketing_campaigns()
    _drop_marketing_preapproval_runs()
    _drop_marketing_segments()
    _drop_marketing_opt_outs()


def _create_marketing_opt_outs() -> None:
    op.create_table('marketing_opt_outs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.BigInteger(), nullable=False),
        sa.Column('channel', sa.String(length=10), nullable=False),
        sa.Column('opted_out_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_marketing_opt_outs_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_opt_outs')),
        sa.UniqueConstraint('tenant_id', 'customer_id', 'channel', name='uq_marketing_opt_outs_channel')
    )


def _create_marketing_segments() -> None:
    op.create_table('marketing_segments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('expression', sa.Text(), nullable=False),
        sa.Column('namespace', sa.Text(), nullable=False),
        sa.Column('description', sa.String(length=500), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_marketing_segments_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_segments')),
        sa.UniqueConstraint('tenant_id', 'name', 'version', name='uq_marketing_segments_name_version')
    )
    with op.batch_alter_table('marketing_segments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_marketing_segments_tenant_id'), ['tenant_id'], unique=False)


def _create_marketing_preapproval_runs() -> None:
    op.create_table('marketing_preapproval_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('run_key', sa.String(length=64), nullable=False),
        sa.Column('segment_id', sa.Integer(), nullable=True),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('policy_version', sa.String(length=100), nullable=False),
        sa.Column('model_version', sa.String(length=100), nullable=False),
        sa.Column('parameters', sa.Text(), nullable=False),
        sa.Column('customers_total', sa.Integer(), nullable=False),
        sa.Column('customers_done', sa.Integer(), nullable=False),
        sa.Column('offers_count', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['segment_id'], ['marketing_segments.id'], name=op.f('fk_marketing_preapproval_runs_segment_id_marketing_segments')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_marketing_preapproval_runs_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_preapproval_runs')),
        sa.UniqueConstraint('tenant_id', 'run_key', name='uq_marketing_preapproval_runs_key')
    )
    with op.batch_alter_table('marketing_preapproval_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_marketing_preapproval_runs_tenant_id'), ['tenant_id'], unique=False)


def _create_marketing_campaigns() -> None:
    op.create_table('marketing_campaigns',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('channel', sa.String(length=10), nullable=False),
        sa.Column('locale', sa.String(length=10), nullable=False),
        sa.Column('segment_id', sa.Integer(), nullable=True),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.Column('control_share_bp', sa.Integer(), nullable=False),
        sa.Column('cost_per_message', sa.BigInteger(), nullable=False),
        sa.Column('attribution_days', sa.Integer(), nullable=False),
        sa.Column('cap_max_messages', sa.Integer(), nullable=False),
        sa.Column('cap_window_days', sa.Integer(), nullable=False),
        sa.Column('quiet_start', sa.String(length=5), nullable=False),
        sa.Column('quiet_end', sa.String(length=5), nullable=False),
        sa.Column('timezone', sa.String(length=60), nullable=False),
        sa.Column('template', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('launched_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['run_id'], ['marketing_preapproval_runs.id'], name=op.f('fk_marketing_campaigns_run_id_marketing_preapproval_runs')),
        sa.ForeignKeyConstraint(['segment_id'], ['marketing_segments.id'], name=op.f('fk_marketing_campaigns_segment_id_marketing_segments')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_marketing_campaigns_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_campaigns')),
        sa.UniqueConstraint('tenant_id', 'name', name='uq_marketing_campaigns_name')
    )
    with op.batch_alter_table('marketing_campaigns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_marketing_campaigns_tenant_id'), ['tenant_id'], unique=False)


def _create_marketing_offers() -> None:
    op.create_table('marketing_offers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.BigInteger(), nullable=False),
        sa.Column('limit', sa.BigInteger(), nullable=False),
        sa.Column('annual_rate', sa.String(length=40), nullable=False),
        sa.Column('apr', sa.String(length=40), nullable=False),
        sa.Column('expires_on', sa.Date(), nullable=False),
        sa.Column('risk_grade', sa.String(length=10), nullable=True),
        sa.Column('score', sa.Float(), nullable=True),
        sa.Column('policy_version', sa.String(length=100), nullable=False),
        sa.Column('model_version', sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['marketing_preapproval_runs.id'], name=op.f('fk_marketing_offers_run_id_marketing_preapproval_runs')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_marketing_offers_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_offers')),
        sa.UniqueConstraint('run_id', 'customer_id', name='uq_marketing_offers_run_customer')
    )
    with op.batch_alter_table('marketing_offers', schema=None) as batch_op:
        batch_op.create_index('ix_marketing_offers_tenant_customer', ['tenant_id', 'customer_id'], unique=False)


def _create_marketing_assignments() -> None:
    op.create_table('marketing_assignments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.BigInteger(), nullable=False),
        sa.Column('arm', sa.String(length=10), nullable=False),
        sa.Column('segment_label', sa.String(length=60), nullable=False),
        sa.Column('excluded_reason', sa.String(length=30), nullable=True),
        sa.Column('offer_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'], name=op.f('fk_marketing_assignments_campaign_id_marketing_campaigns')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_marketing_assignments_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_assignments')),
        sa.UniqueConstraint('campaign_id', 'customer_id', name='uq_marketing_assignments_customer')
    )
    with op.batch_alter_table('marketing_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_marketing_assignments_tenant_id'), ['tenant_id'], unique=False)


def _create_marketing_contact_history() -> None:
    op.create_table('marketing_contact_history',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.BigInteger(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=10), nullable=False),
        sa.Column('contacted_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'], name=op.f('fk_marketing_contact_history_campaign_id_marketing_campaigns')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_marketing_contact_history_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_contact_history'))
    )
    with op.batch_alter_table('marketing_contact_history', schema=None) as batch_op:
        batch_op.create_index('ix_marketing_contact_history_customer', ['tenant_id', 'customer_id', 'contacted_at'], unique=False)


def _create_marketing_events() -> None:
    op.create_table('marketing_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.BigInteger(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('token', sa.String(length=40), nullable=True),
        sa.Column('amount', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'], name=op.f('fk_marketing_events_campaign_id_marketing_campaigns')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_marketing_events_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_events'))
    )
    with op.batch_alter_table('marketing_events', schema=None) as batch_op:
        batch_op.create_index('ix_marketing_events_customer', ['tenant_id', 'customer_id', 'at'], unique=False)


def _create_marketing_outbox() -> None:
    op.create_table('marketing_outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.BigInteger(), nullable=False),
        sa.Column('channel', sa.String(length=10), nullable=False),
        sa.Column('locale', sa.String(length=10), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('token', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('suppressed_reason', sa.String(length=30), nullable=True),
        sa.Column('sender', sa.String(length=40), nullable=True),
        sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'], name=op.f('fk_marketing_outbox_campaign_id_marketing_campaigns')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_marketing_outbox_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_outbox'))
    )
    with op.batch_alter_table('marketing_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_marketing_outbox_campaign', ['campaign_id', 'customer_id'], unique=False)
        batch_op.create_index('ix_marketing_outbox_due', ['tenant_id', 'status', 'scheduled_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_marketing_outbox_token'), ['token'], unique=False)


def _create_marketing_visit_tasks() -> None:
    op.create_table('marketing_visit_tasks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.BigInteger(), nullable=False),
        sa.Column('officer_user_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('outcome', sa.String(length=30), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'], name=op.f('fk_marketing_visit_tasks_campaign_id_marketing_campaigns')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_marketing_visit_tasks_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_visit_tasks'))
    )
    with op.batch_alter_table('marketing_visit_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_marketing_visit_tasks_officer', ['tenant_id', 'officer_user_id', 'status'], unique=False)


def _drop_marketing_visit_tasks() -> None:
    with op.batch_alter_table('marketing_visit_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_marketing_visit_tasks_officer')
    op.drop_table('marketing_visit_tasks')


def _drop_marketing_outbox() -> None:
    with op.batch_alter_table('marketing_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_marketing_outbox_token'))
        batch_op.drop_index('ix_marketing_outbox_due')
        batch_op.drop_index('ix_marketing_outbox_campaign')
    op.drop_table('marketing_outbox')


def _drop_marketing_events() -> None:
    with op.batch_alter_table('marketing_events', schema=None) as batch_op:
        batch_op.drop_index('ix_marketing_events_customer')
    op.drop_table('marketing_events')


def _drop_marketing_contact_history() -> None:
    with op.batch_alter_table('marketing_contact_history', schema=None) as batch_op:
        batch_op.drop_index('ix_marketing_contact_history_customer')
    op.drop_table('marketing_contact_history')


def _drop_marketing_assignments() -> None:
    with op.batch_alter_table('marketing_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_marketing_assignments_tenant_id'))
    op.drop_table('marketing_assignments')


def _drop_marketing_offers() -> None:
    with op.batch_alter_table('marketing_offers', schema=None) as batch_op:
        batch_op.drop_index('ix_marketing_offers_tenant_customer')
    op.drop_table('marketing_offers')


def _drop_marketing_campaigns() -> None:
    with op.batch_alter_table('marketing_campaigns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_marketing_campaigns_tenant_id'))
    op.drop_table('marketing_campaigns')


def _drop_marketing_preapproval_runs() -> None:
    with op.batch_alter_table('marketing_preapproval_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_marketing_preapproval_runs_tenant_id'))
    op.drop_table('marketing_preapproval_runs')


def _drop_marketing_segments() -> None:
    with op.batch_alter_table('marketing_segments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_marketing_segments_tenant_id'))
    op.drop_table('marketing_segments')


def _drop_marketing_opt_outs() -> None:
    op.drop_table('marketing_opt_outs')
