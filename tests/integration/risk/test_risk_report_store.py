"""The validation report on SQLite and PostgreSQL: built once at training and stored with the model, served as
stored after validation (checked against its hash, never rebuilt), its tables exported to Excel."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from microlend.core.errors import Conflict
from microlend.risk import service
from microlend.risk.datasets import german_credit
from microlend.risk.development import develop_model
from microlend.risk.registry import mark_validated, register_model, resolve_store_path

from .conftest import Bank


def test_the_stored_report_is_served_as_stored_and_a_changed_one_is_refused(bank: Bank, tmp_path: Path) -> None:
    out = tmp_path / "model"
    develop_model(
        german_credit().frame,
        target="creditability",
        bad="bad",
        kind="gbdt",
        out_dir=out,
        created_at=datetime(2026, 2, 1, tzinfo=UTC),
        benchmark=False,
        seed=3,
        name="gbdt",
    )
    v = mark_validated(
        bank.uow, bank.people["sun"], register_model(bank.uow, bank.people["wang"], out, store_root=bank.store).id
    )
    stored = resolve_store_path(v.store_path) / "report.html"
    html = service.report_html(bank.uow, bank.people["sun"], v.id)
    assert html == stored.read_text(encoding="utf-8") and "置信区间" in html
    book = load_workbook(io.BytesIO(service.report_workbook(bank.uow, bank.people["sun"], v.id)))
    assert {"contributions", "partial dependence", "intervals"} <= set(book.sheetnames)
    stored.write_text(html.replace("Confidence intervals", "Confidence"), encoding="utf-8")
    with pytest.raises(Conflict, match="does not match its hash"):
        service.report_html(bank.uow, bank.people["sun"], v.id)
