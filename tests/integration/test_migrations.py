"""Migrations: one Alembic branch per module, and a bank on the former single chain carried over to them
without losing a row, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from tests.conftest import BACKENDS
from tests.pgdb import private_database
from typer.testing import CliRunner

from microlend.cli.main import app
from microlend.core import audit, migrate
from microlend.core.db import Base, make_engine, make_session_factory
from microlend.core.errors import Conflict, ValidationError
from microlend.core.events import EventHandlers
from microlend.core.settings import get_settings
from microlend.core.uow import UnitOfWork
from microlend.demo import providers
from microlend.demo.history import seed_marketing, simulate
from microlend.demo.seed import seed

NewDatabase = Callable[[], Engine]


@pytest.fixture(params=BACKENDS)
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewDatabase]:
    """Makes empty databases on one backend (SQLite files, or private PostgreSQL databases)."""
    engines: list[Engine] = []
    with ExitStack() as databases:

        def make() -> Engine:
            if request.param == "sqlite":
                url = f"sqlite:///{tmp_path / f'db{len(engines)}.sqlite'}"
            else:
                url = databases.enter_context(private_database("migrations"))
            engines.append(make_engine(url))
            return engines[-1]

        yield make
        for engine in engines:
            engine.dispose()


def legacy_upgrade(engine: Engine, revision: str = migrate.LEGACY_HEAD) -> None:
    """Build the schema with the real revisions of the former single chain, as an older release did."""
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as connection:
        cfg = migrate.alembic_config(url, migrate.LEGACY_SCRIPT_LOCATION)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


# ------------------------------------------------------------------------------------------ snapshots

def _sorted(items: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True, default=str) for item in items)


def _table_schema(insp: Any, name: str) -> dict[str, Any]:
    return {
        "columns": [{k: (repr(v) if k == "type" else v) for k, v in c.items()} for c in insp.get_columns(name)],
        "primary_key": insp.get_pk_constraint(name),
        "indexes": _sorted(insp.get_indexes(name)),
        "unique": _sorted(insp.get_unique_constraints(name)),
        "foreign_keys": _sorted(insp.get_foreign_keys(name)),
        "checks": _sorted(insp.get_check_constraints(name)),
        "options": json.dumps(insp.get_table_options(name), sort_keys=True, default=str),
    }


def _catalog(connection: Connection) -> list[tuple[Any, ...]]:
    """What inspect() does not show: triggers, functions, storage options (and on SQLite, the DDL itself)."""
    if connection.dialect.name == "sqlite":
        query = ("SELECT type, name, tbl_name, sql FROM sqlite_master "
                 "WHERE tbl_name != 'alembic_version' ORDER BY type, name")
        return [tuple(r) for r in connection.execute(text(query))]
    queries = [
        "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname",
        "SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'public' ORDER BY p.proname",
        "SELECT relname, relkind, array_to_string(reloptions, ',') FROM pg_class "
        "WHERE relnamespace = 'public'::regnamespace AND relname NOT LIKE 'alembic_version%' ORDER BY relname",
    ]
    return [tuple(r) for q in queries for r in connection.execute(text(q))]


def schema_of(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        insp = inspect(connection)
        tables = {name: _table_schema(insp, name) for name in sorted(insp.get_table_names())
                  if name != "alembic_version"}
        return {"tables": tables, "catalog": _catalog(connection)}


def rows_of(engine: Engine, columns: dict[str, list[str]] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows; with `columns`, only those columns of those tables (what an older schema had)."""
    meta = sa.MetaData()
    with engine.connect() as connection:
        meta.reflect(connection)
        tables = [t for t in meta.sorted_tables if t.name != "alembic_version"]
        return {t.name: sorted((tuple(r) for r in connection.execute(
                    sa.select(*(t.c[c] for c in columns[t.name])) if columns and t.name in columns else sa.select(t))),
                    key=repr)
                for t in tables}


def columns_of(engine: Engine) -> dict[str, list[str]]:
    meta = sa.MetaData()
    with engine.connect() as connection:
        meta.reflect(connection)
    return {t.name: [c.name for c in t.columns] for t in meta.sorted_tables}


# ------------------------------------------------------------------------------------------ data

