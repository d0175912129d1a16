"""Credit data (数据中台 data platform): datasets with contracts, quality reports and point-in-time features.

- `contracts`: data contracts as JSON-able dicts, checked with pandera (`validate`, `infer_contract`).
- `importer`: `import_dataset` from CSV, Parquet or SQL into the tenant's Parquet store, with metadata.
- `quality`: `quality_report` and `render_html` (one self-contained file with charts).
- `features`, `feature_library`: versioned features as of a date (`compute_features`,
  `OnlineFeatureStore`), and the standard micro-lending library.
- `sources`: read the feature source tables from an operational database.
- `providers`: the six external data provider kinds, their consent, payload contracts and typed records.
- `gateway`: `Gateway.fetch` calls the providers in parallel (timeouts, retries, circuit breaker, cache,
  cost, consent), records every call with its answer encrypted; `payload_of` replays one.
- `provider_service`: the bank's provider settings, the calls made and their usage.
- `cli`: the `microlend data` command group.
"""
