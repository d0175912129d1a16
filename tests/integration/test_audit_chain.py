"""The audit log is append-only and chained with a key held outside the database: edits and deletions are
detected, even when the later hashes or the head were rewritten to match."""

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select, update
from tests.conftest import TenantKit
from typer.testing import CliRunner

from microlend.cli.main import app
from microlend.core import audit, clock, tenancy
from microlend.core.clock import FixedClock
from microlend.core.db import make_session_factory
from microlend.core.settings import get_settings
from microlend.core.tables import AuditCheckRow, AuditHeadRow, AuditRow
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


# ------------------------------------------------------------------ the stored check: verified once, then only the
# records written since


def _status(bank: TenantKit, limit: int = audit.VIEW_CHECK_LIMIT) -> audit.ChainCheck:
    with bank.uow_factory().read_only(streamed=True) as u:
        return audit.chain_status(u.session, bank.tenant.id, limit=limit)


def _last_seq(bank: TenantKit) -> int:
    with bank.uow_factory() as u:
        return _rows(u, bank.tenant.id)[-1].seq


def _edit(bank: TenantKit, seq: int) -> None:
    with bank.uow_factory() as u:
        u.session.execute(update(AuditRow).where(AuditRow.tenant_id == bank.tenant.id, AuditRow.seq == seq)
                          .values(reason="rewritten"))
        u.commit()


def test_a_stored_check_goes_on_from_where_it_stopped(bank: TenantKit) -> None:
    _write_some(bank, 5)
    first = audit.check_chain(bank.uow_factory(), bank.principal("auditor"))
    assert first.ok and first.records == _last_seq(bank) == first.verified_now
    _write_some(bank, 3)
    shown = _status(bank)
    assert shown.ok, shown.problems
    assert (shown.records, shown.verified_now, shown.unverified) == (first.records + 3, 3, 0)
    assert shown.checked_at == first.checked_at
    again = audit.check_chain(bank.uow_factory(), bank.principal("auditor"))
    assert again.ok and (again.records, again.verified_now) == (first.records + 3, 3)
    assert _status(bank).verified_now == 0


def test_a_view_verifies_at_most_its_bound_and_says_how_many_wait(bank: TenantKit) -> None:
    audit.check_chain(bank.uow_factory(), bank.principal("auditor"))
    _write_some(bank, 5)
    shown = _status(bank, limit=2)
    assert shown.ok, shown.problems
    assert (shown.verified_now, shown.unverified) == (2, 3)
    assert shown.records == _last_seq(bank) - 3


def test_an_edit_after_the_stored_check_is_detected_by_the_page_and_the_next_check(bank: TenantKit) -> None:
    audit.check_chain(bank.uow_factory(), bank.principal("auditor"))
    _write_some(bank, 3)
    edited = _last_seq(bank) - 1
    _edit(bank, edited)
    message = f"record #{edited} was edited: its content no longer matches its hash"
    assert message in _status(bank).problems
    check = audit.check_chain(bank.uow_factory(), bank.principal("auditor"))
    assert not check.ok and message in check.problems
    _write_some(bank, 1)  # the failure stays in the stored check while the check goes on
    later = audit.check_chain(bank.uow_factory(), bank.principal("auditor"))
    assert not later.ok and message in later.problems and later.verified_now == 1
    assert not _status(bank).ok


def test_an_edit_of_the_record_a_check_stopped_at_is_detected_at_once(bank: TenantKit) -> None:
    _write_some(bank, 3)
    audit.check_chain(bank.uow_factory(), bank.principal("auditor"))
    _edit(bank, _last_seq(bank))
    # the edited record's hash is rewritten too (as one would to hide an edit): the stored hash no longer matches
    with bank.uow_factory() as u:
        u.session.execute(update(AuditRow).where(AuditRow.tenant_id == bank.tenant.id,
                                                 AuditRow.seq == _last_seq(bank)).values(hash="f" * 64))
        u.commit()
    shown = _status(bank)
    assert f"record #{_last_seq(bank)} was edited after it was verified: its hash changed" in shown.problems


