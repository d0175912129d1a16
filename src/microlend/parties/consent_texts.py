"""The consent text catalogue (授权书): every text a borrower may agree to, per scope, in zh-CN and en, with a
version id and the SHA-256 of each wording. A consent records the version and the hash of the exact words
the borrower saw; a changed wording is a new version, never an edit of an old one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from microlend.core.errors import NotFound, ValidationError

LOCALES = ("zh_CN", "en")


@dataclass(frozen=True)
class ConsentText:
    scope: str
    version: str  # e.g. "credit_report/2026-11"
    effective: date
    title: dict[str, str]
    body: dict[str, str]

    def text(self, locale: str) -> str:
        """The words shown, title and body, as hashed."""
        loc = check_locale(locale)
        return f"{self.title[loc]}\n\n{self.body[loc]}"

    def sha256(self, locale: str) -> str:
        return hashlib.sha256(self.text(locale).encode("utf-8")).hexdigest()


_CATALOGUE: tuple[ConsentText, ...] = (
    ConsentText(
        "credit_report", "credit_report/2026-11", date(2026, 11, 1),
        {"zh_CN": "征信查询授权书", "en": "Authorisation to query the credit report"},
        {"zh_CN": "本人授权贵行在办理本人贷款申请、贷后管理期间，向中国人民银行金融信用信息基础数据库及依法设立的"
                  "征信机构查询、使用本人的信用报告，并报送本人的信贷信息。授权有效期自本人同意之日起至上述业务"
                  "结清之日止；本人可随时撤回本授权，撤回不影响撤回前已进行的查询。",
         "en": "I authorise the bank, while handling my loan application and managing my loan, to query and use "
               "my credit report held by the People's Bank of China credit reference centre and licensed credit "
               "bureaus, and to report my credit information to them. This authorisation runs from the day I give "
               "it until the business is settled; I may revoke it at any time, which does not undo queries made "
               "before."}),
    ConsentText(
        "external_data", "external_data/2026-11", date(2026, 11, 1),
        {"zh_CN": "外部数据查询授权书", "en": "Authorisation to query external data"},
        {"zh_CN": "本人授权贵行为评估本人贷款申请，向税务、电子发票、工商登记、司法执行及收单机构等数据提供方查询"
                  "本人及本人经营主体的相关信息。本人可随时撤回本授权。",
         "en": "I authorise the bank, to assess my loan application, to query information about me and my "
               "business from tax, e-invoice, business registry, court enforcement and merchant-acquiring data "
               "providers. I may revoke this authorisation at any time."}),
    ConsentText(  # the application's text, widened to the loan's life: post-loan monitoring re-pulls under it
        "external_data", "external_data/2026-11-30", date(2026, 11, 30),
        {"zh_CN": "外部数据查询授权书", "en": "Authorisation to query external data"},
        {"zh_CN": "本人授权贵行在办理本人贷款申请、贷后管理期间，向税务、电子发票、工商登记、司法执行及收单机构等"
                  "数据提供方查询本人及本人经营主体的相关信息。授权有效期自本人同意之日起至上述业务结清之日止；"
                  "本人可随时撤回本授权，撤回不影响撤回前已进行的查询。",
         "en": "I authorise the bank, while handling my loan application and managing my loan, to query "
               "information about me and my business from tax, e-invoice, business registry, court enforcement "
               "and merchant-acquiring data providers. This authorisation runs from the day I give it until the "
               "business is settled; I may revoke it at any time, which does not undo queries made before."}),
    ConsentText(
        "marketing", "marketing/2026-11", date(2026, 11, 1),
        {"zh_CN": "营销信息接收授权", "en": "Consent to receive marketing"},
        {"zh_CN": "本人同意贵行通过短信、电话或客户经理上门向本人介绍贷款产品与服务。本人可随时撤回，撤回后贵行"
                  "不再向本人发送营销信息。",
         "en": "I agree that the bank may tell me about its loan products and services by text message, phone "
               "or a visit from a loan officer. I may withdraw this consent at any time, after which the bank "
               "sends me no marketing."}),
    ConsentText(  # joint modelling (联合建模): only a keyed hash of the ID number reaches the partner
        "partner_scoring", "partner_scoring/2026-11-30", date(2026, 11, 30),
        {"zh_CN": "联合建模评分授权书", "en": "Authorisation for scoring with a data partner"},
        {"zh_CN": "本人授权贵行为评估本人贷款申请，将本人证件号码经不可逆加密处理后的标识（不含证件号码原文）发送给"
                  "与贵行签订联合建模协议的数据合作方，由其仅返回基于其所持本人信息计算的部分评分；合作方不获得本人"
                  "的申请信息及贵行数据。本人可随时撤回本授权，撤回后贵行不再就本人向合作方请求评分。",
         "en": "I authorise the bank, to assess my loan application, to send a data partner with which it has a "
               "joint modelling agreement an irreversibly encrypted identifier derived from my ID number (never the "
               "number itself), for which the partner returns only a partial score computed from the information "
               "it holds about me; the partner receives neither my application nor the bank's data. I may revoke "
               "this authorisation at any time, after which the bank asks the partner for no score about me."}),
    ConsentText(
        "data_sharing", "data_sharing/2026-11", date(2026, 11, 1),
        {"zh_CN": "个人信息共享授权书", "en": "Consent to share personal information"},
        {"zh_CN": "本人同意贵行在为本人提供贷款服务所必需的范围内，将本人的姓名、证件号码、联系方式及贷款信息"
                  "提供给贵行的担保机构、保险机构及依法合作的服务机构，并要求其依法保护本人信息。本人可随时撤回。",
         "en": "I agree that the bank may share my name, identity number, contact details and loan information "
               "with its guarantors, insurers and lawfully contracted service providers, to the extent needed to "
               "serve my loan, and requires them to protect it by law. I may withdraw this consent at any time."}),
)

#: Scopes a borrower may authorise (授权), in the catalogue's order.
SCOPES: tuple[str, ...] = tuple(dict.fromkeys(t.scope for t in _CATALOGUE))


def check_locale(locale: str) -> str:
    loc = "zh_CN" if locale in ("zh", "zh-CN", "zh_CN") else locale
    if loc not in LOCALES:
        raise ValidationError(f"locale: must be one of {', '.join(LOCALES)}", field="locale")
    return loc


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValidationError(f"scope: unknown scope '{scope}' (one of: {', '.join(SCOPES)})", field="scope")
    return scope


def catalogue() -> list[ConsentText]:
    """Every version of every text, oldest first per scope."""
    return list(_CATALOGUE)


def current(scope: str) -> ConsentText:
    """The version a borrower agrees to today."""
    check_scope(scope)
    return [t for t in _CATALOGUE if t.scope == scope][-1]


def version(version_id: str) -> ConsentText:
    for t in _CATALOGUE:
        if t.version == version_id:
            return t
    raise NotFound(f"consent text version '{version_id}' not found", field="text_version")
