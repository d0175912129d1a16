"""The expert scorecard for micro-businesses (小微企业专家评分卡) a bank starts with before it has defaults of its
own: characteristics over the business features of tax, e-invoice, merchant, registry, enforcement, bureau and
own-account data and the application form, with points set by credit judgement.

How the points were set: a clean, growing business declaring for two years with no bureau or enforcement
issue scores about 608 (grade C of the default policy); an open dishonest-debtor case (500) or sales falling
more than 30 % a year (518) each bring that business below the cut-off of 520; a thin file (under 12 months
declared, so no year-on-year growth) lands about 20 points below the cut-off (501): unknown growth is scored
like a fall, so a thin file can never score above the same business declining; a case with no data at all
scores the table's minimum. A Missing value or one the table does not know never scores better than the worst bin of its
characteristic: no data is never taken as good news.

Rebuild the shipped files with `python -m microlend.risk.starter expert` after changing this table."""

from __future__ import annotations

import math

from microlend.risk.expert import ExpertCharacteristic, ExpertScorecardModel, categorical, numeric
from microlend.risk.scorecard import PointsScaling

INF = math.inf
NAME = "starter-expert-micro-business"
#: points to odds: the same PDO convention as the shipped German scorecard, so the default policy's cut-off
#: (520) and grade table apply; 600 points at good:bad odds 50:1, 20 points to double the odds
SCALING = PointsScaling(base_points=600.0, base_odds=50.0, pdo=20.0)
BASE_POINTS = 466.0

PD_ASSUMPTION = {
    "assumption": "PD = 1 / (1 + odds), odds = base_odds * 2 ** ((score - base_points) / pdo): the points were "
    "set by credit judgement on this scale, not fitted to defaults; recalibrate once the bank has "
    "its own default history",
    "base_points": SCALING.base_points,
    "base_odds": SCALING.base_odds,
    "pdo": SCALING.pdo,
    "note": {
        "en": "Assumed, not measured: the score-to-PD mapping of this expert scorecard is a judgement (600 points "
        "= odds 50:1, 20 points double the odds). Treat the PD as a ranking aid until the bank's own "
        "defaults calibrate it.",
        "zh-CN": "假设而非实测：本专家评分卡的分数与违约概率（PD）对应关系为专家判断（600分对应好坏比50:1，每20分好坏比"
        "翻倍）。在本行积累自有违约数据并完成校准之前，PD 仅作排序参考。",
    },
}

DESCRIPTION = {
    "en": "Expert scorecard for micro-businesses: tax, e-invoice, merchant, registry, enforcement, bureau, "
    "own-account and application characteristics with points set by credit judgement (no development "
    "sample).",
    "zh-CN": "小微企业专家评分卡：基于税务、电子发票、收单流水、工商、执行、征信、本行账户及申请信息的特征，分值由信贷"
    "专家设定（无建模样本）。",
}


