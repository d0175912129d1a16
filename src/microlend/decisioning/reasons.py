"""Reason codes (原因码) a policy may give: texts for the borrower and for staff in zh-CN and English,
whether a borrower may be told, and the parameters a text takes.

Each bank keeps its own catalogue (table `reason_codes`), seeded from the built-in codes below. A code a
policy uses but the bank's catalogue lacks (or gives no text) is a lint error; a declined borrower is told
only the tellable reasons (never, for example, that they are on a blacklist).

A parameter is named in a text as `{max_age}` and bound to an input field (`customer.age`): its value is the
bound of that field's cell in the decision-table row that gave the reason (`> 60` gives 60), so the text
says what the rule that fired says, whatever the policy's version.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: What a parameter the rule did not give reads as.
UNKNOWN_VALUE = "…"


@dataclass(frozen=True)
class Reason:
    code: str
    zh_cn: str  # borrower text, zh-CN
    en: str  # borrower text, English
    tellable: bool  # may be shown to the borrower in a decline or referral notice
    staff_zh: str = ""  # staff text; the borrower text when empty
    staff_en: str = ""
    params: tuple[tuple[str, str], ...] = field(default=())  # (name, input field whose rule bound gives it)

    def message(self, locale: str = "zh_CN", values: Mapping[str, Any] | None = None) -> str:
        """The borrower's text, its parameters filled in from `values`."""
        return render(self.zh_cn if locale.lower().startswith("zh") else self.en, values)

    def staff_message(self, locale: str = "zh_CN", values: Mapping[str, Any] | None = None) -> str:
        text = (self.staff_zh or self.zh_cn) if locale.lower().startswith("zh") else (self.staff_en or self.en)
        return render(text, values)

    def missing_text(self) -> list[str]:
        """Which texts are empty (a code used by a policy needs all four)."""
        texts = {"borrower_zh": self.zh_cn, "borrower_en": self.en, "staff_zh": self.staff_zh or self.zh_cn,
                 "staff_en": self.staff_en or self.en}
        return [k for k, v in texts.items() if not v.strip()]


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return UNKNOWN_VALUE


def render(text: str, values: Mapping[str, Any] | None = None) -> str:
    """A text with its `{name}` parameters filled in; a text that is not a valid template is shown as is."""
    try:
        return string.Formatter().vformat(text, (), _Values({k: format_value(v) for k, v in (values or {}).items()}))
    except (ValueError, IndexError, KeyError, AttributeError):
        return text


