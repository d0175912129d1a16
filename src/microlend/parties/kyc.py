"""Know-your-customer checks on mainland identifiers: resident ID (GB 11643), USCC (GB 32100), mobile."""

from __future__ import annotations

import re
from datetime import date

from microlend.core.errors import ValidationError

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_PHONE = re.compile(r"^1[3-9]\d{9}$")
_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")
_USCC_SHAPE = re.compile(rf"^[{_USCC_CHARS}]{{18}}$")


def resident_id_check_char(first17: str) -> str:
    """Check character of a 18-digit resident identity number (公民身份号码, GB 11643-1999)."""
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def validate_resident_id(value: str, field: str = "id_number", as_of: date | None = None) -> str:
    """Return the normalised resident ID, or raise ValidationError naming what is wrong."""
    v = value.strip().upper()
    if not _ID_SHAPE.match(v):
        raise ValidationError(f"{field}: a resident ID has 17 digits then a digit or 'X' (18 characters)",
                              field=field)
    try:
        born = date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        raise ValidationError(f"{field}: birth date {v[6:10]}-{v[10:12]}-{v[12:14]} does not exist",
                              field=field) from None
    if born.year < 1900 or (as_of is not None and born > as_of):
        raise ValidationError(f"{field}: birth date {born.isoformat()} is not plausible", field=field)
    expected = resident_id_check_char(v[:17])
    if v[17] != expected:
        # the right check character is not said: it would turn any guess into a valid-looking number
        raise ValidationError(f"{field}: the check digit does not match (a character is mistyped)", field=field)
    return v


def birth_date_of(resident_id: str) -> date:
    return date(int(resident_id[6:10]), int(resident_id[10:12]), int(resident_id[12:14]))


def uscc_check_char(first17: str) -> str:
    """Check character of a Unified Social Credit Code (统一社会信用代码, GB 32100-2015)."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def validate_uscc(value: str, field: str = "id_number") -> str:
    v = value.strip().upper()
    if not _USCC_SHAPE.match(v):
        raise ValidationError(
            f"{field}: a unified social credit code has 18 characters from 0-9 and A-Y without I, O, S, V, Z",
            field=field)
    expected = uscc_check_char(v[:17])
    if v[17] != expected:
        # the right check character is not said: it would turn any guess into a valid-looking number
        raise ValidationError(f"{field}: the check digit does not match (a character is mistyped)", field=field)
    return v


def validate_mobile(value: str, field: str = "phone") -> str:
    """Mainland mobile number: 11 digits starting 13-19; a leading +86 or 86 is accepted and dropped."""
    v = re.sub(r"[\s-]", "", value)
    if v.startswith("+86"):
        v = v[3:]
    elif v.startswith("86") and len(v) == 13:
        v = v[2:]
    if not _PHONE.match(v):
        raise ValidationError(f"{field}: a mainland mobile number has 11 digits and starts with 13-19",
                              field=field)
    return v
