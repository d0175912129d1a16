"""Tracking and attribution (营销效果追踪): the funnel sent -> opened -> clicked -> applied -> approved ->
disbursed, attributed to a campaign within a window after the send, and the campaign report comparing the
treatment with its control group.

Attribution window: an event at instant `t` belongs to a send at `s` with a window of `d` days when
``s <= t < s + d days`` (the start is inclusive, the end exclusive). Control customers get nothing, so their
window starts at the campaign's launch, the moment they would have been contacted.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment, FileSystemLoader, select_autoescape

from microlend.core.errors import ValidationError
from microlend.marketing.attribution import (
    ATTRIBUTION_RULE,
    channel_effects,
    funnels,
)
from microlend.marketing.attribution import attribute as last_touch_attribute
from microlend.marketing.intervals import newcombe_difference, wilson_interval

__all__ = ["EVENT_KINDS", "STAGES", "CampaignReport", "Comparison", "attribute", "attribution_window",
           "build_report", "funnel_chart", "is_attributed", "lift_chart", "newcombe_difference", "wilson_interval"]

EVENT_KINDS = ("sent", "opened", "clicked", "applied", "approved", "disbursed")
STAGES = EVENT_KINDS[1:]
TEMPLATES = Path(__file__).parent / "templates"


def attribution_window(sent_at: datetime, days: int) -> tuple[datetime, datetime]:
    """[start, end): the start is inclusive, the end exclusive."""
    if days < 1:
        raise ValidationError("attribution_days: must be at least 1", field="attribution_days")
    return sent_at, sent_at + timedelta(days=days)


def is_attributed(event_at: datetime, sent_at: datetime, days: int) -> bool:
    start, end = attribution_window(sent_at, days)
    return start <= event_at < end


def attribute(reference: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """One row per (campaign, customer) with a boolean per funnel stage reached inside the window, under the
    bank's one attribution rule (`attribution.ATTRIBUTION_RULE`, last touch across campaigns).

    `reference`: campaign_id, customer_id, arm, segment, channel, reference_at, window_days[, sent,
    delivered]; `events`: customer_id, kind, at[, event_campaign_id] (an event tied to a campaign by its
    tracked link counts for that campaign)."""
    return last_touch_attribute(reference, events)


# --- the report -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Conversion to a stage in treatment vs control, the difference (the campaign's true incremental
    effect, 增量效果) and its confidence interval."""

    stage: str
    treatment: int
    treatment_n: int
    control: int
    control_n: int
    treatment_rate: float
    control_rate: float
    difference: float
    low: float
    high: float