def format_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def placeholders(text: str) -> list[str]:
    """The parameter names a text uses; ValueError for a text that is not a valid template."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"'{{{name}}}' is not a parameter (write {{name}} with letters, digits and _)")
        names.append(name)
    return names


_REASONS = [
    Reason(
        "DATA_MISSING",
        "申请资料不完整，缺少审批所需信息",
        "Information required for the decision is missing",
        True,
    ),
    Reason(
        "AGE_BELOW_MIN",
        "申请人年龄未达到最低要求（{min_age}周岁）",
        "The applicant is younger than {min_age}",
        True,
        params=(("min_age", "customer.age"),),
    ),
    Reason(
        "AGE_ABOVE_MAX",
        "申请人年龄超过产品上限（{max_age}周岁）",
        "The applicant is older than the product allows ({max_age})",
        True,
        params=(("max_age", "customer.age"),),
    ),
    Reason(
        "AGE_AT_MATURITY_ABOVE_MAX",
        "贷款到期时申请人年龄超过产品上限",
        "The applicant would be older than the product allows when the loan matures",
        True,
    ),
    Reason(
        "OWN_ARREARS",
        "在本行有贷款当前逾期",
        "A loan with this bank is currently overdue",
        True,
    ),
    Reason(
        "OWN_NON_PERFORMING",
        "在本行近五年有不良贷款（次级、可疑或损失）",
        "A loan with this bank was non-performing (substandard, doubtful or loss) in the last five years",
        True,
    ),
    Reason(
        "OWN_WRITTEN_OFF",
        "在本行近五年有已核销贷款",
        "A loan with this bank was written off in the last five years",
        True,
    ),
    Reason(
        "EXPOSURE_CAP",
        "授信敞口已达上限，额度以剩余可用额度为限",
        "The credit already granted reaches the exposure cap; the limit is at most what remains available",
        True,
    ),
    Reason(
        "CAPACITY_LIMIT",
        "额度受还款能力限制（营业额倍数或负债收入比上限）",
        "The limit is bounded by repayment capacity (a multiple of turnover or a debt-to-income ceiling)",
        True,
    ),
    Reason(
        "NO_BUREAU_CONSENT",
        "未授权查询征信，不能自动审批",
        "Without authorisation to obtain the credit report the application cannot be approved automatically",
        True,
    ),
    Reason(
        "ID_DOCUMENT_EXPIRED",
        "身份证件已过有效期，请更新后再申请",
        "The identity document has expired; please renew it",
        True,
    ),
    Reason(
        "APPLICATION_VELOCITY",
        "近30天内申请次数过多，转人工审核",
        "Many applications in the last 30 days; a person reviews this one",
        True,
    ),
    Reason(
        "PENDING_OFFER",
        "尚有未处理的本行贷款要约，转人工审核",
        "An offer from this bank is still open; a person reviews this application",
        True,
    ),
    Reason(
        "MULTIPLE_LENDERS",
        "征信显示在多家机构有未结清借款（多头借贷）",
        "The credit report shows open credit at many lenders",
        True,
    ),
    Reason(
        "MANY_INQUIRIES",
        "近3个月征信查询次数过多",
        "Many credit report inquiries in the last 3 months",
        True,
    ),
    Reason(
        "BLACKLISTED",
        "命中黑名单",
        "The applicant is on a blacklist",
        False,
    ),
    Reason(
        "OVERDUE_ELSEWHERE",
        "在其他机构存在当前逾期",
        "The applicant is currently overdue with another lender",
        True,
    ),
    Reason(
        "PRODUCT_NOT_OFFERED",
        "申请的产品或期限不在可办理范围内",
        "The product or term applied for is not offered",
        True,
    ),
    Reason(
        "SCORE_BELOW_CUTOFF",
        "综合信用评估未达到准入标准",
        "The overall credit assessment is below our threshold",
        True,
    ),
    Reason(
        "AMOUNT_ABOVE_AUTHORITY",
        "申请金额超过自动审批权限，转人工审批",
        "The amount is above the automatic approval authority",
        False,
    ),
    Reason(
        "THIN_FILE",
        "征信记录不足，转人工审查",
        "Too little credit history for an automatic decision",
        False,
    ),
    Reason(
        "CONFLICTING_DATA",
        "申请信息与其他数据不一致，转人工核实",
        "Application data conflicts with other data",
        False,
    ),
    Reason(
        "DATA_INCONSISTENT",
        "申请信息与核验数据不一致",
        "The application does not agree with the verified data",
        True,
    ),
    Reason(
        "SCORE_GREY_BAND",
        "信用评分处于人工复核区间",
        "The score is in the band reviewed by a person",
        False,
    ),
    Reason(
        "ENFORCEMENT_DISHONEST",
        "被列入失信被执行人名单",
        "The applicant is on the list of dishonest judgment debtors",
        True,
    ),
    Reason(
        "ENFORCEMENT_CASES",
        "存在未结的法院强制执行案件",
        "A court enforcement case against the applicant is open",
        True,
    ),
    Reason(
        "BUSINESS_NOT_ACTIVE",
        "工商登记状态非存续或在业（或查无登记）",
        "The business registry shows the business not in operation (or has no record of it)",
        True,
    ),
    Reason(
        "BUREAU_BAD_DEBT",
        "征信报告显示有呆账",
        "The credit report shows a bad debt",
        True,
    ),
    Reason(
        "SALES_DECLINING",
        "近12个月申报销售额同比下降超过30%",
        "Declared sales over the last 12 months fell by more than 30 % on the year before",
        True,
    ),
    Reason(
        "INVOICES_WITHOUT_SALES",
        "开票金额与纳税申报销售额严重不符",
        "Invoiced sales far exceed the sales declared for tax",
        False,
    ),
    Reason(
        "NO_TAX_RECORD",
        "未查询到纳税申报记录，无法办理税贷",
        "No tax declarations were found, which this tax-data loan requires",
        True,
    ),
    Reason(
        "NO_MERCHANT_FLOWS",
        "未查询到收单流水，无法办理流水贷",
        "No merchant payment flows were found, which this loan requires",
        True,
    ),
    Reason(
        "NO_INVOICES",
        "未查询到开票记录，无法办理发票贷",
        "No e-invoices were found, which this invoice loan requires",
        True,
    ),
    Reason(
        "CONSENT_MISSING",
        "未授权查询该产品所需的经营数据",
        "The business data this product requires was not authorised to be obtained",
        True,
    ),
    Reason(
        "DATA_SOURCE_UNAVAILABLE",
        "所需外部数据暂时无法获取，转人工审核",
        "Data the product requires could not be obtained; a person reviews the application",
        True,
    ),
    Reason(
        "ENGINE_ERROR",
        "决策引擎无法完成评估，转人工处理",
        "The policy could not be evaluated; a person will decide",
        False,
    ),
    Reason(
        "FREEZE_BLACKLISTED",
        "额度冻结：命中黑名单",
        "Line frozen: on a blacklist",
        False,
    ),
    Reason(
        "FREEZE_OVERDUE_ELSEWHERE",
        "额度冻结：在其他机构存在逾期",
        "Line frozen: overdue with another lender",
        True,
    ),
    Reason(
        "FREEZE_OVERDUE",
        "额度冻结：本行贷款逾期超过30天",
        "Line frozen: more than 30 days past due",
        True,
    ),
    Reason(
        "DECREASE_LATE_PAYMENT",
        "额度下调：近6个月有逾期还款",
        "Limit lowered: late payments in the last 6 months",
        True,
    ),
    Reason(
        "DECREASE_TURNOVER_DROP",
        "额度下调：经营收入明显下降",
        "Limit lowered: turnover fell sharply",
        True,
    ),
    Reason(
        "DECREASE_LOW_SCORE",
        "额度下调：信用评分下降",
        "Limit lowered: the credit score fell",
        True,
    ),
    Reason(
        "EW_DPD_TRANSITION",
        "预警：逾期天数迁移",
        "Early warning: days past due moved up a bucket",
        False,
    ),
    Reason(
        "EW_BEHAVIOUR_SCORE",
        "预警：行为评分偏低或明显下降",
        "Early warning: the behaviour score is low or fell sharply",
        False,
    ),
    Reason(
        "EW_TAX_SALES_DROP",
        "预警：纳税申报销售额明显下降",
        "Early warning: declared tax sales fell sharply",
        False,
    ),
    Reason(
        "EW_MERCHANT_FLOW_DROP",
        "预警：收单流水明显下降",
        "Early warning: merchant turnover fell sharply",
        False,
    ),
    Reason(
        "EW_ENFORCEMENT_CASE",
        "预警：新增被执行案件",
        "Early warning: an enforcement case against the borrower",
        False,
    ),
    Reason(
        "EW_BUREAU_OVERDUE",
        "预警：他行贷款逾期",
        "Early warning: overdue at another lender",
        False,
    ),
    Reason(
        "EW_LIMIT_EXHAUSTED",
        "预警：额度连续多月用满",
        "Early warning: the limit drawn to the full for months",
        False,
    ),
    Reason(
        "INCREASE_GOOD_BEHAVIOUR",
        "额度提升：按时还款记录良好",
        "Limit raised: a good repayment record",
        True,
    ),
    Reason(
        "INCREASE_ABOVE_AUTHORITY",
        "提额超过自动审批权限，转人工审批",
        "The increase is above the automatic approval authority",
        False,
    ),
]

#: The built-in codes: what a new bank's catalogue is seeded with.
CATALOGUE: dict[str, Reason] = {r.code: r for r in _REASONS}

Catalogue = Mapping[str, Reason]
#: Parameter values by reason code, as the rules that fired give them.
ReasonValues = Mapping[str, Mapping[str, Any]]


def is_reason_field(field: object) -> bool:
    """A decision-table output that gives a reason code: `reason`, or `<something>.reason` (a sub-decision
    writing under its own path)."""
    return isinstance(field, str) and (field == "reason" or field.endswith(".reason"))


def reason(code: str, catalogue: Catalogue | None = None) -> Reason:
    """The catalogue entry, or a non-tellable placeholder for an unknown code (never fails a decision)."""
    return (CATALOGUE if catalogue is None else catalogue).get(code) or Reason(code, code, code, False)


def tellable_reasons(codes: list[str] | tuple[str, ...], limit: int = 3, locale: str = "zh_CN",
                     catalogue: Catalogue | None = None, values: ReasonValues | None = None) -> list[str]:
    """The top reasons a declined borrower may be told, in the policy's order, as messages with their
    parameters filled in from `values` (by code)."""
    entries = [reason(c, catalogue) for c in codes]
    return [r.message(locale, (values or {}).get(r.code)) for r in entries if r.tellable][:limit]
