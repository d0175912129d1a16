"""Marketing use cases (营销), split by use case: segments, pre-approval runs, campaigns, the outbox of
messages, attribution, uplift training and officer visits. Each takes `(uow, who, ...)`, checks the
caller's permission and tenant, and writes an audit record for every change.

Customer data arrives as a Polars frame (one row per customer: customer_id, marketing_consent,
current_days_past_due, the features segments read, and optionally officer_user_id and locale), because
marketing reads customers through the data module's batch features rather than through another module's
tables. Consent is checked again at send time through a `ConsentCheck`; the default reads the customers'
marketing consent in `sources`, where every read of another module's tables lives.

- `segments.py`    segment versions, previews with a live count
- `runs.py`        pre-approval runs and their offers, as the pages read them
- `campaigns.py`   create and launch campaigns: exclusions, control group, outbox or visit tasks
- `outbox.py`      dispatch through a sender with consent, opt-outs, caps and the contact policy checked
                   again, retries with backoff; opt-outs
- `delivery.py`    the bank's HTTP gateways as a sender; delivery receipts and replies (STOP -> opt-out)
- `policy.py`      the bank's contact policy; approval of a launch by a second person
- `attribution.py` responses and conversions, the funnel, the campaign report, uplift training rows
- `uplift.py`      train and measure an uplift model on past campaigns
- `measurement.py` channel costs and margin, control warnings per stratum, a campaign's close (stored report
                   and uplift model)
- `journeys.py`    follow-up steps advanced by the worker, funnels per step and per variant, the calendar
                   of campaigns by department and product with spend against budget
- `visits.py`      officers' visit tasks and cards
- `common.py`      what these share (tenant-scoped loads, exclusion inputs, bulk writes)
"""

from microlend.marketing.service.attribution import (
    application_events,
    campaign_outcomes,
    campaign_report,
    record_event,
    record_events,
    record_link_visit,
)
from microlend.marketing.service.campaigns import (
    Campaign,
    CampaignSpec,
    LaunchSummary,
    create_campaign,
    get_campaign,
    launch_campaign,
    list_campaigns,
)
from microlend.marketing.service.common import MeasurementSettings
from microlend.marketing.service.delivery import (
    RECEIPT_STATUSES,
    CallbackResult,
    GatewaySender,
    dispatch_bank_outbox,
    record_receipts,
    record_reply,
)
from microlend.marketing.service.journeys import (
    CalendarLine,
    JourneyRound,
    JourneyStep,
    StepFunnel,
    add_journey_step,
    advance_journeys,
    campaign_budget,
    campaign_calendar,
    journey_steps,
    parse_month,
    step_funnels,
    variant_report,
)
from microlend.marketing.service.measurement import (
    CampaignMeasurement,
    InterimReport,
    close_campaign,
    interim_report,
    measurement_settings,
    refresh_interim,
    refresh_open_reports,
    stored_measurement,
    stored_uplift_model,
    update_measurement_settings,
)
from microlend.marketing.service.outbox import (
    ConsentCheck,
    DispatchSummary,
    customers_table_consent,
    dispatch_outbox,
    outbox_waiting,
    record_opt_out,
    remove_opt_out,
)
from microlend.marketing.service.policy import Approval, approve_campaign, contact_policy, set_contact_policy
from microlend.marketing.service.runs import (
    Offer,
    PreapprovalRun,
    list_offers,
    list_runs,
    offer_count,
    real_customer_count,
)
from microlend.marketing.service.segments import (
    SegmentVersion,
    check_expression,
    get_segment,
    list_segments,
    preview_expression,
    preview_segment,
    save_segment,
)
from microlend.marketing.service.uplift import UPLIFT_METHODS, UpliftTraining, train_uplift
from microlend.marketing.service.visits import (
    VisitCard,
    VisitTask,
    close_ineligible_visit_tasks,
    close_visit_task,
    visit_cards,
    visit_tasks,
)

__all__ = [
    "RECEIPT_STATUSES",
    "UPLIFT_METHODS",
    "Approval",
    "CalendarLine",
    "CallbackResult",
    "Campaign",
    "CampaignMeasurement",
    "CampaignSpec",
    "ConsentCheck",
    "DispatchSummary",
    "GatewaySender",
    "InterimReport",
    "JourneyRound",
    "JourneyStep",
    "LaunchSummary",
    "MeasurementSettings",
    "Offer",
    "PreapprovalRun",
    "SegmentVersion",
    "StepFunnel",
    "UpliftTraining",
    "VisitCard",
    "VisitTask",
    "add_journey_step",
    "advance_journeys",
    "application_events",
    "approve_campaign",
    "campaign_budget",
    "campaign_calendar",
    "campaign_outcomes",
    "campaign_report",
    "check_expression",
    "close_campaign",
    "close_ineligible_visit_tasks",
    "close_visit_task",
    "contact_policy",
    "create_campaign",
    "customers_table_consent",
    "dispatch_bank_outbox",
    "dispatch_outbox",
    "get_campaign",
    "get_segment",
    "interim_report",
    "journey_steps",
    "launch_campaign",
    "list_campaigns",
    "list_offers",
    "list_runs",
    "list_segments",
    "measurement_settings",
    "offer_count",
    "outbox_waiting",
    "parse_month",
    "preview_expression",
    "preview_segment",
    "real_customer_count",
    "record_event",
    "record_events",
    "record_link_visit",
    "record_opt_out",
    "record_receipts",
    "record_reply",
    "refresh_interim",
    "refresh_open_reports",
    "remove_opt_out",
    "save_segment",
    "set_contact_policy",
    "step_funnels",
    "stored_measurement",
    "stored_uplift_model",
    "train_uplift",
    "update_measurement_settings",
    "variant_report",
    "visit_cards",
    "visit_tasks",
]
