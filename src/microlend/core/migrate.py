"""Schema migrations with Alembic, callable from the CLI, the demo and the tests.

Each module's tables are one Alembic branch (see ``microlend.migrations``), so a bank can adopt modules one
by one. A database built by the retired single chain of revisions (one row in ``alembic_version`` holding a
legacy id) is first brought to that chain's last revision, then re-stamped onto the first revisions of all
branches, whose schema is the same, and then upgraded like any other database: all in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

from microlend.core import audit
from microlend.core.errors import Conflict, ValidationError

SCRIPT_LOCATION = "microlend:migrations"
LEGACY_SCRIPT_LOCATION = "microlend.migrations:legacy"

#: The modules with a branch of their own (its branch label), in an order that meets their dependencies.
MODULES = ("core", "parties", "origination", "servicing", "data", "risk", "decisioning", "marketing")

#: Every revision of the retired single chain, oldest first; the last one is the chain's head.
LEGACY_REVISIONS = ("core_0001", "servicing_0001", "data_0001", "risk_0001", "decisioning_0001",
                    "marketing_0001", "origination_0002", "decisioning_0002")
LEGACY_HEAD = LEGACY_REVISIONS[-1]

#: The first revision of each branch: together they build exactly the schema of LEGACY_HEAD. Alembic records
#: only those that no other revision depends on (core_0100 and parties_0100 are implied), as after a fresh
#: upgrade, so a re-stamped database and a new one hold the same rows in alembic_version.
LEGACY_HEAD_EQUIVALENT = tuple(f"{module}_0100" for module in MODULES if module not in ("core", "parties"))


def alembic_config(url: str, script_location: str = SCRIPT_LOCATION) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, *, modules: Sequence[str] | None = None) -> None:
    """Bring the database to the newest schema of every module, or only of `modules` (each with the
    branches it depends on); a database of the retired single chain is carried over first."""
    for module in modules or ():
        if module not in MODULES:
            raise ValidationError(f"module: no schema for '{module}' (known: {', '.join(MODULES)})",
                                  field="module")
    # core's newest schema comes with any module: the kernel (the event outbox, ...) serves them all
    targets = ["core@head", *(f"{module}@head" for module in modules)] if modules else ["heads"]
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as connection:
        _adopt_legacy_chain(connection, url)
        unkeyed = _audit_chain_unkeyed(connection)
        for target in targets:
            command.upgrade(_config_on(connection, url), target)
        if unkeyed:  # this upgrade keyed the audit chain: seal the chains written before, once
            audit.seal_legacy_chains(connection)


def _audit_chain_unkeyed(connection: Connection) -> bool:
    """Whether the audit heads exist without the keyed chain's columns (a database from before core_0103)."""
    inspector = inspect(connection)
    if not inspector.has_table("audit_heads"):
        return False
    return "mac" not in {c["name"] for c in inspector.get_columns("audit_heads")}


def _adopt_legacy_chain(connection: Connection, url: str) -> None:
    """If the database was built by the retired single chain, bring it to that chain's head and re-stamp it
    onto the module branches (the stamp touches no table but alembic_version)."""
    stamped = set(MigrationContext.configure(connection).get_current_heads())
    legacy = stamped & set(LEGACY_REVISIONS)
    if not legacy:
        return
    if len(stamped) != 1:
        raise Conflict(f"alembic_version holds {', '.join(sorted(stamped))}: a revision of the retired single "
                       "chain should be alone there; fix the table by hand before upgrading")
    if legacy != {LEGACY_HEAD}:
        command.upgrade(_config_on(connection, url, LEGACY_SCRIPT_LOCATION), LEGACY_HEAD)
    command.stamp(_config_on(connection, url), list(LEGACY_HEAD_EQUIVALENT), purge=True)


def _config_on(connection: Connection, url: str, script_location: str = SCRIPT_LOCATION) -> Config:
    cfg = alembic_config(url, script_location)
    cfg.attributes["connection"] = connection
    return cfg


def current(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(MigrationContext.configure(connection).get_current_heads())


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def code_heads() -> list[str]:
    """The newest revision of every module's branch, as this version of Microlend ships them."""
    return sorted(_scripts().get_heads())


@dataclass(frozen=True)
class SchemaState:
    """How a database's schema compares with this version's: the modules whose branch is not at its head,
    and revisions the database holds that this version does not know (a newer version migrated it)."""

    stamped: tuple[str, ...]
    behind: tuple[str, ...]
    unknown: tuple[str, ...]

    @property
    def current(self) -> bool:
        return not self.behind and not self.unknown


def schema_state(connection: Connection) -> SchemaState:
    """Compare the revisions in the database's alembic_version with this version's heads."""
    return compare_with_heads(MigrationContext.configure(connection).get_current_heads())


def compare_with_heads(stamped: Iterable[str]) -> SchemaState:
    scripts = _scripts()
    found = set(stamped)
    known = {r.revision for r in scripts.walk_revisions()} | set(LEGACY_REVISIONS)
    applied = _with_ancestors(scripts, found & known - set(LEGACY_REVISIONS))
    behind = {_module_of(scripts, head) for head in set(scripts.get_heads()) - applied}
    return SchemaState(tuple(sorted(found)), tuple(sorted(behind)), tuple(sorted(found - known)))


def _with_ancestors(scripts: ScriptDirectory, revisions: set[str]) -> set[str]:
    """The revisions and every revision they stand on, through `depends_on` too (alembic_version records
    only the revisions nothing else applied depends on)."""
    seen: set[str] = set()
    todo = list(revisions)
    while todo:
        revision = todo.pop()
        if revision in seen:
            continue
        seen.add(revision)
        script = scripts.get_revision(revision)
        if script is not None:
            todo.extend(script._all_down_revisions)
    return seen


def _module_of(scripts: ScriptDirectory, revision: str) -> str:
    script = scripts.get_revision(revision)
    labels = sorted(script.branch_labels) if script is not None else []
    return labels[0] if labels else revision
