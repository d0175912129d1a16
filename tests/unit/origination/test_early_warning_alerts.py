"""De-duplicating the raised signals against the queue set-based (`plan_alerts`) does what the scan did one
alert at a time: a signal already open is escalated when worse, else seen again; a quiet one is skipped; the
rest are new, with the inputs each keeps as the JSON text the ORM writes."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import polars as pl

from microlend.core.db import json_text
from microlend.decisioning import early_warning as rules
from microlend.origination import early_warning as ew


def book(n: int, seed: int) -> pl.DataFrame:
    rng = random.Random(seed)

    def maybe(value: Any) -> Any:
        return None if rng.random() < 0.2 else value

    rows = [{"subject_kind": rng.choice(("line", "loan")), "subject_id": i, "customer_id": maybe(1000 + i),
             "dpd.now": rng.choice((0, 0, 5, 35, 95)), "dpd.before": maybe(rng.choice((0, 3, 40))),
             "score.value": maybe(rng.randrange(450, 720)), "score.drop": maybe(rng.randrange(-30, 90)),
             "tax.sales_growth": maybe(rng.choice((-0.61, -0.35, 0.1, -0.123456789, 1 / 3, -0.00005))),
             "merchant.flow_trend": maybe(rng.choice((-0.5, -0.42, 0.0, -2 / 3))),
             "enforcement.cases_open": maybe(rng.choice((0, 0, 1, 2))),
             "enforcement.dishonest": maybe(rng.random() < 0.1),
             "bureau.overdue_now": maybe(rng.choice((0, 1, 3))), "line.months_at_limit": maybe(rng.randrange(0, 6))}
            for i in range(1, n + 1)]
    return pl.DataFrame(rows, schema=rules.BOOK_SCHEMA)


def reference(found: pl.DataFrame, facts: pl.DataFrame, open_rows: dict[str, tuple[int, str]], quiet: set[str]
              ) -> tuple[list[tuple[Any, ...]], list[tuple[int, str, str]], list[int]]:
    """The scan's loop before it went set-based: one raised signal at a time."""
    by_subject = {(r["subject_kind"], r["subject_id"]): r for r in facts.iter_rows(named=True)}
    inserts, escalations, seen = [], [], []
    for kind, subject_id, customer_id, signal, severity in found.iter_rows():
        key = f"{kind}:{subject_id}:{signal}"
        inputs = json_text(ew.alert_inputs(by_subject[(kind, subject_id)], signal))
        if key in open_rows:
            alert_id, before = open_rows[key]
            if ew._RANK[severity] > ew._RANK.get(before, 0):
                escalations.append((alert_id, severity, inputs))
            else:
                seen.append(alert_id)
            continue
        if key in quiet:
            continue
        inserts.append((kind, subject_id, customer_id, signal, severity, inputs, key))
    return inserts, escalations, seen


def test_the_set_based_plan_is_the_one_alert_at_a_time_plan() -> None:
    facts = book(600, seed=3)
    found = rules.raised(rules.assess_book(rules.default_early_warning(), facts))
    rng = random.Random(9)
    keys = [f"{k}:{i}:{g}" for k, i, _, g, _ in found.iter_rows()]
    assert len(keys) > 100
    open_rows = {key: (n, rng.choice(("low", "medium", "high", "gone")))
                 for n, key in enumerate(keys) if rng.random() < 0.3}
    open_rows["loan:99999:dpd_transition"] = (77_777, "low")  # open, not raised now: untouched
    quiet = {key for key in keys if key not in open_rows and rng.random() < 0.2}
    plan = ew.plan_alerts(
        found, facts,
        pl.DataFrame([(i, key, sev) for key, (i, sev) in open_rows.items()], schema=ew._RAISED_SCHEMA, orient="row"),
        pl.DataFrame({"open_key": sorted(quiet)}, schema={"open_key": pl.Utf8}))
    inserts, escalations, seen = reference(found, facts, open_rows, quiet)
    assert plan.inserts.select("subject_kind", "subject_id", "customer_id", "signal", "severity", "inputs",
                               "open_key").rows() == inserts
    assert sorted(plan.escalations.rows()) == sorted(escalations) and escalations
    assert sorted(plan.seen) == sorted(seen) and seen
    # ratios are kept as text to four places, and every stored text is the JSON the ORM reads back
    texts = plan.inserts.get_column("inputs").to_list()
    assert any(re.search(r'"tax.sales_growth": "-0\.\d{4}"', t) for t in texts)
    assert any(re.search(r'"merchant.flow_trend": "-0\.\d{4}"', t) for t in texts)
    assert all(json.loads(t) == json.loads(r[5]) for t, r in zip(texts, inserts, strict=True))


def test_nothing_open_or_quiet_makes_every_raised_signal_new() -> None:
    facts = book(80, seed=4)
    found = rules.raised(rules.assess_book(rules.default_early_warning(), facts))
    plan = ew.plan_alerts(found, facts, pl.DataFrame(schema=ew._RAISED_SCHEMA),
                          pl.DataFrame(schema={"open_key": pl.Utf8}))
    assert plan.inserts.height == found.height and plan.escalations.height == 0 and plan.seen == []
