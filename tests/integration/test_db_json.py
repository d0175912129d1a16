"""A value inside stored JSON text read by the database, the same on SQLite and PostgreSQL: numbers exactly as
written (never through a float), strings in their quotes, null, and nothing where the path leads nowhere."""

from decimal import Decimal

import pytest
from sqlalchemy import Engine, Text, literal, select

from microlend.core.db import json_decimal, json_scalar

DOCUMENT = ('{"application": {"term_months": 12, "purpose": "设备"}, "model": {"pd": 0.12345678901234567891, '
            '"tiny": 1e-05, "as_text": "0.0450", "none": null}}')


@pytest.mark.parametrize(("path", "text", "value"), [
    ("model.pd", "0.12345678901234567891", Decimal("0.12345678901234567891")),
    ("model.tiny", "1e-05", Decimal("0.00001")),
    ("model.as_text", '"0.0450"', Decimal("0.0450")),
    ("application.term_months", "12", Decimal(12)),
    ("model.none", "null", None),
    ("model.missing", None, None),
    ("nothing.here", None, None),
])
def test_a_value_is_read_as_written(engine: Engine, path: str, text: str | None, value: Decimal | None) -> None:
    with engine.connect() as connection:
        found = connection.execute(select(json_scalar(literal(DOCUMENT, Text()), path))).scalar_one()
    assert found == text
    assert json_decimal(found) == value


def test_a_string_keeps_its_quotes_and_its_characters(engine: Engine) -> None:
    with engine.connect() as connection:
        found = connection.execute(select(json_scalar(literal(DOCUMENT, Text()), "application.purpose"))).scalar_one()
    assert found == '"设备"'
