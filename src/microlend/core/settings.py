"""Settings from the environment (prefix MICROLEND_), with safe local defaults."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: the key of old local installations; refused wherever a secret must be real
LOCAL_SECRET = "local-development-secret-change-me"
#: where a local installation keeps its own random key (0600), made on first use
SECRET_FILE = "secret_key"
MIN_SECRET_LENGTH = 32
log = logging.getLogger("microlend.settings")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MICROLEND_", env_file=".env", extra="ignore")

    mode: Literal["local", "test", "production"] = "local"
    data_dir: Path = Path("var")
    database_url: str = ""
    # signs tokens and keys personal data at rest; outside production, when not set, the data dir's own
    # random key (`<data_dir>/secret_key`)
    secret_key: str = ""
    # the key of the audit chain's HMACs (core/audit.py), held outside the database: whoever can write the
    # database but not read this key cannot rewrite the trail unseen. Empty in local and test mode: a random
    # key is kept in `data_dir/audit.key` (created 0600 on first use). Required in production.
    audit_key: str = ""
    # lifetime of an API bearer token
    access_token_minutes: int = 8 * 60
    # a web session (core/sessions.py) ends after this long without a request, and this long after sign-in
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_lifetime_minutes: int = Field(default=8 * 60, ge=1, le=7 * 24 * 60)
    # the origins (scheme://host[:port]) pages may be posted from besides the address a request came to, e.g.
    # the public https address in front of a proxy: JSON list, MICROLEND_TRUSTED_ORIGINS='["https://x.example"]'
    trusted_origins: list[str] = Field(default_factory=list)
    # the API documentation (/docs, /openapi.json): on unless set, except in production mode
    api_docs: bool | None = None
    # how long a server process trusts a user it has re-read for a token before reading it again: a
    # deactivated user or changed roles apply within this time everywhere (0 re-reads on every request)
    user_recheck_seconds: float = Field(default=1.0, ge=0, le=60)
    # decisions a server process works on at once (more wait their turn): they are short and CPU-bound,
    # so more threads would only queue for the interpreter lock while holding database locks
    decision_threads: int = Field(default=2, ge=1, le=64)
    # sign-in throttle (core/login_throttle.py): an account's failures before its backoff starts, the first
    # wait (doubling up to the maximum), one client's failures across usernames, the quiet time that resets
    login_max_failures: int = Field(default=5, ge=1)
    login_backoff_seconds: int = Field(default=15, ge=1)
    login_backoff_max_seconds: int = Field(default=300, ge=1)
    login_client_max_failures: int = Field(default=10, ge=1)
    login_window_seconds: int = Field(default=300, ge=1)
    default_currency: str = "CNY"
    default_locale: str = "zh_CN"
    page_size_max: int = 200
    # the largest request body the API and the pages accept (413 beyond it); dataset uploads have their own
    # limit (data.service.MAX_UPLOAD_BYTES)
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    # log lines as one JSON object each (for a log collector) or as text; left empty: json in production,
    # text elsewhere
    log_format: Literal["json", "text", ""] = ""
    # the bearer token a scraper sends for /metrics; without one /metrics answers only to this machine
    # (127.0.0.1, ::1), and in production not at all
    metrics_token: str = ""

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'microlend.db').as_posix()}"
        if not self.log_format:
            self.log_format = "json" if self.mode == "production" else "text"
        if self.mode == "production" and self.secret_key in ("", LOCAL_SECRET):
            raise ValueError("MICROLEND_SECRET_KEY must be set outside local mode")
        if self.metrics_token and len(self.metrics_token) < 16:
            raise ValueError("MICROLEND_METRICS_TOKEN must be at least 16 characters")
        if self.mode == "production" and len(self.secret_key) < MIN_SECRET_LENGTH:
            raise ValueError(f"MICROLEND_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters")
        if self.api_docs is None:
            self.api_docs = self.mode != "production"
        self.trusted_origins = [o.rstrip("/").lower() for o in self.trusted_origins]
        if self.mode == "production" and len(self.audit_key) < 32:
            raise ValueError("MICROLEND_AUDIT_KEY must be set outside local mode, at least 32 characters")
        if self.mode == "production" and self.audit_key == self.secret_key:
            raise ValueError("MICROLEND_AUDIT_KEY must differ from MICROLEND_SECRET_KEY")
        if not self.secret_key:
            self.secret_key = data_dir_secret(self.data_dir)
            self.model_fields_set.discard("secret_key")  # made here, not given
        return self

    @property
    def has_real_secret(self) -> bool:
        """The secret was given (MICROLEND_SECRET_KEY), is long enough and is not the old public default: what
        a server reachable from other machines needs."""
        given = "secret_key" in self.model_fields_set
        return given and len(self.secret_key) >= MIN_SECRET_LENGTH and self.secret_key != LOCAL_SECRET


def data_dir_secret(data_dir: Path) -> str:
    """The data dir's own random key, made (readable by its owner only) the first time it is needed. A data
    dir that already holds a database made before there were such keys keeps the old key, so its personal data
    stays readable; it is marked in the log, and such a data dir should be made afresh."""
    found = data_dir_secret_if_any(data_dir)
    if found is not None:
        return found
    legacy = (data_dir / "microlend.db").exists()
    secret = LOCAL_SECRET if legacy else secrets.token_urlsafe(48)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        scratch = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        try:
            os.link(scratch, data_dir / SECRET_FILE)  # atomic: a process starting at once reads the winner's
        except FileExistsError:
            pass
        finally:
            scratch.unlink()
    except OSError as exc:
        raise ValueError(f"MICROLEND_SECRET_KEY is not set and the data dir cannot keep one: {exc}") from exc
    if legacy:
        log.warning("the database in %s was made with the old public local key, which it keeps; "
                    "make a new data dir to get a key of its own", data_dir)
    return data_dir_secret_if_any(data_dir) or secret


def data_dir_secret_if_any(data_dir: Path) -> str | None:
    try:
        return (data_dir / SECRET_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def is_loopback(host: str) -> bool:
    """`host` (what a server binds to) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
