"""How a batch job reports progress, shared by every engine."""

from __future__ import annotations

from collections.abc import Callable

#: Called after each chunk with (rows done, rows in all); total is None when not known in advance.
Progress = Callable[[int, int | None], None]
