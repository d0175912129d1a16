"""Running the sandbox with uvicorn, on this machine only unless asked to be public."""

from __future__ import annotations

from microlend.core.settings import is_loopback
from microlend.demo.sandbox.app import SandboxOptions, create_app


def check_host(host: str, public: bool) -> None:
    """The sandbox has no real secrets but answers anyone holding its key: bind beyond this machine only on
    purpose."""
    if not is_loopback(host) and not public:
        raise ValueError(
            f"host: {host} is reachable from other machines; pass --public to serve there (or bind to 127.0.0.1)"
        )


def serve(
    options: SandboxOptions, host: str = "127.0.0.1", port: int = 8700, *, public: bool = False, log_level: str = "info"
) -> None:
    """Serve the sandbox until interrupted."""
    import uvicorn

    check_host(host, public)
    if not 0 <= port <= 65535:
        raise ValueError("port: must be between 0 and 65535")
    uvicorn.run(
        create_app(options), host=host, port=port, log_level=log_level, access_log=False, timeout_graceful_shutdown=1
    )
