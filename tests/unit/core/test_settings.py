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
