"""The ASGI entry point for servers: `uvicorn microlend.api.main:app`."""

from microlend.api.app import create_app

app = create_app()
