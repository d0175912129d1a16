"""How a database's alembic_version compares with this version's heads: a module behind, a revision from a
newer version, the retired single chain, and the branches alembic_version leaves implied."""

from __future__ import annotations

from microlend.core.migrate import LEGACY_HEAD, MODULES, code_heads, compare_with_heads


def test_the_heads_of_this_version_are_current_with_the_implied_branches_counted() -> None:
    state = compare_with_heads(code_heads())
    assert state.current and state.behind == () and state.unknown == ()
    # a branch whose head another branch depends on has no row of its own: it is implied, not behind
    implied = [h for h in code_heads() if not h.startswith("parties_")] + ["origination_0100"]
    assert "parties" in compare_with_heads(implied).behind  # origination_0100 implies parties_0100 only


def test_a_missing_branch_is_named_behind() -> None:
    heads = code_heads()
    state = compare_with_heads([h for h in heads if not h.startswith("marketing_")])
    assert not state.current and state.behind == ("marketing",)


def test_a_revision_this_version_does_not_know_is_reported() -> None:
    state = compare_with_heads([*code_heads(), "risk_9999"])
    assert not state.current and state.unknown == ("risk_9999",) and state.behind == ()


def test_an_empty_or_legacy_database_is_behind_on_every_module() -> None:
    assert set(compare_with_heads([]).behind) == set(MODULES)
    legacy = compare_with_heads([LEGACY_HEAD])
    assert set(legacy.behind) == set(MODULES) and legacy.unknown == ()
