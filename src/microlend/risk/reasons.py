"""Reason codes (拒绝原因 / 评分原因): the features that lowered a score, told in the applicant's language."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

LOCALES = ("en", "zh-CN")

#: Per-feature messages; a feature not listed gets the generic message below.
MESSAGES: dict[str, dict[str, str]] = {
    # German credit
    "status_of_existing_checking_account": {
        "en": "the checking account balance is low or negative", "zh-CN": "活期账户余额偏低或为负"},
    "duration_in_month": {"en": "the requested term is long", "zh-CN": "申请期限偏长"},
    "credit_history": {"en": "the credit history shows problems", "zh-CN": "信用记录存在问题"},
    "purpose": {"en": "the loan purpose carries higher risk", "zh-CN": "贷款用途风险较高"},
    "credit_amount": {"en": "the requested amount is high for the profile", "zh-CN": "申请金额相对资质偏高"},
    "savings_account_and_bonds": {"en": "savings are low", "zh-CN": "储蓄偏少"},
    "present_employment_since": {"en": "employment is recent", "zh-CN": "现职工作年限较短"},
    "installment_rate_in_percentage_of_disposable_income": {
        "en": "repayments take a large share of income", "zh-CN": "月供占可支配收入比例偏高"},
    "personal_status_and_sex": {
        "en": "the personal situation carries higher risk", "zh-CN": "个人状况风险较高"},
    "other_debtors_or_guarantors": {"en": "there is no guarantor", "zh-CN": "缺少担保人"},
    "present_residence_since": {"en": "time at the current address is short", "zh-CN": "现居住时间较短"},
    "property": {"en": "there is little property", "zh-CN": "名下资产较少"},
    "age_in_years": {"en": "the applicant's age band carries higher risk", "zh-CN": "年龄段风险较高"},
    "other_installment_plans": {"en": "there are other installment plans", "zh-CN": "存在其他分期还款"},
    "housing": {"en": "the housing situation carries higher risk", "zh-CN": "住房状况风险较高"},
    "number_of_existing_credits_at_this_bank": {
        "en": "the number of existing credits carries higher risk", "zh-CN": "本行现有贷款笔数风险较高"},
    "job": {"en": "the occupation carries higher risk", "zh-CN": "职业类别风险较高"},
    "number_of_people_being_liable_to_provide_maintenance_for": {
        "en": "there are many dependants", "zh-CN": "需供养人数较多"},
    "telephone": {"en": "no registered telephone", "zh-CN": "无登记电话"},
    "foreign_worker": {"en": "the residence status carries higher risk", "zh-CN": "居留状况风险较高"},
    # Lending Club
    "funded_amnt": {"en": "the requested amount is high for the profile", "zh-CN": "申请金额相对资质偏高"},
    "term": {"en": "the requested term is long", "zh-CN": "申请期限偏长"},
    "int_rate": {"en": "the priced risk (interest rate) is high", "zh-CN": "定价利率偏高，风险较高"},
    "sub_grade": {"en": "the credit grade is low", "zh-CN": "信用等级偏低"},
    "addr_state": {"en": "the region carries higher risk", "zh-CN": "所在地区风险较高"},
    "verification_status": {"en": "income is not verified", "zh-CN": "收入未经核实"},
    "annual_inc": {"en": "income is low", "zh-CN": "收入偏低"},
    "emp_length": {"en": "employment is recent", "zh-CN": "工作年限较短"},
    "delinq_2yrs": {"en": "there were delinquencies in the last two years", "zh-CN": "近两年有逾期记录"},
    "inq_last_6mths": {"en": "many credit enquiries in the last six months", "zh-CN": "近六个月征信查询较多"},
    "revol_util": {"en": "revolving credit is highly used", "zh-CN": "循环额度使用率偏高"},
    "acc_now_delinq": {"en": "an account is delinquent now", "zh-CN": "当前有账户逾期"},
    "open_il_6m": {"en": "many installment loans opened recently", "zh-CN": "近期新开分期贷款较多"},
    "open_il_12m": {
        "en": "many installment loans opened in the last year", "zh-CN": "近一年新开分期贷款较多"},
    "open_il_24m": {
        "en": "many installment loans opened in the last two years", "zh-CN": "近两年新开分期贷款较多"},
    "total_bal_il": {"en": "installment loan balances are high", "zh-CN": "分期贷款余额偏高"},
    "all_util": {"en": "overall credit use is high", "zh-CN": "整体授信使用率偏高"},
    "inq_fi": {"en": "many enquiries for personal finance", "zh-CN": "个人金融类查询较多"},
    "inq_last_12m": {"en": "many credit enquiries in the last year", "zh-CN": "近一年征信查询较多"},
    "delinq_amnt": {"en": "there is a delinquent amount", "zh-CN": "存在逾期金额"},
    "num_il_tl": {"en": "many installment accounts", "zh-CN": "分期账户数较多"},
    "total_il_high_credit_limit": {"en": "installment credit limits are high", "zh-CN": "分期授信额度偏高"},
    # joint modelling with a data partner: its whole contribution, and a joint model scored without it
    "partner_data": {"en": "the data partner's information about the applicant", "zh-CN": "合作方数据显示风险较高"},
    "PARTNER_UNAVAILABLE": {"en": "the data partner could not be asked; the bank's own model decided",
                            "zh-CN": "合作方数据暂不可用，由本行自有模型评分"},
    "PARTNER_NO_CONSENT": {"en": "the applicant has not authorised scoring with the data partner; the bank's own "
                                 "model decided", "zh-CN": "申请人未授权联合建模评分，由本行自有模型评分"},
    # standard micro-lending features
    "days_past_due_max": {"en": "past repayments were late", "zh-CN": "历史还款有逾期"},
    "credit_line_utilisation": {"en": "credit lines are highly used", "zh-CN": "授信额度使用率偏高"},
    "tenure_months": {"en": "the relationship with the bank is short", "zh-CN": "与本行合作时间较短"},
    # reason codes of the micro-business expert scorecard (stable names; a code covers a missing value too)
    "TAX_SALES_LOW": {"en": "declared sales are low or not available", "zh-CN": "申报销售额偏低或无数据"},
    "SALES_DECLINING": {"en": "sales are falling year on year, or there is no prior year to compare",
                        "zh-CN": "销售额同比下降，或无上年数据可比"},
    "TAX_HISTORY_SHORT": {"en": "few months of tax declarations", "zh-CN": "纳税申报月数较少"},
    "TAX_GRADE_LOW": {"en": "the tax credit grade is low or not available", "zh-CN": "纳税信用等级偏低或无评级"},
    "INVOICE_REVERSALS_HIGH": {"en": "many invoices were reversed (red invoices)", "zh-CN": "红冲发票比例偏高"},
    "SALES_INVOICE_MISMATCH": {"en": "invoiced amounts and declared sales do not match",
                               "zh-CN": "开票金额与申报销售额不匹配"},
    "CUSTOMER_CONCENTRATION": {"en": "sales depend on very few customers", "zh-CN": "销售过于集中于少数客户"},
    "MERCHANT_ACTIVITY_LOW": {"en": "few days with card or QR payments", "zh-CN": "收单交易天数较少"},
    "BUSINESS_YOUNG": {"en": "the business was registered recently", "zh-CN": "企业成立时间较短"},
    "LEGAL_REP_CHANGED": {"en": "the legal representative changed recently", "zh-CN": "近期变更过法定代表人"},
    "ENFORCEMENT_CASES": {"en": "there are open court enforcement cases", "zh-CN": "存在未结执行案件"},
    "DISHONEST_DEBTOR": {"en": "listed as a dishonest debtor", "zh-CN": "被列为失信被执行人"},
    "OVERDUE_HISTORY": {"en": "the credit report shows overdue payments", "zh-CN": "征信报告有逾期记录"},
    "OVERDUE_SEVERE": {"en": "the credit report shows seriously overdue payments", "zh-CN": "征信报告有严重逾期"},
    "MANY_LENDERS": {"en": "borrowing from many lenders at once", "zh-CN": "多头借贷"},
    "MANY_INQUIRIES": {"en": "many recent credit inquiries", "zh-CN": "近期征信查询次数较多"},
    "CREDIT_HISTORY_SHORT": {"en": "the credit history is short or not available", "zh-CN": "信用记录较短或无记录"},
    "BOUNCED_PAYMENTS": {"en": "payments bounced for lack of funds, or no account history at this bank",
                         "zh-CN": "有因余额不足被退回的支付，或无本行账户记录"},
    "YEARS_IN_BUSINESS_SHORT": {"en": "few years in business", "zh-CN": "经营年限较短"},
}

GENERIC = {"en": "this characteristic lowered the score", "zh-CN": "该项特征拉低了评分"}
_SEPARATOR = {"en": ": ", "zh-CN": "："}


def normalise_locale(locale: str) -> str:
    """'zh_CN', 'zh-cn' and 'zh' all mean zh-CN; anything else in English."""
    return "zh-CN" if locale.lower().replace("_", "-").startswith("zh") else "en"


def reason_message(feature: str, locale: str = "en",
                   wording: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """'credit_amount: the requested amount is high for the profile' (or its zh-CN text); `wording` is the
    dataset contract's text per feature and locale, which comes before the built-in messages."""
    loc = normalise_locale(locale)
    declared = (wording or {}).get(feature, {})
    text = declared.get(loc) or MESSAGES.get(feature, GENERIC)[loc]
    return f"{feature}{_SEPARATOR[loc]}{text}"


