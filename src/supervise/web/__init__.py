"""The web face of supervise: a county portal and a staff console (`supervise serve`).

    create_app(home)          the Flask application of a workspace
    serve(home, host, port)   that application on waitress, a production WSGI server

Accounts (`users`) need no Flask: the CLI's `supervise users` calls them too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import WebConfig, create_app
    from .server import serve

__all__ = ["WebConfig", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    # Flask and waitress are imported when the web is used, not by `supervise users`.
    if name in ("WebConfig", "create_app"):
        from . import app

        return getattr(app, name)
    if name == "serve":
        from .server import serve

        return serve
    raise AttributeError(name)
