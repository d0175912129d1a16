"""Attribution across campaigns (跨活动归因去重): one rule, applied to the whole bank at once, so a customer
targeted by several campaigns never counts as a conversion for more than one of them.

The rule (last touch, 末次触达): an event (opened, clicked, applied, approved, disbursed) counts for exactly
one campaign: the one whose touch came last before the event among the campaigns whose attribution window
still covers it. A treated customer's touch is their first message (or visit); a control customer's touch is
the campaign's launch, the moment they would have been contacted. A tie (two touches at the same instant)
goes to the later campaign (the higher id). An event that arrived through a campaign's tracked link counts
for that campaign, when its window covers it, whatever came later.

Funnel stages (each a subset of the one before, so the funnel never widens): targeted -> sent -> delivered
-> responded (opened, clicked or any later stage) -> clicked (or any later stage) -> applied -> approved ->
disbursed, all within the delivered customers. A treated customer whose message was not delivered and who
converted anyway is counted apart ("converted without a delivered message"), and the tracked opens and
clicks are shown as they were recorded.

Pure: polars frames in, polars frames out (set-based, no loop over customers or events).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import polars as pl

from microlend.marketing.intervals import newcombe_difference

ATTRIBUTION_RULE = (
    "Last touch across all campaigns: each response or conversion counts for one campaign only, the one whose "
    "contact (for a control customer, its launch) came last before it within that campaign's attribution "
    "window; an event through a campaign's tracked link counts for that campaign."
)
#: the funnel's nested stages, each a subset of the previous one
FUNNEL_STAGES = ("targeted", "sent", "delivered", "responded", "clicked", "applied", "approved", "disbursed")
RESPONSE_STAGES = ("opened", "clicked", "applied", "approved", "disbursed")
STAGES = RESPONSE_STAGES  # the event kinds after the send, in funnel order

TOUCH_SCHEMA: dict[str, pl.DataType] = {
    "campaign_id": pl.Int64(), "customer_id": pl.Int64(), "arm": pl.String(), "segment": pl.String(),
    "channel": pl.String(), "reference_at": pl.Datetime("us", "UTC"), "window_days": pl.Int64(),
    "sent": pl.Boolean(), "delivered": pl.Boolean()}
EVENT_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.Int64(), "kind": pl.String(), "at": pl.Datetime("us", "UTC"),
    "event_campaign_id": pl.Int64()}


def last_touch(touches: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Each event with the one campaign it counts for (events no window covers are dropped): customer_id,
    kind, at, campaign_id."""
    if "event_campaign_id" not in events.columns:
        events = events.with_columns(pl.lit(None, dtype=pl.Int64).alias("event_campaign_id"))
    numbered = events.select("customer_id", "kind", "at", "event_campaign_id").with_row_index("event_id")
    joined = numbered.join(touches.select("campaign_id", "customer_id", "reference_at", "window_days"),
                           on="customer_id", how="inner")
    end = pl.col("reference_at") + pl.duration(days=pl.col("window_days"))
    covered = joined.filter((pl.col("at") >= pl.col("reference_at")) & (pl.col("at") < end))
    linked = covered.filter(pl.col("event_campaign_id") == pl.col("campaign_id"))
    linked_ids = linked.select("event_id").unique()
    untied = covered.filter(pl.col("event_campaign_id").is_null()).join(linked_ids, on="event_id", how="anti")
    latest = (untied.sort(["event_id", "reference_at", "campaign_id"], descending=[False, True, True])
              .unique("event_id", keep="first", maintain_order=True))
    keep = ["event_id", "customer_id", "kind", "at", "campaign_id"]
    return pl.concat([linked.select(keep), latest.select(keep)]).sort("event_id").drop("event_id")