def missing_wording(features: Sequence[str], wording: Mapping[str, Mapping[str, str]] | None = None) -> list[str]:
    """Features with no reason text in every locale, neither in the dataset contract's wording nor built in:
    a model using one would tell an applicant only "this characteristic lowered the score"."""
    wording = wording or {}
    return [f for f in features
            if f not in MESSAGES and not all(wording.get(f, {}).get(loc) for loc in LOCALES)]


class Reason(NamedTuple):
    """One reason for a score: the feature and how much it cost (points lost, or added log-odds of bad), with
    the model's wording from its dataset contract when it has one."""

    feature: str
    impact: float
    wording: Mapping[str, Mapping[str, str]] | None = None

    def message(self, locale: str = "en") -> str:
        return reason_message(self.feature, locale, self.wording)


def worded(reasons: Sequence[Reason], parameters: Mapping[str, object] | None) -> list[Reason]:
    """The reasons with the wording a model version keeps in its parameters (from its dataset contract)."""
    wording = (parameters or {}).get("reason_wording")
    if not isinstance(wording, Mapping) or not wording:
        return list(reasons)
    return [r._replace(wording=wording) for r in reasons]


def top_reason_codes(
    impact: NDArray[np.float64], features: Sequence[str], top_n: int = 3
) -> NDArray[np.object_]:
    """Per row, the features with the largest positive impact joined as "a;b;c" (vectorised); a feature whose
    impact is zero or negative (it did not lower the score) is never named, so a row may get fewer.

    Rows share few distinct combinations, so each combination's text is built once."""
    n, k = impact.shape
    if n == 0 or top_n <= 0:
        return np.full(n, "", dtype=object)
    top_n = min(top_n, k)
    # a running top_n over the columns instead of sorting every row: a value enters only when strictly larger,
    # so of equal impacts the earlier feature comes first (as a stable sort would have it); NaN never enters
    values = [np.zeros(n, dtype=np.float64) for _ in range(top_n)]
    codes = [np.full(n, k, dtype=np.int64) for _ in range(top_n)]
    for j in range(k):
        column = np.asarray(impact[:, j], dtype=np.float64)
        rows = np.flatnonzero(column > values[-1])  # only rows where this feature enters their top_n
        if not rows.size:
            continue
        value, code = column[rows], np.full(rows.size, j, dtype=np.int64)
        for i in range(top_n):
            held, held_code = values[i][rows], codes[i][rows]
            better = value > held
            values[i][rows], value = np.where(better, value, held), np.where(better, held, value)
            codes[i][rows], code = np.where(better, code, held_code), np.where(better, held_code, code)
    key = np.zeros(n, dtype=np.int64)
    for i in range(top_n):
        key = key * (k + 1) + codes[i]
    unique, inverse = np.unique(key, return_inverse=True)
    names = [*features, ""]
    texts = np.empty(len(unique), dtype=object)
    for u, combo in enumerate(unique.tolist()):
        parts: list[str] = []
        for _ in range(top_n):
            combo, code = divmod(combo, k + 1)
            parts.append(names[code])
        texts[u] = ";".join(p for p in reversed(parts) if p)
    return np.asarray(texts[inverse.reshape(-1)], dtype=object)


def messages_for_codes(codes: str, locale: str = "en") -> str:
    """"a;b" -> "a: ... | b: ..." in the given locale."""
    return " | ".join(reason_message(c, locale) for c in codes.split(";") if c)
