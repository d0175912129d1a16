"""Jinja2 environments per locale, with gettext and the formatting filters the pages use."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup, escape

from microlend.api.deps import SESSION_COOKIE
from microlend.core import sessions
from microlend.core.settings import get_settings
from microlend.web import access, i18n, labels


@lru_cache(maxsize=4)
def environment(locale: str) -> Environment:
    env = Environment(
        loader=PackageLoader("microlend.web", "templates"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True, lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(locale=locale, locales=i18n.LOCALE_LABELS,
                       html_lang="zh-CN" if locale == "zh_CN" else "en")
    env.globals["may_open_customer_360"] = access.may_open_customer_360  # links only where they lead
    install_formats(env, locale)
    # codes shown as words: {{ row.action | audit_action }}, {{ customer.industry | industry }}
    env.filters["audit_action"] = lambda code: labels.label(labels.AUDIT_ACTIONS, code, locale)
    env.filters["object_type"] = lambda code: labels.label(labels.OBJECT_TYPES, code, locale)
    env.filters["industry"] = lambda code: labels.label(labels.INDUSTRIES, code, locale)
    env.filters["attribute"] = lambda code: labels.label(labels.ATTRIBUTES, code, locale)
    env.filters["job_figure"] = lambda code: labels.label(labels.JOB_FIGURES, code, locale)
    env.filters["memo_words"] = labels.memo_words
    # a text the product ships (the default policies' rule names) in the reader's language; a bank's own as it is
    env.filters["tr"] = lambda text: i18n.translations(locale).gettext(text) if text else text
    return env


def install_formats(env: Environment, locale: str) -> None:
    """The one set of formats every page uses: `money` (with sign), `amount` (table column), `number`,
    `percent` ("—" for none), `day` and `moment` (in the bank's time zone, the page's `bank_tz`)."""

    @pass_context
    def day(ctx: Context, value: Any) -> str:
        return i18n.day(value, locale, ctx.get("bank_tz"))

    @pass_context
    def moment(ctx: Context, value: Any) -> str:
        return i18n.moment(value, locale, ctx.get("bank_tz"))

    env.filters["money"] = lambda value, currency="CNY": i18n.money(value, currency or "CNY", locale)
    env.filters["amount"] = lambda value, currency="CNY": i18n.amount(value, currency or "CNY", locale)
    env.filters["number"] = lambda v: i18n.number(v, locale)
    env.filters["percent"] = lambda v, digits=1, signed=False: i18n.percent(v, locale, digits, signed=signed)
    env.filters["day"] = day
    env.filters["moment"] = moment
    env.globals["no_figure"] = i18n.NO_FIGURE


def bank_timezone(request: Request) -> str:
    """The time zone of the signed-in user's bank (set on the request when the user is resolved)."""
    return str(getattr(request.state, "bank_tz", None) or i18n.DEFAULT_TIMEZONE)


def request_locale(request: Request) -> str:
    return i18n.pick_locale(request.cookies.get(i18n.LANG_COOKIE), request.headers.get("accept-language"),
                            get_settings().default_locale)


def csrf_token(request: Request) -> str:
    """The anti-forgery token of the request's session ('' without one: nothing to protect yet)."""
    session = request.cookies.get(SESSION_COOKIE)
    return sessions.csrf_token(request.app.state.settings.secret_key, session) if session else ""


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page or fragment; every form in it carries the session's anti-forgery token (`csrf_field()`), and
    the layout hands it to htmx for the requests htmx makes."""
    locale = request_locale(request)
    token = csrf_token(request)
    field = Markup('<input type="hidden" name="csrf_token" value="{}">').format(escape(token))
    context.setdefault("bank_tz", bank_timezone(request))
    html = environment(locale).get_template(template).render(request=request, csrf_token=token,
                                                             csrf_field=lambda: field, **context)
    return HTMLResponse(html, status_code=status_code)
