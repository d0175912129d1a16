"""The feature library's building blocks (特征库): feature groups (a FROM clause over the spine and the source
tables), feature definitions (an SQL aggregate with a type and version) and the library that selects them and
builds the one query computing them. The standard library of the platform is in `feature_library.py`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from microlend.core.errors import ValidationError

FeatureType = Literal["int", "float"]
_SQL_TYPE = {"int": "BIGINT", "float": "DOUBLE"}


@dataclass(frozen=True)
class FeatureGroup:
    """Features computed from the same join: `from_sql` joins spine `s` to sources, point-in-time."""

    name: str
    from_sql: str
    sources: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class FeatureDefinition:
    """One named, versioned feature of a customer (entity = customer).

    `expression` is an SQL aggregate over its group's join; `default` is the SQL value for a customer
    with no rows (e.g. 0 for counts, NULL where "no history" must stay distinguishable)."""

    name: str
    version: int
    group: str
    expression: str
    dtype: FeatureType
    description_en: str
    description_zh: str
    default: str = "NULL"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "group": self.group,
            "dtype": self.dtype,
            "description_en": self.description_en,
            "description_zh": self.description_zh,
            "expression": " ".join(self.expression.split()),
            "default": self.default,
        }


@dataclass
class FeatureLibrary:
    """A set of feature groups and versioned definitions; names are unique per version."""

    groups: dict[str, FeatureGroup] = field(default_factory=dict)
    definitions: list[FeatureDefinition] = field(default_factory=list)

    def add_group(self, group: FeatureGroup) -> None:
        self.groups[group.name] = group

    def add(self, definition: FeatureDefinition) -> None:
        if definition.group not in self.groups:
            raise ValueError(f"feature {definition.name}: unknown group '{definition.group}'")
        if any(d.name == definition.name and d.version == definition.version for d in self.definitions):
            raise ValueError(f"feature {definition.name} v{definition.version} is defined twice")
        self.definitions.append(definition)

    def get(self, name: str, version: int | None = None) -> FeatureDefinition:
        """The named feature at a version (the latest when none is given)."""
        found = [d for d in self.definitions if d.name == name and (version is None or d.version == version)]
        if not found:
            at = f" version {version}" if version is not None else ""
            raise ValidationError(f"features: unknown feature '{name}'{at}", field="features")
        return max(found, key=lambda d: d.version)

    def latest(self) -> list[FeatureDefinition]:
        names = dict.fromkeys(d.name for d in self.definitions)
        return [self.get(n) for n in names]

    def select(self, names: Iterable[str | tuple[str, int]] | None = None) -> list[FeatureDefinition]:
        if names is None:
            return self.latest()
        out = []
        for item in names:
            out.append(self.get(*item) if isinstance(item, tuple) else self.get(item))
        return out

    def catalogue(self) -> list[dict[str, Any]]:
        """Every definition, for documentation pages and the CLI."""
        return [d.describe() for d in self.definitions]

    def build_sql(self, features: Sequence[FeatureDefinition], *, spine_sql: str | None = None) -> str:
        """One query: a CTE per group (one aggregation each) joined back to the spine, the `spine` input or,
        given `spine_sql`, that query's rows (customer_id, as_of)."""
        if not features:
            raise ValidationError("features: choose at least one feature", field="features")
        by_group: dict[str, list[FeatureDefinition]] = {}
        for f in features:
            by_group.setdefault(f.group, []).append(f)
        ctes = [] if spine_sql is None else [f"spine AS (\n{spine_sql}\n)"]
        joins = []
        columns = []
        for i, (group_name, group_features) in enumerate(by_group.items()):
            group = self.groups[group_name]
            selects = ",\n        ".join(f'{f.expression} AS "{f.name}"' for f in group_features)
            ctes.append(
                f"g{i} AS (\n    SELECT s.customer_id, s.as_of,\n        {selects}\n"
                f"    FROM {group.from_sql}\n    GROUP BY s.customer_id, s.as_of\n)"
            )
            joins.append(f"LEFT JOIN g{i} ON g{i}.customer_id = sp.customer_id AND g{i}.as_of = sp.as_of")
            for f in group_features:
                value = f'g{i}."{f.name}"'
                if f.default != "NULL":
                    value = f"coalesce({value}, {f.default})"
                columns.append(f'CAST({value} AS {_SQL_TYPE[f.dtype]}) AS "{f.name}"')
        return (
            "WITH "
            + ",\n".join(ctes)
            + "\nSELECT sp.customer_id, sp.as_of,\n    "
            + ",\n    ".join(columns)
            + "\nFROM spine sp\n"
            + "\n".join(joins)
            + "\nORDER BY sp.customer_id, sp.as_of"
        )
