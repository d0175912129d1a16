"""The reference registry: a module's resolver decides which ids are the caller's bank's; any other id is not
found and the error names the field it came in."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from microlend.core import references
from microlend.core.errors import NotFound
from microlend.core.identity import Principal, Role
from microlend.core.references import Reference
from microlend.core.uow import UnitOfWork

WHO = Principal(user_id=1, tenant_id=7, username="a", roles=frozenset({Role.ADMIN}))
#: (tenant, id) of the things that exist
THINGS = {(7, 1), (7, 2), (8, 3)}
asked: list[list[int]] = []


def things_of_bank(uow: UnitOfWork, who: Principal, ids: Sequence[int]) -> set[int]:
    asked.append(list(ids))
    return {i for i in ids if (who.tenant_id, i) in THINGS}


references.register("test_thing", things_of_bank)


def test_ids_of_the_bank_pass_in_one_question_per_kind() -> None:
    asked.clear()
    references.require(None, WHO, [Reference("test_thing", 1, "a_id"), Reference("test_thing", 2, "b_id")])  # type: ignore[arg-type]
    assert asked == [[1, 2]]


@pytest.mark.parametrize("missing", [3, 4])  # another bank's, and nobody's
def test_an_id_not_of_the_bank_is_not_found_naming_its_field(missing: int) -> None:
    with pytest.raises(NotFound) as err:
        references.require(None, WHO, [Reference("test_thing", 1, "a_id"),  # type: ignore[arg-type]
                                       Reference("test_thing", missing, "b_id")])
    assert err.value.field == "b_id" and f"test thing {missing} not found" in err.value.message


def test_a_kind_no_module_registered_is_a_programming_error() -> None:
    with pytest.raises(LookupError):
        references.require(None, WHO, [Reference("no_such_kind", 1, "x_id")])  # type: ignore[arg-type]


def test_a_kind_is_registered_once() -> None:
    references.register("test_thing", things_of_bank)  # the same resolver again: nothing changes
    with pytest.raises(ValueError, match="registered twice"):
        references.register("test_thing", lambda uow, who, ids: set())
