"""Use cases of the credit data module for the API, pages and jobs: one function per use case.

Importing and reading datasets live in `importer`; this module adds the use cases built on them.
"""

from __future__ import annotations

from typing import Any

from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.data.importer import (
    DatasetInfo,
    ImportResult,
    get_dataset,
    import_dataset,
    list_datasets,
    load_dataset,
)
from microlend.data.quality import QualityReport, quality_report

__all__ = [
    "DatasetInfo",
    "ImportResult",
    "dataset_quality",
    "get_dataset",
    "import_dataset",
    "list_datasets",
    "load_dataset",
]


def dataset_quality(
    uow: UnitOfWork,
    who: Principal,
    name: str,
    version: int | None = None,
    *,
    target: str | None = None,
    bad: Any = None,
    against: tuple[str, int | None] | None = None,
    bins: int = 10,
) -> QualityReport:
    """The quality report of a stored dataset version, optionally with drift against another one
    (e.g. this month's applications against the development sample)."""
    info = get_dataset(uow, who, name, version)
    df = load_dataset(uow, who, name, info.version)
    other = None
    other_name = "comparison"
    if against is not None:
        other_info = get_dataset(uow, who, against[0], against[1])
        other = load_dataset(uow, who, other_info.name, other_info.version)
        other_name = f"{other_info.name} v{other_info.version}"
    return quality_report(
        df,
        name=f"{info.name} v{info.version}",
        target=target,
        bad=bad,
        against=other,
        against_name=other_name,
        bins=bins,
    )
