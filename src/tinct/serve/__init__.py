"""The web app and HTTP API behind ``tinct serve``: ``create_app(ServeConfig(...))`` builds it."""
from .app import ServeConfig, create_app, run_server

__all__ = ["ServeConfig", "create_app", "run_server"]