@dataclass
class CampaignReport:
    """The campaign's nested funnel (`attribution.Funnel` rows), its effect against the control group overall
    and per channel with cost and ROI, the attribution rule it was counted under and any warnings."""

    campaigns: dict[int, str]
    funnel: list[Any]
    comparisons: list[Comparison]
    confidence: float
    total_cost: Decimal
    cost_per_disbursed: Decimal | None
    cost_per_incremental_disbursed: Decimal | None
    extra: dict[str, Any] = field(default_factory=dict)
    channels: list[Any] = field(default_factory=list)
    attribution_rule: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        def plain(obj: Any) -> dict[str, Any]:
            return {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(obj).items()}

        return {
            "campaigns": {str(k): v for k, v in self.campaigns.items()},
            "funnel": [asdict(f) for f in self.funnel],
            "comparisons": [asdict(c) for c in self.comparisons],
            "channels": [plain(c) for c in self.channels],
            "attribution_rule": self.attribution_rule,
            "warnings": list(self.warnings),
            "confidence": self.confidence,
            "total_cost": str(self.total_cost),
            "cost_per_disbursed": None if self.cost_per_disbursed is None else str(self.cost_per_disbursed),
            "cost_per_incremental_disbursed": None if self.cost_per_incremental_disbursed is None
            else str(self.cost_per_incremental_disbursed),
            **self.extra,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=True)

    def to_html(self, title: str = "Campaign report") -> str:
        env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
        return env.get_template("campaign_report.html").render(
            title=title, report=self, funnel_chart=_funnel_chart(self), lift_chart=_lift_chart(self))


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def build_report(reference: pl.DataFrame, events: pl.DataFrame, *, costs: Mapping[int, Decimal],
                 names: Mapping[int, str], confidence: float = 0.95, contacts: Mapping[str, int] | None = None,
                 cost_per_contact: Mapping[str, Decimal] | None = None, margin: Decimal | None = None,
                 warnings: list[str] | None = None) -> CampaignReport:
    """Funnels, treatment-vs-control comparisons (overall and per channel) and costs from events attributed
    under the last-touch rule (pure). `reference` holds every touch of the bank that may compete for these
    customers' events; only the campaigns in `names` are reported."""
    from microlend.marketing.attribution import attribute as last_touch_attribute

    frame = last_touch_attribute(reference, events).filter(pl.col("campaign_id").is_in(list(names)))
    funnel = funnels(frame, "channel") + funnels(frame, "segment")
    treated = frame.filter(pl.col("arm") == "treatment")
    control = frame.filter(pl.col("arm") == "control")
    comparisons = []
    for stage in ("applied", "disbursed"):
        xt, nt = int(treated.get_column(stage).sum()), treated.height
        xc, nc = int(control.get_column(stage).sum()), control.height
        d, low, high = newcombe_difference(xt, nt, xc, nc, confidence)
        comparisons.append(Comparison(stage, xt, nt, xc, nc, xt / nt if nt else 0.0, xc / nc if nc else 0.0,
                                      d, low, high))
    total = sum(costs.values(), Decimal(0))
    disbursed = comparisons[1].treatment
    per = _money(total / disbursed) if disbursed else None
    incremental = comparisons[1].difference * comparisons[1].treatment_n
    per_inc = _money(total / Decimal(repr(incremental))) if incremental > 0 else None
    channels = channel_effects(frame, contacts=contacts or {}, cost_per_contact=cost_per_contact or {},
                               margin=margin, confidence=confidence)
    return CampaignReport(dict(names), funnel, comparisons, confidence, _money(total), per, per_inc,
                          channels=channels, attribution_rule=ATTRIBUTION_RULE, warnings=list(warnings or []))


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _funnel_chart(report: CampaignReport) -> str | None:
    rows = [f for f in report.funnel if f.by == "channel"]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    for r in rows:
        stages = r.stages()
        ax.plot([k for k, _ in stages], [v for _, v in stages], marker="o", label=r.group)
    ax.set_ylabel("customers")
    ax.set_ylim(bottom=0)
    ax.set_title("Funnel by channel")
    ax.legend()
    return _png(fig)


def _lift_chart(report: CampaignReport) -> str | None:
    if not report.comparisons:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.6 * len(report.comparisons)))
    ys = list(range(len(report.comparisons)))
    diffs = [c.difference * 100 for c in report.comparisons]
    errs = [[(c.difference - c.low) * 100 for c in report.comparisons],
            [(c.high - c.difference) * 100 for c in report.comparisons]]
    ax.errorbar(diffs, ys, xerr=errs, fmt="o", capsize=4)
    ax.axvline(0, color="grey", linewidth=1)
    ax.set_yticks(ys, [c.stage for c in report.comparisons])
    ax.set_ylim(-0.6, len(ys) - 0.4)
    ax.set_xlabel("treatment - control (percentage points)")
    ax.set_title(f"Incremental effect, {report.confidence:.0%} interval")
    return _png(fig)


def funnel_chart(report: CampaignReport) -> str | None:
    """The funnel by channel as a base64 PNG, for pages that lay the report out themselves."""
    return _funnel_chart(report)


def lift_chart(report: CampaignReport) -> str | None:
    """Treatment minus control per stage with its interval, as a base64 PNG."""
    return _lift_chart(report)
