"""The helpers every adapter shares: user errors in the CLI, amounts and rates in JSON."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
import typer

from microlend.api.schemas import DecimalStr, MoneyStr, PublicSchema
from microlend.cli.common import guarded, user_errors
from microlend.core.errors import NotFound


class TestGuarded:
    def test_a_domain_error_leaves_with_exit_code_2_and_its_message(self, capsys: pytest.CaptureFixture[str]) -> None:
        @user_errors
        def command() -> None:
            raise NotFound("tenant 'nowhere' not found")

        with pytest.raises(typer.Exit) as exit_:
            command()
        assert exit_.value.exit_code == 2
        assert "error: tenant 'nowhere' not found" in capsys.readouterr().err

    def test_a_message_with_brackets_is_printed_as_written(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(typer.Exit), guarded():
            raise NotFound("column '[amount]' is missing")
        assert "column '[amount]' is missing" in capsys.readouterr().err

    def test_an_unreadable_file_names_the_file(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(typer.Exit), guarded():
            open("/nonexistent/loans.csv")  # noqa: SIM115
        assert "/nonexistent/loans.csv: No such file or directory" in capsys.readouterr().err

    def test_library_errors_are_user_errors_only_when_asked(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(ValueError, match="could not convert"), guarded():
            raise ValueError("could not convert string to float: 'abc'")
        with pytest.raises(typer.Exit) as exit_, guarded(library_errors=True):
            raise ValueError("could not convert string to float: 'abc'")
        assert exit_.value.exit_code == 2
        assert "the data cannot be used: could not convert string to float" in capsys.readouterr().err


@dataclass(frozen=True)
class _FeeView:
    amount: Decimal
    rate: Decimal
    note: str


class _FeePublic(PublicSchema):
    amount: MoneyStr
    rate: DecimalStr
    note: str


class TestMoneyStrings:
    def test_amounts_read_to_the_cent_and_rates_exactly_as_stored(self) -> None:
        view = _FeeView(Decimal("888.5"), Decimal("0.1800"), "upfront")
        assert _FeePublic.of(view).model_dump(mode="json") == {"amount": "888.50", "rate": "0.1800", "note": "upfront"}

    def test_a_dumped_body_read_again_gives_the_same_json(self) -> None:
        once = _FeePublic.of(_FeeView(Decimal("1E+3"), Decimal("0.05"), "")).model_dump(mode="json")
        assert once["amount"] == "1000.00"
        assert _FeePublic.model_validate(once).model_dump(mode="json") == once