def _value(column: sa.Column[Any]) -> Any:
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return True
    if isinstance(kind, sa.Integer):
        return 7
    if isinstance(kind, sa.DateTime):
        return datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    if isinstance(kind, sa.Date):
        return date(2026, 1, 2)
    if isinstance(kind, sa.Float):
        return 0.5
    if isinstance(kind, sa.String | sa.Text):
        return "{}"
    if isinstance(kind, sa.LargeBinary):
        return b"%PDF-"
    raise AssertionError(f"no sample value for {column.table.name}.{column.name} ({kind!r})")


def _sample_row(connection: Connection, table: sa.Table) -> dict[str, Any]:
    """One row that meets the table's keys and checks (zero amounts; the referenced rows exist)."""
    row: dict[str, Any] = {}
    for column in table.columns:
        if column.primary_key and len(table.primary_key.columns) == 1:
            continue
        row[column.name] = 0 if isinstance(column.type, sa.Integer) and column.name not in (
            "tenant_id", "version") else _value(column)
    for fk in table.foreign_key_constraints:
        if fk.referred_table is table:
            row.update({c.name: None for c in fk.columns})
            continue
        referred = [e.column for e in fk.elements]
        found = connection.execute(sa.select(*referred).limit(1)).first()
        assert found is not None, f"{table.name}: nothing in {fk.referred_table.name} to refer to"
        row.update({e.parent.name: v for e, v in zip(fk.elements, found, strict=True)})
    if "total_debit" in row:
        row["total_debit"] = row["total_credit"] = 0
    return row


def fill_empty_tables(engine: Engine) -> None:
    """Give every table that the bank's life left empty one row, so every table has something to lose."""
    meta = sa.MetaData()
    with engine.begin() as connection:
        meta.reflect(connection)
        for table in meta.sorted_tables:
            empty = connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0
            if table.name not in ("alembic_version", "journal_entries", "journal_lines") and empty:
                connection.execute(table.insert().values(_sample_row(connection, table)))


NEWER_THAN_THE_CHAIN = ("party_links", "credit_settings", "exposure_locks")


def live_a_bank(engine: Engine) -> None:
    """A bank made and run through the real use cases: tenant, staff, customers with consents, applications
    and decisions, loans with installments and journal entries, close of business, marketing."""
    uow = UnitOfWork(make_session_factory(engine), handlers=EventHandlers())
    # today's use cases also read tables the chain never had (obligor links, lending limits, exposure locks):
    # they exist while the bank lives and go before the upgrade, whose branches bring them back
    later = [Base.metadata.tables[name] for name in NEWER_THAN_THE_CHAIN]
    Base.metadata.create_all(engine, tables=later)
    bank = seed(uow, customers=40)
    with providers.start(providers.anchor_of(uow, bank.tenant_id), (0, 0)) as sandbox:
        providers.connect(uow, bank.tenant_id, sandbox.base_url)
        history = simulate(uow, bank.tenant_id, days=12, per_day=3)
    assert history.disbursed > 0, history.summary()
    seed_marketing(uow, bank.tenant_id)
    Base.metadata.drop_all(engine, tables=later)
    fill_empty_tables(engine)


def unkey_audit_chains(connection: Connection) -> None:
    """Relink every audit chain with plain SHA-256, as written before the chain was keyed."""
    log = sa.table("audit_log", *(sa.column(c) for c in ("id", "tenant_id", "seq", "prev_hash", "hash")))
    records = Base.metadata.tables["audit_log"]
    prev: dict[int, str] = {}
    count: dict[int, int] = {}
    for row in connection.execute(sa.select(records).order_by(records.c.tenant_id, records.c.seq, records.c.id)):
        count[row.tenant_id] = count.get(row.tenant_id, 0) + 1
        row = SimpleNamespace(**{**row._mapping, "seq": count[row.tenant_id]})  # numbered from 1, as written
        link = audit._legacy_digest(prev.get(row.tenant_id, audit.GENESIS), row)
        connection.execute(sa.update(log).where(log.c.id == row.id).values(
            seq=row.seq, prev_hash=prev.get(row.tenant_id, audit.GENESIS), hash=link))
        prev[row.tenant_id] = link
    for tenant_id, link in prev.items():
        connection.execute(text("UPDATE audit_heads SET hash = :h, seq = :n WHERE tenant_id = :t"),
                           {"h": link, "n": count[tenant_id], "t": tenant_id})


def assert_rows_carried(before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]) -> None:
    """Every row is still there; the audit chains were sealed with the key on the way (a keyed record more,
    a signed head), their unkeyed records untouched."""
    assert set(before.pop("audit_log")) <= set(after["audit_log"])
    assert {r[0] for r in before.pop("audit_heads")} == {r[0] for r in after["audit_heads"]}
    assert {name: after[name] for name in before} == before


