"""The audit log is append-only and hash-chained: edits and deletions are detected."""

from sqlalchemy import delete, select, update
from tests.conftest import TenantKit

from microlend.core import audit
from microlend.core.tables import AuditRow


def _write_some(bank: TenantKit, n: int) -> None:
    who = bank.principal("admin")
    with bank.uow_factory() as u:
        for i in range(n):
            audit.record(u.session, who, "test.write", "thing", i, after={"i": i})
        u.commit()


def test_an_untouched_chain_verifies(bank: TenantKit) -> None:
    _write_some(bank, 5)
    with bank.uow_factory() as u:
        report = audit.verify(u.session, bank.tenant.id)
    assert report.ok, report.problems
    assert report.records >= 5


def test_an_edited_record_is_detected(bank: TenantKit) -> None:
    _write_some(bank, 5)
    with bank.uow_factory() as u:
        seq = u.session.execute(select(AuditRow.seq).where(AuditRow.tenant_id == bank.tenant.id,
                                                           AuditRow.action == "test.write")).scalars().first()
        u.session.execute(update(AuditRow).where(AuditRow.tenant_id == bank.tenant.id, AuditRow.seq == seq)
                          .values(after={"i": 999}))
        u.commit()
        report = audit.verify(u.session, bank.tenant.id)
    assert not report.ok
    assert any(f"record #{seq} was edited" in p for p in report.problems)


def test_a_deleted_record_is_detected(bank: TenantKit) -> None:
    _write_some(bank, 5)
    with bank.uow_factory() as u:
        u.session.execute(delete(AuditRow).where(AuditRow.tenant_id == bank.tenant.id, AuditRow.seq == 3))
        u.commit()
        report = audit.verify(u.session, bank.tenant.id)
    assert any("#3 is missing" in p for p in report.problems)


def test_a_deleted_tail_is_detected(bank: TenantKit) -> None:
    _write_some(bank, 5)
    with bank.uow_factory() as u:
        last = u.session.execute(select(AuditRow.seq).where(AuditRow.tenant_id == bank.tenant.id)
                                 .order_by(AuditRow.seq.desc())).scalars().first()
        u.session.execute(delete(AuditRow).where(AuditRow.tenant_id == bank.tenant.id, AuditRow.seq == last))
        u.commit()
        report = audit.verify(u.session, bank.tenant.id)
    assert not report.ok
    assert any("records were removed" in p for p in report.problems)


def test_a_rolled_back_change_leaves_no_audit_record(bank: TenantKit) -> None:
    who = bank.principal("admin")
    with bank.uow_factory() as u:
        before = audit.verify(u.session, bank.tenant.id).records
    with bank.uow_factory() as u:
        audit.record(u.session, who, "test.write", "thing", 1)
        # no commit: the unit of work rolls back
    with bank.uow_factory() as u:
        assert audit.verify(u.session, bank.tenant.id).records == before
