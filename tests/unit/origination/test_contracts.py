"""The loan contract as a document: equal terms give an equal document and hash, in zh-CN and en, with the
rate, APR, penalty rate, fee and schedule stated, and a print stylesheet."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from microlend.origination.contracts import ContractTerms, Party, contract_number, printable, render_contract
from microlend.servicing.schedules import RepaymentMethod, build_schedule


def _terms() -> ContractTerms:
    schedule = build_schedule(RepaymentMethod.EQUAL_INSTALLMENT, Decimal("30000"), Decimal("0.085"), 12,
                              date(2026, 3, 2))
    return ContractTerms(
        number=contract_number(1, 42), bank="微贷通示范农商银行", application_id=42,
        borrower=Party("周小店", "person", "1101**********1234", "138****5678", "城关镇8号"),
        product_name="Equal installment loan", product_name_zh="等额本息贷款", method="equal-installment",
        currency="CNY", amount=Decimal("30000"), term_months=12, annual_rate=Decimal("0.085"),
        apr=Decimal("0.0884"), penalty_rate=Decimal("0.1275"), upfront_fee=Decimal("0"), fee_mode="deduct",
        grace_days=3, early_repayment_allowed=True, purpose="进货", as_of=date(2026, 3, 2), schedule=schedule)


def test_equal_terms_render_the_same_document_and_hash_and_any_change_shows() -> None:
    a, b = render_contract(_terms(), "zh_CN"), render_contract(_terms(), "zh_CN")
    assert a.html == b.html and a.sha256 == b.sha256 and len(a.sha256) == 64
    assert render_contract(replace(_terms(), amount=Decimal("30001")), "zh_CN").sha256 != a.sha256
    assert render_contract(_terms(), "en").sha256 != a.sha256


def test_the_contract_states_the_rates_fee_schedule_and_parties_in_each_language() -> None:
    zh = render_contract(_terms(), "zh_CN").html
    assert "JK-001-00000042" in zh and "8.50%" in zh and "8.84%" in zh and "12.75%" in zh and "逾期罚息利率" in zh
    assert zh.count("<tr><td>") == 12 and "1101**********1234" in zh and "@media print" in zh
    en = render_contract(_terms(), "en").html
    assert "Penalty rate on overdue amounts" in en and "Loan Contract" in en and "equal instalments" in en


def test_the_signature_record_is_added_after_the_signed_document() -> None:
    doc = render_contract(_terms(), "en")
    record = type("Signed", (), {"status": "draft", "sha256": doc.sha256})()
    page = printable(doc.html, "en", v=record, borrower="Zhou")
    assert page.startswith(doc.html.split("</body>")[0]) and "DRAFT" in page and doc.sha256 in page