def test_a_bank_lives_on_the_branch_heads(new_database: NewDatabase) -> None:
    """Today's use cases need today's schema (consents keep their evidence, offers their signed contracts):
    a bank lives on the branches' heads; the single chain's tables are carried below with a row in each."""
    engine = new_database()
    migrate.upgrade(engine)
    live_a_bank(engine)
    assert all(rows_of(engine).values())


# ------------------------------------------------------------------------------------------ tests

def test_a_bank_on_the_single_chain_upgrades_in_place_without_losing_a_row(new_database: NewDatabase) -> None:
    old, fresh = new_database(), new_database()
    legacy_upgrade(old)
    fill_empty_tables(old)  # the use cases of today write columns the chain never had (test above)
    with old.begin() as connection:  # its sample audit chain as the single chain's code wrote it: the head's
        connection.execute(text("UPDATE audit_log SET tenant_id = (SELECT min(tenant_id) FROM audit_heads)"))
        unkey_audit_chains(connection)  # bank's records, unkeyed links
    before = rows_of(old)
    # the ledger's guards refuse a lone sample entry: the journal is carried empty here, and lived above
    assert all(rows for name, rows in before.items() if not name.startswith("journal_")), before.keys()
    assert migrate.current(old) == [migrate.LEGACY_HEAD]

    old_columns = columns_of(old)
    migrate.upgrade(old)
    migrate.upgrade(fresh)

    carried = rows_of(old, old_columns)  # columns added since are new, not lost
    # core_0102 replaced login_failures (one row per failure) by login_throttles (a count per account)
    failures = before.pop("login_failures")
    assert {(f"account:{r[1]}", 1) for r in failures} <= {r[1:3] for r in carried["login_throttles"]}
    assert_rows_carried(before, carried)
    with make_session_factory(old)() as session:
        for tenant_id in audit.chain_tenants(session):
            report = audit.verify(session, tenant_id)
            assert report.ok, report.problems
    assert migrate.current(old) == migrate.current(fresh)
    # every branch the chain became is at a head of its own (later revisions on a branch move that head)
    assert {r.split("_")[0] for r in migrate.LEGACY_HEAD_EQUIVALENT} <= {r.split("_")[0] for r in migrate.current(old)}
    assert schema_of(old) == schema_of(fresh)
    after = rows_of(old)
    migrate.upgrade(old)  # nothing left to do
    assert rows_of(old) == after


def test_the_branches_build_the_schema_the_single_chain_built(new_database: NewDatabase) -> None:
    legacy, branches = new_database(), new_database()
    legacy_upgrade(legacy)
    url = branches.url.render_as_string(hide_password=False)
    with branches.begin() as connection:  # the branches' first revisions, not what came after the chain
        cfg = migrate.alembic_config(url)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, list(migrate.LEGACY_HEAD_EQUIVALENT))
    built = schema_of(branches)
    assert len(built["tables"]) == 37 and "customers" in built["tables"]
    assert any("journal" in str(entry) for entry in built["catalog"])  # the ledger's guards are there
    assert schema_of(legacy) == built


def test_the_branches_build_the_tables_the_code_declares(new_database: NewDatabase) -> None:
    engine = new_database()
    migrate.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


@pytest.mark.parametrize("revision", migrate.LEGACY_REVISIONS[:-1])
def test_a_database_at_any_revision_of_the_single_chain_ends_at_the_branch_heads(
        new_database: NewDatabase, revision: str) -> None:
    old = new_database()
    if old.dialect.name == "postgresql" and revision not in ("core_0001", "marketing_0001"):
        pytest.skip("every revision runs on SQLite; on PostgreSQL the first and the last before consents moved")
    fresh = new_database()
    legacy_upgrade(old, revision)
    fill_empty_tables(old)
    before = rows_of(old)
    assert before["tenants"]
    old_columns = columns_of(old)

    migrate.upgrade(old)
    migrate.upgrade(fresh)

    after = rows_of(old, old_columns)
    if before.pop("login_failures", []):  # carried over as counts by core_0102
        assert after["login_throttles"]
    assert_rows_carried(before, after)
    assert migrate.current(old) == migrate.current(fresh)
    assert schema_of(old) == schema_of(fresh)


