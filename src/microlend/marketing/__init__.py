"""Marketing (智能营销): segments, pre-approval runs, campaigns with control groups, tracking and uplift.

- `segments.py`   ZEN expressions over a typed feature namespace, compiled to Polars; exclusions
- `campaigns.py`  control groups, quiet hours, message templates, the `Sender` protocol
- `tracking.py`   attribution windows, funnels, Newcombe intervals, the HTML/JSON campaign report
- `uplift.py`     Qini curve, AUUC, uplift at top k; two-model and class-transformation models
- `preapproval.py` batch pre-approval over the data, risk and decisioning modules, restartable
- `tables.py`, `service.py` persistence and use cases; `api.py` (routers `router`, `tracking_router`),
  `cli.py` (Typer `app`), `demo.py` (the demo bank's campaign), `synthetic.py` (a seeded customer base)
"""
