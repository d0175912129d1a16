"""The menu on a phone: a button naming where the user is opens the whole menu; exactly one item is current,
the one whose address is the longest start of the page's (My visits under Early warning), in either language."""

from __future__ import annotations

import re

from tests.conftest import Api, sign_in_page

_CURRENT = re.compile(r'<a href="([^"]+)" aria-current="page">([^<]+)</a>')
_BUTTON = re.compile(r'data-testid="menu-button">.*?<span class="where">([^<]+)</span>', re.S)


def _menu(html: str) -> tuple[list[tuple[str, str]], str]:
    nav = re.search(r'<nav class="nav" id="nav">(.*?)</nav>', html, re.S)
    button = _BUTTON.search(html)
    assert nav and button, html[:2000]
    assert html.index('id="menu-toggle"') < html.index('<nav class="nav" id="nav">')  # the toggle opens it
    return _CURRENT.findall(nav.group(1)), button.group(1)


def test_the_current_item_is_the_longest_address_that_starts_the_page(api: Api) -> None:
    username, _ = api.kit.user("credit_officer")
    sign_in_page(api.client, username, "/")
    api.client.cookies.set("ml_lang", "en")
    current, button = _menu(api.client.get("/early-warning/visits").text)
    assert current == [("/early-warning/visits", "My visits")] and button == "My visits"
    current, button = _menu(api.client.get("/early-warning").text)
    assert current == [("/early-warning", "Early warning")] and button == "Early warning"
    api.client.cookies.set("ml_lang", "zh_CN")
    current, button = _menu(api.client.get("/customers").text)
    assert len(current) == 1 and current[0][0] == "/customers" and button == current[0][1] == "客户"
    api.client.cookies.clear()


def test_a_page_outside_the_menu_has_no_current_item_and_the_button_says_menu(api: Api) -> None:
    username, _ = api.kit.user("credit_officer")
    sign_in_page(api.client, username, "/")
    api.client.cookies.set("ml_lang", "zh_CN")
    missing = api.client.get("/loans/999999")  # a loan page is reached from a list, not from the menu
    assert missing.status_code == 404
    current, button = _menu(missing.text)
    assert current == [] and button == "菜单"
    api.client.cookies.clear()
