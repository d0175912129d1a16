"""The audit log is append-only and chained with a key held outside the database: edits and deletions are
detected, even when the later hashes or the head were rewritten to match."""

from typing import Any

import pytest
from sqlalchemy import Engine, delete, select, update
from tests.conftest import TenantKit
from typer.testing import CliRunner

from microlend.cli.main import app
from microlend.core import audit, tenancy
from microlend.core.db import make_session_factory
from microlend.core.settings import get_settings
from microlend.core.tables import AuditHeadRow, AuditRow
from microlend.core.uow import UnitOfWork


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


# ------------------------------------------------------------------ someone who can write the database but
# does not hold the audit key


def _rows(u: Any, tenant_id: int) -> list[AuditRow]:
    return list(u.session.execute(select(AuditRow).where(AuditRow.tenant_id == tenant_id)
                                  .order_by(AuditRow.seq)).scalars())


def test_an_edit_with_every_later_hash_recomputed_is_detected(bank: TenantKit) -> None:
    """Editing a record and relinking the rest of the chain with SHA-256 (all one can do without the key)."""
    _write_some(bank, 5)
    with bank.uow_factory() as u:
        rows = _rows(u, bank.tenant.id)
        edited = rows[-3]
        edited.after = {"i": 999}
        prev = edited.prev_hash
        for row in rows[-3:]:
            row.prev_hash = prev
            row.hash = prev = audit._legacy_digest(prev, row)
        u.session.execute(update(AuditHeadRow).where(AuditHeadRow.tenant_id == bank.tenant.id).values(hash=prev))
        u.commit()
        report = audit.verify(u.session, bank.tenant.id)
    assert not report.ok
    assert f"record #{edited.seq} was edited: its content no longer matches its hash" in report.problems


def test_a_tail_deleted_with_the_head_moved_back_is_detected(bank: TenantKit) -> None:
    _write_some(bank, 5)
    with bank.uow_factory() as u:
        rows = _rows(u, bank.tenant.id)
        keep = rows[-3]
        u.session.execute(delete(AuditRow).where(AuditRow.tenant_id == bank.tenant.id, AuditRow.seq > keep.seq))
        u.session.execute(update(AuditHeadRow).where(AuditHeadRow.tenant_id == bank.tenant.id)
                          .values(seq=keep.seq, hash=keep.hash))
        u.commit()
        report = audit.verify(u.session, bank.tenant.id)
    assert not report.ok
    assert any("head was altered" in p for p in report.problems)


def test_a_tail_deleted_with_its_head_is_detected(bank: TenantKit) -> None:
    _write_some(bank, 5)
    with bank.uow_factory() as u:
        last = _rows(u, bank.tenant.id)[-1].seq
        u.session.execute(delete(AuditRow).where(AuditRow.tenant_id == bank.tenant.id, AuditRow.seq >= last - 1))
        u.session.execute(delete(AuditHeadRow).where(AuditHeadRow.tenant_id == bank.tenant.id))
        u.commit()
        report = audit.verify(u.session, bank.tenant.id)
    assert not report.ok
    assert any("head is missing" in p for p in report.problems)


def test_a_bank_whose_records_and_head_were_all_deleted_is_detected(bank: TenantKit) -> None:
    _write_some(bank, 3)
    with bank.uow_factory() as u:
        u.session.execute(delete(AuditRow).where(AuditRow.tenant_id == bank.tenant.id))
        u.session.execute(delete(AuditHeadRow).where(AuditHeadRow.tenant_id == bank.tenant.id))
        u.commit()
        report = audit.verify(u.session, bank.tenant.id)
    assert not report.ok and report.records == 0
    assert any("audit chain is empty" in p for p in report.problems)


def test_a_new_bank_starts_its_chain_with_its_creation(bank: TenantKit) -> None:
    with bank.uow_factory() as u:
        first = _rows(u, bank.tenant.id)[0]
    assert (first.seq, first.action, first.object_id) == (1, "tenant.create", str(bank.tenant.id))


def test_a_chain_verified_with_another_key_is_broken(bank: TenantKit) -> None:
    _write_some(bank, 2)
    with bank.uow_factory() as u:
        assert audit.verify(u.session, bank.tenant.id).ok
        report = audit.verify(u.session, bank.tenant.id, key=b"another-key" * 4)
    assert not report.ok
    assert any("was edited" in p for p in report.problems)
    assert any("head was altered" in p for p in report.problems)


def test_the_command_line_names_a_broken_chain_and_exits_non_zero(bank: TenantKit, engine: Engine,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROLEND_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["audit", "verify", "--tenant", bank.tenant.name])
        assert result.exit_code == 0, result.output
        assert f"{bank.tenant.name}:" in result.output and "intact" in result.output
        with bank.uow_factory() as u:
            u.session.execute(delete(AuditHeadRow).where(AuditHeadRow.tenant_id == bank.tenant.id))
            u.commit()
        result = runner.invoke(app, ["audit", "verify", "--tenant", bank.tenant.name])
        assert result.exit_code == 1
        assert "BROKEN" in result.output and "head is missing" in result.output
    finally:
        get_settings.cache_clear()


def test_a_chain_written_before_the_key_is_sealed_and_an_edit_of_its_old_records_is_detected(
        fresh_engine: Engine) -> None:
    """The upgrade that keys the chain appends a keyed record linked to the last unkeyed one: the old records
    keep verifying as SHA-256 links, and rewriting them (links recomputed) breaks that keyed link."""
    uow = UnitOfWork(make_session_factory(fresh_engine))
    tenant = tenancy.create_tenant(uow, "sealbank")
    with uow:  # as the chain's code wrote it before the key: SHA-256 links, an unsigned head
        rows = _rows(uow, tenant.id)
        prev = audit.GENESIS
        for row in rows:
            row.prev_hash, row.hash = prev, audit._legacy_digest(prev, row)
            prev = row.hash
        uow.session.execute(update(AuditHeadRow).where(AuditHeadRow.tenant_id == tenant.id)
                            .values(hash=prev, keyed_from=0, mac=""))
        uow.commit()
        assert "never sealed" in " ".join(audit.verify(uow.session, tenant.id).problems)
    with fresh_engine.begin() as connection:
        assert audit.seal_legacy_chains(connection) == 1
    with uow:
        report = audit.verify(uow.session, tenant.id)
        assert report.ok, report.problems
        rows = _rows(uow, tenant.id)
        assert rows[-1].action == "audit.keyed" and rows[-1].after == {"unkeyed_records": len(rows) - 1}
        rows[0].reason = "rewritten"
        prev = audit.GENESIS
        for row in rows[:-1]:
            row.prev_hash, row.hash = prev, audit._legacy_digest(prev, row)
            prev = row.hash
        uow.commit()
        report = audit.verify(uow.session, tenant.id)
    assert not report.ok
    assert report.problems == [f"record #{rows[-1].seq} does not link to the record before it"]
