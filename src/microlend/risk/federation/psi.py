"""Private set intersection (私有集合求交) of hashed ID numbers, ECDH-based (openmined-psi), run once in each
direction so that each side learns which of its own IDs are shared, and nothing about the others.

In one run the *client* blinds its items with its secret key; the *server* blinds them again with its own
key, and sends its own items blinded once (the setup); the client removes its blinding and matches. With
`reveal_intersection=True` the client learns *which* of its items are shared (not only how many); the server
learns nothing beyond the client's set size. Each side is client once, so both learn the intersection and
each learns the other's set size. Items are keyed hashes of ID numbers, never the numbers."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import private_set_intersection.python as psi

from microlend.core.errors import ValidationError

#: exact matching (no false positives), so both sides end with the same intersection
_STRUCTURE = psi.DataStructure.RAW
_FPR = 1e-9


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, field: str) -> bytes:
    if not isinstance(text, str):
        raise ValidationError(f"{field}: expected base64 text", field=field)
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except ValueError:
        raise ValidationError(f"{field}: not base64", field=field) from None


class PsiClient:
    """The side that learns which of its items are shared."""

    def __init__(self, items: Sequence[str]) -> None:
        self.items = list(items)
        self._client = psi.client.CreateWithNewKey(True)

    def request(self) -> str:
        return _b64(self._client.CreateRequest(self.items).SerializeToString())

    def intersection(self, setup_b64: object, response_b64: object) -> list[int]:
        """Positions (in `items`) of the shared items."""
        setup = psi.ServerSetup()
        response = psi.Response()
        try:
            setup.ParseFromString(_unb64(setup_b64, "setup"))
            response.ParseFromString(_unb64(response_b64, "response"))
            return sorted(int(i) for i in self._client.GetIntersection(setup, response))
        except (RuntimeError, ValueError) as exc:
            raise ValidationError(f"psi: the partner's answer cannot be read ({exc})", field="psi") from None


def serve(items: Sequence[str], request_b64: object) -> tuple[str, str]:
    """The server's part for one client request: (setup, response), with a key used once."""
    server = psi.server.CreateWithNewKey(True)
    request = psi.Request()
    try:
        request.ParseFromString(_unb64(request_b64, "request"))
        n_client = len(request.encrypted_elements)
        setup = server.CreateSetupMessage(_FPR, max(n_client, 1), list(items), _STRUCTURE)
        response = server.ProcessRequest(request)
    except (RuntimeError, ValueError) as exc:
        raise ValidationError(f"psi: the request cannot be read ({exc})", field="psi") from None
    return _b64(setup.SerializeToString()), _b64(response.SerializeToString())
