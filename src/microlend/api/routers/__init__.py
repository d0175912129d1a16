"""One FastAPI router per module: thin handlers that parse, call the module's service and shape the answer."""