def characteristics() -> list[ExpertCharacteristic]:
    """The points table, one characteristic at a time with its rationale."""
    return [
        # --- tax declarations (税务申报) ---
        numeric(
            "tax_sales_12m",
            [100_000, 300_000, 1_000_000, 5_000_000],
            ["< 100k", "100k – 300k", "300k – 1m", "1m – 5m", ">= 5m"],
            [-20, 0, 8, 16, 20],
            neutral=8,
            reason_code="TAX_SALES_LOW",
            source="tax",
            unit="CNY",
            valid=(0, INF),
            en="Declared sales of the last 12 months: the size of the business the tax office sees. Very small "
            "declared sales leave little to repay from and are often under-declared.",
            zh="近12个月申报销售额：税务口径的经营规模。申报额过小则还款来源有限，且常有少报。",
        ),
        numeric(
            "tax_sales_growth_yoy",
            [-0.30, -0.10, 0.05, 0.50, 2.00],
            ["fall > 30 %", "fall 10 – 30 %", "-10 % – +5 %", "+5 % – +50 %", "+50 % – +200 %", "> +200 %"],
            [-65, -15, 10, 25, 15, -5],
            neutral=10,
            reason_code="SALES_DECLINING",
            source="tax",
            valid=(-1, INF),
            en="Sales of the last 12 months against the 12 before. A fall of more than 30 % is the strongest "
            "early sign of a failing micro-business; very fast growth strains working capital or is not "
            "real. Unknown growth (no prior-year declarations) is scored like a fall.",
            zh="近12个月销售额同比变化。同比下降超过30%是小微企业经营恶化最强的早期信号；增长过快则占用营运资金或真实性存疑。"
            "无上年申报无法计算增长的，按下降处理。",
        ),
        numeric(
            "tax_months_declared_24m",
            [6, 12, 18, 24],
            ["< 6", "6 – 11", "12 – 17", "18 – 23", "24"],
            [-10, 2, 3, 4, 5],
            neutral=2,
            reason_code="TAX_HISTORY_SHORT",
            source="tax",
            unit="months",
            valid=(0, 24),
            en="Months with a tax declaration in the last 24: a regular filer is an operating business with "
            "a record; gaps mean dormancy or evasion.",
            zh="近24个月有申报的月数：连续申报说明持续经营且有记录；断档意味着停业或逃避申报。",
        ),
        categorical(
            "tax_grade",
            [(["A"], 12), (["B"], 8), (["M"], 5), (["C"], -25), (["D"], -60)],
            neutral=5,
            reason_code="TAX_GRADE_LOW",
            source="tax",
            en="Tax credit grade (纳税信用等级): A and B are compliant taxpayers, M is new or unrated, C has "
            "serious lapses and D is a dishonest taxpayer.",
            zh="纳税信用等级：A、B 为守信纳税人，M 为新设或未评级，C 为有严重失信行为，D 为失信纳税人。",
        ),
        # --- e-invoices (电子发票) ---
        numeric(
            "inv_red_ratio_12m",
            [0.02, 0.05, 0.10, 0.20],
            ["< 2 %", "2 – 5 %", "5 – 10 %", "10 – 20 %", ">= 20 %"],
            [6, 3, 0, -12, -25],
            neutral=3,
            reason_code="INVOICE_REVERSALS_HIGH",
            source="einvoice",
            valid=(0, INF),
            en="Red (credit-note) invoices as a share of invoiced amount: many reversals mean returns, disputes "
            "or invoices issued and withdrawn to inflate turnover.",
            zh="红冲发票金额占开票金额比例：红冲多说明退货、纠纷或虚开后冲回以虚增流水。",
        ),
        numeric(
            "inv_sales_gap",
            [-0.50, -0.10, 0.10, 0.30, 0.60],
            ["< -50 %", "-50 – -10 %", "-10 – +10 %", "+10 – +30 %", "+30 – +60 %", ">= +60 %"],
            [0, 4, 8, 0, -20, -50],
            neutral=4,
            reason_code="SALES_INVOICE_MISMATCH",
            source="einvoice",
            valid=(-1, 1),
            en="1 - declared sales / invoiced amount: invoices far above declared sales is the mark of a shell "
            "that issues invoices but declares nothing; declared sales above invoices is usual for cash "
            "retail and only slightly less good than a match.",
            zh="1 - 申报销售额/开票金额：开票远高于申报是“只开票不申报”空壳企业的特征；"
            "申报高于开票在现金零售中常见，仅略逊于两者一致。",
        ),
        numeric(
            "inv_top_customer_share",
            [0.30, 0.50, 0.80],
            ["< 30 %", "30 – 50 %", "50 – 80 %", ">= 80 %"],
            [6, 3, -5, -12],
            neutral=3,
            reason_code="CUSTOMER_CONCENTRATION",
            source="einvoice",
            valid=(0, 1),
            en="The largest customer's share of invoiced amount: one customer taking most of the sales means "
            "losing it stops the business.",
            zh="第一大客户开票金额占比：销售集中于单一客户，失去该客户即难以为继。",
        ),
        # --- merchant acquiring (收单流水) ---
        numeric(
            "mer_active_days_3m",
            [10, 30, 60, 80],
            ["< 10", "10 – 29", "30 – 59", "60 – 79", ">= 80"],
            [-10, -3, 0, 4, 8],
            neutral=0,
            reason_code="MERCHANT_ACTIVITY_LOW",
            source="merchant",
            unit="days",
            valid=(0, 92),
            absent_is_neutral=True,
            en="Days with card or QR payments in the last 90: a shop trading most days is open and has steady "
            "cash flow. A business with no acquiring account (a workshop, a wholesaler, a farm) is scored at the "
            "neutral point: taking no card payments is not a risk in itself.",
            zh="近90天有收单交易的天数：多数日子有交易说明正常营业、现金流稳定。无收单账户的经营者（作坊、批发、"
            "种养殖）按中性分计：不收银行卡本身不是风险。",
        ),
        # --- business registry (工商登记) ---
        numeric(
            "business_age_months",
            [12, 24, 36, 60],
            ["< 12", "12 – 23", "24 – 35", "36 – 59", ">= 60"],
            [-2, 0, 2, 4, 5],
            neutral=0,
            reason_code="BUSINESS_YOUNG",
            source="registry",
            unit="months",
            valid=(0, 1200),
            en="Months since registration: most micro-businesses that fail do so in their first years.",
            zh="注册至今月数：小微企业的失败多发生在成立后的头几年。",
        ),
        numeric(
            "reg_legal_rep_changes_12m",
            [1, 2],
            ["0", "1", ">= 2"],
            [4, -10, -25],
            neutral=4,
            reason_code="LEGAL_REP_CHANGED",
            source="registry",
            valid=(0, INF),
            en="Changes of legal representative in the last 12 months: a new name at the top shortly before "
            "borrowing is a known fraud and risk-shifting pattern.",
            zh="近12个月法定代表人变更次数：借款前不久更换法人是常见的欺诈与风险转移手法。",
        ),
        # --- court enforcement (法院执行) ---
        numeric(
            "enf_cases_open",
            [1, 2],
            ["0", "1", ">= 2"],
            [8, -25, -45],
            neutral=8,
            reason_code="ENFORCEMENT_CASES",
            source="enforcement",
            valid=(0, INF),
            en="Open court enforcement cases: a creditor already had to go to court to be paid.",
            zh="未结执行案件数：已有债权人需通过法院强制执行才能收回款项。",
        ),
        numeric(
            "enf_dishonest",
            [1],
            ["no", "yes"],
            [5, -70],
            neutral=5,
            reason_code="DISHONEST_DEBTOR",
            source="enforcement",
            valid=(0, 1),
            en="Listed as a dishonest debtor (失信被执行人): able to pay a court judgment and did not.",
            zh="被列为失信被执行人：有履行能力而拒不履行生效判决。",
        ),
        # --- credit bureau (征信) ---
        numeric(
            "bur_overdue_months_24m",
            [1, 3, 6],
            ["0", "1 – 2", "3 – 5", ">= 6"],
            [10, 0, -20, -40],
            neutral=10,
            reason_code="OVERDUE_HISTORY",
            source="bureau",
            unit="months",
            valid=(0, 24),
            en="Months with an overdue payment in the last 24: past repayment behaviour is the best single "
            "predictor of future repayment.",
            zh="近24个月出现逾期的月数：历史还款表现是预测未来还款最有力的单一指标。",
        ),
        numeric(
            "bur_max_overdue_level_24m",
            [1, 2, 3, 5],
            ["0", "1", "2", "3 – 4", ">= 5"],
            [6, 0, -20, -40, -60],
            neutral=6,
            reason_code="OVERDUE_SEVERE",
            source="bureau",
            valid=(0, 7),
            en="Worst overdue level in the last 24 months (1 = up to 30 days ... 7 = over 180 days): one "
            "short slip happens, a level of 3 or more is a default.",
            zh="近24个月最高逾期级别（1=30天以内……7=180天以上）：偶发短期逾期可理解，3级及以上即属违约。",
        ),
        numeric(
            "bur_lenders_open",
            [1, 3, 4, 6],
            ["0", "1 – 2", "3", "4 – 5", ">= 6"],
            [0, 6, 0, -15, -30],
            neutral=0,
            reason_code="MANY_LENDERS",
            source="bureau",
            valid=(0, INF),
            en="Lenders with an open account: one or two show a lending relationship; many lenders at once "
            "(多头借贷) is over-borrowing.",
            zh="有未结清账户的机构数：一两家说明有正常借贷关系；同时向多家借款（多头借贷）即过度负债。",
        ),
        numeric(
            "bur_inquiries_3m",
            [2, 4, 7],
            ["0 – 1", "2 – 3", "4 – 6", ">= 7"],
            [6, 0, -15, -30],
            neutral=0,
            reason_code="MANY_INQUIRIES",
            source="bureau",
            valid=(0, INF),
            en="Credit inquiries by lenders in the last 3 months: many applications at once signal a cash "
            "shortage or refusals elsewhere.",
            zh="近3个月贷款审批查询次数：短期内频繁申请说明资金紧张或已被他行拒绝。",
        ),
        numeric(
            "bur_history_months",
            [12, 24, 60],
            ["< 12", "12 – 23", "24 – 59", ">= 60"],
            [-5, 0, 4, 6],
            neutral=0,
            reason_code="CREDIT_HISTORY_SHORT",
            source="bureau",
            unit="months",
            valid=(0, 1200),
            en="Months since the first credit account: a longer record tells more about repayment.",
            zh="首笔信贷账户至今月数：信用记录越长，越能反映还款习惯。",
        ),
        # --- the bank's own accounts (本行账户) ---
        numeric(
            "own_bounced_6m",
            [1, 3],
            ["0", "1 – 2", ">= 3"],
            [4, -6, -12],
            neutral=0,
            reason_code="BOUNCED_PAYMENTS",
            source="accounts",
            valid=(0, INF),
            absent_is_neutral=True,
            en="Payments returned for lack of funds in the bank's own accounts in the last 6 months. An applicant "
            "without an account here has no such record and is scored at the neutral point, so a newcomer is "
            "neither rewarded nor told of bounced payments it never made.",
            zh="近6个月在本行账户因余额不足被退回的支付笔数。非本行客户无此记录，按中性分计：新客户既不加分，"
            "也不会被告知并不存在的退票。",
        ),
        # --- the application form (申请表) ---
        numeric(
            "years_in_business",
            [1, 3, 5],
            ["< 1", "1 – 2", "3 – 4", ">= 5"],
            [-2, 0, 1, 2],
            neutral=0,
            reason_code="YEARS_IN_BUSINESS_SHORT",
            source="application",
            unit="years",
            valid=(0, 100),
            en="Years in business as stated by the applicant: unverified, so a small weight beside the "
            "registry's business age.",
            zh="申请人自报的经营年限：未经核实，权重小于工商登记的成立时长。",
        ),
    ]


def micro_business_scorecard() -> ExpertScorecardModel:
    return ExpertScorecardModel(characteristics(), BASE_POINTS, SCALING, name=NAME, description=DESCRIPTION)
