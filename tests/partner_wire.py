"""A data partner's service reached in process, behind the JSON round trip the wire would carry."""

from __future__ import annotations

import json
from typing import Any

from microlend.risk.federation.partner import PartnerService


class InProcess:
    """The partner's service behind a JSON round trip, as the wire would carry it."""

    def __init__(self, service: PartnerService) -> None:
        self.service = service

    def call(self, message_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        answer = self.service.handle(message_type, json.loads(json.dumps(payload)))
        return json.loads(json.dumps(answer))  # type: ignore[no-any-return]
