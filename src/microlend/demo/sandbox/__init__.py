"""Provider sandboxes: the six external data providers of a small-business credit decision (credit bureau, tax
declarations, e-invoices, merchant acquiring, company registry, court enforcement) simulated as one HTTP server,
so the demo and the tests call real HTTP endpoints.

- `profile_of(subject)` / `subject_with(profile, rng, kind)`: what kind of applicant an id is, and an id of a kind.
- `create_app(SandboxOptions(...))`: the ASGI app; `serve(...)` runs it with uvicorn (`microlend sandbox serve`).
- `process.start_sandbox(...)`: the sandbox in a process of its own, for tests and the demo.
- `providers.payload(kind, subject, as_of, seed=..., anchor=...)`: a provider's body without HTTP.

The world is deterministic per subject id and seed, and point in time: a call as of an earlier day sees a
prefix of the history a later call sees, never anything after its day.
"""

from __future__ import annotations

from microlend.demo.sandbox.app import SandboxOptions, create_app, parse_latency
from microlend.demo.sandbox.profiles import DEFAULT_SEED, PROFILE_SHARES, PROFILES, profile_of, subject_with
from microlend.demo.sandbox.providers import KINDS, PATHS, payload
from microlend.demo.sandbox.server import serve

__all__ = [
    "DEFAULT_SEED",
    "KINDS",
    "PATHS",
    "PROFILES",
    "PROFILE_SHARES",
    "SandboxOptions",
    "create_app",
    "parse_latency",
    "payload",
    "profile_of",
    "serve",
    "subject_with",
]