def attribute(touches: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """One row per touch (campaign, customer) with a boolean per stage reached, under the last-touch rule."""
    credited = last_touch(touches, events)
    reached = credited.group_by("campaign_id", "customer_id").agg(
        [(pl.col("kind") == k).any().alias(k) for k in STAGES])
    out = touches.join(reached, on=["campaign_id", "customer_id"], how="left")
    if "sent" not in out.columns:
        out = out.with_columns((pl.col("arm") == "treatment").alias("sent"))
    if "delivered" not in out.columns:
        out = out.with_columns(pl.col("sent").alias("delivered"))
    return out.with_columns([pl.col(k).fill_null(False) for k in STAGES]).with_columns(
        (pl.col("delivered") & pl.col("sent")).alias("delivered"))


def reached_or_later(frame: pl.DataFrame) -> pl.DataFrame:
    """Nested stage columns: `<stage>_n` is true when the customer reached that stage or a later one (a
    customer who applied without opening the message did respond), and only for delivered customers."""
    later: pl.Expr = pl.lit(False)
    cols = {}
    for stage in reversed(RESPONSE_STAGES):
        later = later | pl.col(stage)
        cols[stage] = later
    converted = cols["opened"]
    return frame.with_columns(
        pl.col("sent").alias("sent_n"),
        pl.col("delivered").alias("delivered_n"),
        (pl.col("delivered") & converted).alias("responded_n"),
        *[(pl.col("delivered") & cols[s]).alias(f"{s}_n") for s in ("clicked", "applied", "approved", "disbursed")],
        (~pl.col("delivered") & cols["applied"]).alias("undelivered_applied"),
    )


@dataclass(frozen=True)
class Funnel:
    """The treated customers of one group (a channel or a segment) at each nested stage, the converted
    customers whose message was not delivered, and the tracked opens and clicks as recorded."""

    by: str
    group: str
    targeted: int
    sent: int
    delivered: int
    responded: int
    clicked: int
    applied: int
    approved: int
    disbursed: int
    applied_without_delivery: int
    tracked_opens: int
    tracked_clicks: int

    def stages(self) -> list[tuple[str, int]]:
        return [(s, getattr(self, s)) for s in FUNNEL_STAGES]


def funnels(frame: pl.DataFrame, by: str) -> list[Funnel]:
    """The nested funnel of the treatment arm per value of `by` (channel or segment)."""
    treated = reached_or_later(frame.filter(pl.col("arm") == "treatment"))
    if treated.height == 0:
        return []
    nested = ["sent", "delivered", "responded", "clicked", "applied", "approved", "disbursed"]
    grouped = treated.group_by(by).agg(
        pl.len().alias("targeted"), *[pl.col(f"{s}_n").sum().alias(s) for s in nested],
        pl.col("undelivered_applied").sum(), pl.col("opened").sum().alias("tracked_opens"),
        pl.col("clicked").sum().alias("tracked_clicks")).sort(by)
    return [Funnel(by=by, group=str(r[by]), targeted=int(r["targeted"]), **{s: int(r[s]) for s in nested},
                   applied_without_delivery=int(r["undelivered_applied"]), tracked_opens=int(r["tracked_opens"]),
                   tracked_clicks=int(r["tracked_clicks"])) for r in grouped.iter_rows(named=True)]


@dataclass(frozen=True)
class ChannelEffect:
    """Treatment vs control on one channel at one stage: the incremental effect (percentage points as a
    fraction), its interval, and what it cost and earned: ROI = (incremental conversions x margin - cost) /
    cost, where a conversion is a disbursed loan."""

    channel: str
    stage: str
    treatment: int
    treatment_n: int
    control: int
    control_n: int
    difference: float
    low: float
    high: float
    incremental: Decimal  # extra converters: difference x treated customers
    cost: Decimal
    cost_per_incremental: Decimal | None
    roi: Decimal | None


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def channel_effects(frame: pl.DataFrame, *, contacts: Mapping[str, int], cost_per_contact: Mapping[str, Decimal],
                    margin: Decimal | None, stages: Sequence[str] = ("applied", "disbursed"),
                    confidence: float = 0.95) -> list[ChannelEffect]:
    """Per channel and stage, the campaign's own effect (treatment minus its control group) with the cost of
    the channel's contacts and, at the disbursed stage and with a margin, the ROI."""
    counts = frame.group_by("channel", "arm").agg(pl.len().alias("n"), *[pl.col(s).sum() for s in stages])
    out = []
    for channel in sorted(set(counts.get_column("channel").to_list())):
        rows = {r["arm"]: r for r in counts.filter(pl.col("channel") == channel).iter_rows(named=True)}
        t, c = rows.get("treatment"), rows.get("control")
        cost = _money(cost_per_contact.get(channel, Decimal(0)) * contacts.get(channel, 0))
        for stage in stages:
            xt, nt = (int(t[stage]), int(t["n"])) if t else (0, 0)
            xc, nc = (int(c[stage]), int(c["n"])) if c else (0, 0)
            d, low, high = newcombe_difference(xt, nt, xc, nc, confidence)
            # exact: xt - xc * nt / nc, the control's rate applied to the treated customers
            incremental = (Decimal(xt) - Decimal(xc) * Decimal(nt) / Decimal(nc)) if nc else Decimal(0)
            per = _money(cost / incremental) if incremental > 0 and cost > 0 else None
            roi = None
            if stage == "disbursed" and margin is not None and cost > 0:
                roi = ((incremental * margin - cost) / cost).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
            out.append(ChannelEffect(channel, stage, xt, nt, xc, nc, d, low, high,
                                     incremental.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), cost, per, roi))
    return out
