"""Sandbox profiles: what kind of applicant a subject id is, fixed by the sha256 of the id and a seed, so tests
and the demo can pick applicants of a known kind."""

from __future__ import annotations

import hashlib
import random
from datetime import date, timedelta
from typing import Literal

from microlend.demo import identities

#: Share of subjects per profile (sums to 1). `good` pays and grows; `average` is noisier; `declining` sells
#: over 30 % less than a year before; `seasonal` has a strong season; `overdue` has a bureau overdue history;
#: `enforcement` an open dishonest court case; `shell` issues invoices but declares (next to) no sales; `thin`
#: is a new business (under 12 months).
PROFILE_SHARES: dict[str, float] = {
    "good": 0.60,
    "average": 0.12,
    "declining": 0.06,
    "seasonal": 0.06,
    "overdue": 0.06,
    "enforcement": 0.04,
    "shell": 0.03,
    "thin": 0.03,
}
PROFILES = tuple(PROFILE_SHARES)
#: Profiles a person (resident ID) can have: a person's shell draw counts as `average`.
PERSON_PROFILES = tuple(p for p in PROFILES if p != "shell")
DEFAULT_SEED = 0


def profile_of(subject: str, seed: int = DEFAULT_SEED) -> str:
    """The profile of a subject id (a USCC or a resident ID) under `seed`."""
    sid = subject.strip().upper()
    u = int.from_bytes(hashlib.sha256(f"{seed}:{sid}".encode()).digest()[:8], "big") / 2**64
    profile = PROFILES[-1]
    for name, share in PROFILE_SHARES.items():
        if u < share:
            profile = name
            break
        u -= share
    if profile == "shell" and _is_person(sid):
        return "average"
    return profile


def _is_person(sid: str) -> bool:
    """A resident ID (17 digits and a check character), not a USCC (whose registration code 9 comes first)."""
    return sid[:1] != "9" and sid[:17].isdigit() and len(sid) == 18


def subject_with(
    profile: str, rng: random.Random, kind: Literal["business", "person"] = "business", seed: int = DEFAULT_SEED
) -> str:
    """A valid synthetic id (USCC for a business, resident ID for a person) whose profile is `profile`."""
    allowed = PROFILES if kind == "business" else PERSON_PROFILES
    if profile not in allowed:
        raise ValueError(f"profile: '{profile}' is not a {kind} profile; one of {', '.join(allowed)}")
    if kind not in ("business", "person"):
        raise ValueError(f"kind: '{kind}' is neither 'business' nor 'person'")
    for _ in range(100_000):
        if kind == "business":
            sid = identities.uscc(rng)
        else:
            sid = identities.resident_id(rng, date(1965, 1, 1) + timedelta(days=rng.randrange(35 * 365)))
        if profile_of(sid, seed) == profile:
            return sid
    raise RuntimeError(f"no {kind} with profile '{profile}' in 100 000 draws")  # pragma: no cover