def test_a_carry_over_that_fails_half_way_leaves_the_database_as_it_was(new_database: NewDatabase) -> None:
    engine = new_database()
    legacy_upgrade(engine, "marketing_0001")
    with engine.begin() as connection:  # in the way of the next revision's second table
        connection.execute(text("CREATE TABLE consents (id INTEGER PRIMARY KEY)"))
    with pytest.raises(sa.exc.DatabaseError):
        migrate.upgrade(engine)
    assert migrate.current(engine) == ["marketing_0001"]
    with engine.connect() as connection:
        assert "applications" not in inspect(connection).get_table_names()


def test_a_bank_adopts_modules_one_by_one(new_database: NewDatabase) -> None:
    engine, complete = new_database(), new_database()
    migrate.upgrade(engine, modules=["parties"])
    assert migrate.current(engine) == ["core_0107_audit_checks", "parties_0103_devices"]
    with engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) == {
            "alembic_version", "tenants", "users", "web_sessions", "credentials_versions", "login_throttles",
            "audit_log", "audit_heads", "idempotency_keys", "event_outbox", "scheduled_jobs", "job_runs",
            "message_gateways", "audit_checks",
            "customers", "consents", "otp_challenges",
            "party_links", "party_devices"}
    fill_empty_tables(engine)
    parties_rows = rows_of(engine)

    migrate.upgrade(engine, modules=["origination", "servicing"])
    assert migrate.current(engine) == ["core_0107_audit_checks", "origination_0106_data_refresh",
                                       "parties_0103_devices", "servicing_0122_behaviour_index"]
    with engine.connect() as connection:
        assert {"applications", "loans", "journal_entries"} <= set(inspect(connection).get_table_names())
        assert "datasets" not in inspect(connection).get_table_names()

    migrate.upgrade(engine)
    migrate.upgrade(complete)
    assert migrate.current(engine) == migrate.current(complete)
    assert schema_of(engine) == schema_of(complete)
    assert {name: rows for name, rows in rows_of(engine).items() if name in parties_rows} == parties_rows


def test_the_command_line_upgrades_one_module_or_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROLEND_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["db", "upgrade", "--module", "parties"])
        assert result.exit_code == 0 and "parties_0103_devices" in result.output, result.output
        result = runner.invoke(app, ["db", "upgrade", "--module", "loans"])
        assert result.exit_code == 2 and "no schema for 'loans'" in result.output
        result = runner.invoke(app, ["db", "upgrade"])
        assert result.exit_code == 0 and "servicing_0122_behaviour_index" in result.output, result.output
    finally:
        get_settings.cache_clear()


def test_a_module_branch_can_be_taken_down_and_up_again(new_database: NewDatabase) -> None:
    engine = new_database()
    migrate.upgrade(engine)
    built = schema_of(engine)
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as connection:
        cfg = migrate.alembic_config(url)
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "marketing@base")
    with engine.connect() as connection:
        names = set(inspect(connection).get_table_names())
    assert not any(name.startswith("marketing_") for name in names) and "loans" in names
    assert "marketing_0100" not in migrate.current(engine)
    migrate.upgrade(engine, modules=["marketing"])
    assert schema_of(engine) == built


def test_an_unknown_module_is_refused_before_anything_runs(new_database: NewDatabase) -> None:
    engine = new_database()
    with pytest.raises(ValidationError, match="no schema for 'loans'"):
        migrate.upgrade(engine, modules=["loans"])
    assert migrate.current(engine) == []


def test_a_version_table_mixing_both_numberings_is_refused(new_database: NewDatabase) -> None:
    engine = new_database()
    legacy_upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO alembic_version (version_num) VALUES ('servicing_0100')"))
    with pytest.raises(Conflict, match="should be alone"):
        migrate.upgrade(engine)
    assert migrate.current(engine) == sorted([migrate.LEGACY_HEAD, "servicing_0100"])


def test_each_module_is_a_branch_whose_ids_never_meet_the_single_chain() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    revisions = list(script.walk_revisions())
    assert not {r.revision for r in revisions} & set(migrate.LEGACY_REVISIONS)
    bases = {r.revision: r for r in revisions if r.down_revision is None}
    assert {label for r in bases.values() for label in r.branch_labels} == set(migrate.MODULES)
    assert set(bases) == {f"{module}_0100" for module in migrate.MODULES}
    legacy = ScriptDirectory.from_config(migrate.alembic_config("sqlite://", migrate.LEGACY_SCRIPT_LOCATION))
    assert [r.revision for r in reversed(list(legacy.walk_revisions()))] == list(migrate.LEGACY_REVISIONS)