def test_an_edit_of_a_record_verified_already_is_caught_by_the_daily_whole_walk(
        bank: TenantKit, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_some(bank, 5)
    first = audit.check_chain(bank.uow_factory(), bank.principal("auditor"))
    edited = _last_seq(bank) - 2
    _edit(bank, edited)
    message = f"record #{edited} was edited: its content no longer matches its hash"
    # within the day a check goes on from the record it stopped at: the records before it are not read again
    assert audit.check_chain(bank.uow_factory(), bank.principal("auditor")).verified_now == 0
    assert first.full_at is not None
    monkeypatch.setattr(clock, "_clock", FixedClock(first.full_at + audit.FULL_CHECK_EVERY + timedelta(minutes=1)))
    daily = audit.check_chain(bank.uow_factory(), bank.principal("auditor"))
    assert not daily.ok and message in daily.problems and daily.verified_now == _last_seq(bank)
    assert audit.check_chain(bank.uow_factory(), bank.principal("auditor"), full=True).problems == [message]


def test_a_clean_check_replaces_a_failure_only_after_a_whole_walk(bank: TenantKit) -> None:
    _write_some(bank, 3)
    edited = _last_seq(bank)
    with bank.uow_factory() as u:
        before = _rows(u, bank.tenant.id)[-1].reason
    _edit(bank, edited)
    assert not audit.check_chain(bank.uow_factory(), bank.principal("auditor")).ok
    with bank.uow_factory() as u:  # the record put back as it was
        u.session.execute(update(AuditRow).where(AuditRow.tenant_id == bank.tenant.id, AuditRow.seq == edited)
                          .values(reason=before))
        u.commit()
    assert not audit.check_chain(bank.uow_factory(), bank.principal("auditor")).ok
    assert audit.check_chain(bank.uow_factory(), bank.principal("auditor"), full=True).ok


def test_a_stored_check_rewritten_to_say_the_chain_is_intact_is_detected(bank: TenantKit) -> None:
    _write_some(bank, 3)
    edited = _last_seq(bank)
    _edit(bank, edited)
    assert not audit.check_chain(bank.uow_factory(), bank.principal("auditor")).ok
    with bank.uow_factory() as u:
        u.session.execute(update(AuditCheckRow).where(AuditCheckRow.tenant_id == bank.tenant.id)
                          .values(ok=True, problems=[]))
        u.commit()
    shown = _status(bank)
    assert not shown.ok
    assert any("stored check of the chain was altered" in p for p in shown.problems)
    check = audit.check_chain(bank.uow_factory(), bank.principal("auditor"))
    assert not check.ok and f"record #{edited} was edited: its content no longer matches its hash" in check.problems


def test_a_tail_deleted_after_the_stored_check_is_detected(bank: TenantKit) -> None:
    _write_some(bank, 5)
    audit.check_chain(bank.uow_factory(), bank.principal("auditor"))
    with bank.uow_factory() as u:
        rows = _rows(u, bank.tenant.id)
        keep = rows[-3]
        u.session.execute(delete(AuditRow).where(AuditRow.tenant_id == bank.tenant.id, AuditRow.seq > keep.seq))
        u.session.execute(update(AuditHeadRow).where(AuditHeadRow.tenant_id == bank.tenant.id)
                          .values(seq=keep.seq, hash=keep.hash))
        u.commit()
    for found in (_status(bank), audit.check_chain(bank.uow_factory(), bank.principal("auditor"))):
        assert not found.ok
        assert f"record #{rows[-1].seq} was removed after it was verified" in found.problems
        assert any("head was altered" in p for p in found.problems)


def test_only_who_may_read_the_trail_may_check_it(bank: TenantKit) -> None:
    from microlend.core.errors import DomainError

    with pytest.raises(DomainError):
        audit.check_chain(bank.uow_factory(), bank.principal("marketer"))


def test_the_page_shows_the_stored_check_and_a_button_advances_it(api: Any) -> None:
    from tests.conftest import sign_in_page

    api.client.cookies.clear()
    username, _ = api.kit.user("auditor")
    sign_in_page(api.client, username, "/audit")
    api.client.cookies.set("ml_lang", "en")
    page = api.client.get("/audit").text
    assert "The chain has not been checked yet" in page and 'action="/audit/check"' in page
    r = api.client.post("/audit/check", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/audit"
    with api.kit.uow_factory() as u:
        stored = u.session.get(AuditCheckRow, api.kit.tenant.id)
        assert stored is not None and stored.ok
    page = api.client.get("/audit").text
    assert "records verified." in page and "No record was written since." in page
    _write_some(api.kit, 2)
    assert "The 2 records written since were verified now." in api.client.get("/audit").text
    assert re.search(r"Checked .*?: (\d+) records verified", page).group(1) == str(stored.seq)  # type: ignore[union-attr]
    api.client.cookies.set("ml_lang", "zh_CN")
    assert "立即校验审计链" in api.client.get("/audit").text
    api.client.cookies.clear()
    username, _ = api.kit.user("marketer")
    sign_in_page(api.client, username, "/home")
    assert api.client.post("/audit/check", follow_redirects=False).status_code == 403
    api.client.cookies.clear()


def test_every_string_of_the_audit_page_has_a_chinese_translation() -> None:
    from importlib import resources

    from microlend.web import i18n
    from microlend.web.operations import KIND_LABELS

    text = resources.files("microlend.web").joinpath("templates", "audit.html").read_text(encoding="utf-8")
    msgids = set(re.findall(r'_\("((?:[^"\\]|\\.)*)"', text)) | set(KIND_LABELS.values())
    zh = i18n.translations("zh_CN")
    assert not sorted(m for m in msgids if zh.gettext(m) == m)
