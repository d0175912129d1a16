"""References: every id a request carries in its body or query is resolved within the caller's bank before a
use case sees it. Each module registers the kinds of object it owns (wired in `bootstrap.REFERENCES`) with a
function that tells which of a list of ids are objects of the caller's bank; an id of another bank, or of no
object at all, is not found (404) and names the field it came in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from microlend.core.errors import NotFound
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork

#: (uow, who, ids) -> the ids among them that are objects of the caller's bank
Resolver = Callable[[UnitOfWork, Principal, Sequence[int]], set[int]]

_RESOLVERS: dict[str, Resolver] = {}
#: ids per IN (...) list: well below every database's limit on bound parameters
_CHUNK = 500


@dataclass(frozen=True)
class Reference:
    """One id of a request: the kind of object it names, its value and the field it came in."""

    kind: str
    id: int
    field: str


def register(kind: str, resolver: Resolver) -> None:
    """A module makes its objects of `kind` referenceable (once per kind)."""
    known = _RESOLVERS.get(kind)
    if known is not None and known is not resolver:
        raise ValueError(f"the reference kind '{kind}' is registered twice")
    _RESOLVERS[kind] = resolver


def kinds() -> frozenset[str]:
    return frozenset(_RESOLVERS)


def label(kind: str) -> str:
    return kind.replace("_", " ")


def require(uow: UnitOfWork, who: Principal, references: Sequence[Reference]) -> None:
    """Every reference names an object of the caller's bank, or NotFound names the first field that does not.
    A kind no module registered is a programming error, not a user's."""
    by_kind: dict[str, list[Reference]] = {}
    for ref in references:
        if ref.kind not in _RESOLVERS:
            raise LookupError(f"no module resolves references to '{ref.kind}' (see bootstrap.REFERENCES)")
        by_kind.setdefault(ref.kind, []).append(ref)
    for kind, refs in by_kind.items():
        found = _RESOLVERS[kind](uow, who, [r.id for r in refs])
        for ref in refs:
            if ref.id not in found:
                raise NotFound(f"{ref.field}: {label(kind)} {ref.id} not found", field=ref.field)


def of_bank(uow: UnitOfWork, who: Principal, id_column: InstrumentedAttribute[int],
            tenant_column: InstrumentedAttribute[int], ids: Sequence[int]) -> set[int]:
    """The ids among `ids` of rows of the caller's bank in the table of `id_column`: a resolver in one line
    for a module whose objects are rows with a tenant."""
    unique = sorted({int(i) for i in ids})
    found: set[int] = set()
    with uow:
        for start in range(0, len(unique), _CHUNK):
            found.update(int(i) for i in uow.session.execute(select(id_column).where(
                tenant_column == who.tenant_id, id_column.in_(unique[start:start + _CHUNK]))).scalars())
    return found
