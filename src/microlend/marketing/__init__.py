"""Marketing (智能营销): segments, pre-approval runs, campaigns with control groups, tracking and uplift.

- `segments.py`   ZEN expressions over a typed feature namespace, compiled to Polars; exclusions
- `campaigns.py`  control groups, quiet hours, message templates, the `Sender` protocol
- `tracking.py`   attribution windows, funnels, Newcombe intervals, the HTML/JSON campaign report
- `uplift.py`     Qini curve, AUUC, uplift at top k; two-model and class-transformation models
- `preapproval.py` batch pre-approval over the data, risk and decisioning modules, restartable
- `tables.py`, `service/` persistence and use cases (split by use case); `api.py` (routers `router`,
  `tracking_router`), `cli.py` (Typer `app`), `demo.py` (the demo bank's campaign), `synthetic.py` (a seeded
  customer base)
- `sources.py`    every read of another module's tables (customers, applications, loans)
- `customerbase.py` the bank's customers as marketing's frame, with days past due, for the marketer's pages

Marketing depends on decisioning and data only. Other modules' tables it must read (origination's
`customers` and `applications`, servicing's `loans`) are read in `sources.py` only, through SQLAlchemy Core by
table and column name, never by importing those modules: consent at send time, the customer frame, visit
cards, and the attribution of real applications, approvals and disbursements (`service.application_events`).
"""
