"""The password policy: each rule with a password that passes and one that fails, named in the message."""

import pytest

from microlend.core.errors import ValidationError
from microlend.core.passwords import check_password, common_passwords


def _refusal(password: str, username: str = "") -> str:
    with pytest.raises(ValidationError) as exc:
        check_password(password, username)
    assert exc.value.field == "password"
    return exc.value.message


def test_at_least_ten_characters() -> None:
    check_password("ten-chars!")
    assert "at least 10 characters" in _refusal("nine-char")
    assert "at least 10 characters" in _refusal("12345678")


def test_not_only_whitespace() -> None:
    check_password("  spaced out words  ")
    assert "whitespace" in _refusal(" " * 12)
    assert "whitespace" in _refusal(" " * 8)
    assert "whitespace" in _refusal("\t\n  \t    ")


def test_not_a_common_password() -> None:
    check_password("tulip-ledger-88")
    for common in ("password123", "Password123", "qwertyuiop", "1234567890", " iloveyou123 "):
        assert "most common passwords" in _refusal(common), common


def test_not_containing_the_username() -> None:
    check_password("tulip-ledger-88", "zhao.wei@bank")
    assert "must not contain the username" in _refusal("my-ZHAO.WEI@bank-pw", "zhao.wei@bank")
    assert "must not contain the username" in _refusal("13800138000", "13800138000@ruralbank")
    assert "must not contain the username" in _refusal("Officer-7-1234", "officer-7")


def test_the_passwords_of_the_demo_and_the_tests_pass() -> None:
    for password in ("microlend-demo", "correct-horse-1", "borrower-pass-1", "long-enough-1"):
        check_password(password, "officer@demo")


def test_the_bundled_list_is_small_and_lower_case() -> None:
    words = common_passwords()
    assert 500 < len(words) < 5000
    assert "password" in words and "123456" in words
    assert all(w == w.lower() and w.strip() == w for w in words)
