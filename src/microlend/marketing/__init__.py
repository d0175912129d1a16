"""Marketing (智能营销): segments, pre-approval runs, campaigns with control groups, tracking and uplift.

- `segments.py`   ZEN expressions over a typed feature namespace, compiled to Polars; exclusions
- `campaigns.py`  control groups, quiet hours, message templates, the `Sender` protocol
- `tracking.py`   attribution windows, funnels, Newcombe intervals, the HTML/JSON campaign report
- `uplift.py`     Qini curve, AUUC, uplift at top k; two-model and class-transformation models
- `preapproval.py` batch pre-approval over the data, risk and decisioning modules, restartable
- `tables.py`, `service/` persistence and use cases (split by use case); `handlers.py` reactions to lending
  events; `demo.py` (the demo bank's campaign), `synthetic.py` (a seeded customer base). Its HTTP routes are
  in `api/routers/marketing.py`, its commands in `cli/marketing.py`.
- `sources.py`    what marketing knows from other modules: customers (parties), applications and arrears
- `customerbase.py` the bank's customers as marketing's frame, with days past due, for the marketer's pages

Marketing depends on decisioning, data and parties. Applications (origination) and loans (servicing) it
learns through the ports in `sources.py`, which `bootstrap.py` connects to those modules' query functions,
never by importing them or reading their tables: the funnel's real applications, approvals and disbursements
(`service.application_events`) and today's arrears in the customer frame. Events from lending (an overdue
borrower, a decided application) reach it through `handlers.py`.
"""
