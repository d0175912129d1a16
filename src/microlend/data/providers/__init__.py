"""External credit data providers (外部数据源): the six kinds a bank calls through the gateway, the consent
each needs, and per kind a data contract for its payload and a parser into typed records.

- `records`: the frozen records a payload becomes (money as Decimal, dates as date).
- `contracts`: `parse(kind, payload)` checks a payload (pydantic for the nested JSON, pandera for its tables)
  and returns the record, or None for a subject the provider does not know; a broken contract raises
  `ProviderDataError` naming the kind, the field and the row.
"""

from __future__ import annotations

from microlend.data.providers.contracts import ProviderDataError, parse
from microlend.data.providers.kinds import CONSENT_SCOPE, KINDS, PATHS, SUBJECT_KINDS, consent_missing
from microlend.data.providers.records import (
    BureauReport,
    EInvoiceSummary,
    EnforcementCase,
    EnforcementRecord,
    InvoiceMonth,
    MerchantDay,
    MerchantFlows,
    ProviderRecord,
    RegistryChange,
    RegistryRecord,
    TaxDeclaration,
    TaxRecord,
    TopCustomer,
)

__all__ = [
    "CONSENT_SCOPE",
    "KINDS",
    "PATHS",
    "SUBJECT_KINDS",
    "BureauReport",
    "EInvoiceSummary",
    "EnforcementCase",
    "EnforcementRecord",
    "InvoiceMonth",
    "MerchantDay",
    "MerchantFlows",
    "ProviderDataError",
    "ProviderRecord",
    "RegistryChange",
    "RegistryRecord",
    "TaxDeclaration",
    "TaxRecord",
    "TopCustomer",
    "consent_missing",
    "parse",
]
