import pytest
from pydantic import ValidationError

from microlend.core.settings import LOCAL_SECRET, Settings


def test_local_mode_defaults_to_an_sqlite_file_under_the_data_dir() -> None:
    s = Settings(mode="local", data_dir="somewhere", database_url="")
    assert s.database_url == "sqlite:///somewhere/microlend.db"


def test_production_refuses_the_local_secret() -> None:
    with pytest.raises(ValidationError, match="MICROLEND_SECRET_KEY must be set"):
        Settings(mode="production", secret_key=LOCAL_SECRET, database_url="postgresql://db/x")


def test_production_refuses_a_short_secret() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(mode="production", secret_key="short", database_url="postgresql://db/x")


def test_logs_are_json_in_production_and_text_elsewhere_unless_chosen() -> None:
    secret = "s" * 40
    assert Settings(mode="production", secret_key=secret, audit_key="a" * 40,
                    database_url="postgresql://db/x").log_format == "json"
    assert Settings(mode="local", database_url="sqlite://").log_format == "text"
    assert Settings(mode="local", database_url="sqlite://", log_format="json").log_format == "json"
    with pytest.raises(ValidationError):
        Settings(mode="local", database_url="sqlite://", log_format="xml")


def test_a_metrics_token_is_long_enough_to_be_a_secret() -> None:
    with pytest.raises(ValidationError, match="MICROLEND_METRICS_TOKEN must be at least 16"):
        Settings(mode="local", database_url="sqlite://", metrics_token="short")
    assert Settings(mode="local", database_url="sqlite://", metrics_token="x" * 16).metrics_token == "x" * 16
GOOD_SECRET = "a-production-secret-of-enough-length-0123456789"


def test_production_refuses_an_absent_or_short_audit_key() -> None:
    with pytest.raises(ValidationError, match="MICROLEND_AUDIT_KEY must be set"):
        Settings(mode="production", secret_key=GOOD_SECRET, audit_key="", database_url="postgresql://db/x")
    with pytest.raises(ValidationError, match="MICROLEND_AUDIT_KEY must be set"):
        Settings(mode="production", secret_key=GOOD_SECRET, audit_key="short", database_url="postgresql://db/x")


def test_production_refuses_the_secret_key_as_the_audit_key() -> None:
    with pytest.raises(ValidationError, match="must differ from MICROLEND_SECRET_KEY"):
        Settings(mode="production", secret_key=GOOD_SECRET, audit_key=GOOD_SECRET, database_url="postgresql://db/x")


def test_production_takes_a_separate_audit_key() -> None:
    s = Settings(mode="production", secret_key=GOOD_SECRET, audit_key="b" * 40, database_url="postgresql://db/x")
    assert s.audit_key == "b" * 40
