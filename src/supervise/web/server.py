"""`supervise serve`: the application on waitress, a production WSGI server (threads, no fork).

waitress reads a request's body before the application sees it, so the body limit is
waitress's own `max_request_body_size`: a request whose Content-Length is over it is answered
413 as soon as its headers are read, and a chunked one as soon as it passes the limit; its
answer is the same Chinese verdict (`file_too_large`) the application gives.
"""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server
from waitress.task import ErrorTask

from .app import WebConfig, create_app

log = logging.getLogger("supervise.web")

TOO_LARGE = "文件超过上限，未接收，也未保存。请删除多余的工作表、图片或空白行列后重新报送。"


class _ChineseErrorTask(ErrorTask):
    """waitress's own refusals (413 body too large, 400 bad request...) in Chinese; JSON for a
    client asking for JSON, with the verdict shape of an upload for 413."""

    def execute(self) -> None:
        e = self.request.error
        accept = str(self.request.headers.get("ACCEPT", ""))
        if e.code == 413:
            message = TOO_LARGE
        else:
            message = f"请求无法处理（{e.code}）。"
        if "application/json" in accept:
            doc: dict[str, Any] = {"error": e.code, "message": message}
            if e.code == 413:
                doc = {"file": None, "county_code": None, "period": None, "verdict": "rejected",
                       "problems": [{"code": "file_too_large", "where": "文件", "message": message,
                                     "severity": "error", "sheet": None, "cell": None, "cluster_code": None,
                                     "indicator": None}],
                       "submission_id": None, "sha256": None, "format": None, "values": 0, "received_at": None}
            body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
            content_type = "application/json"
        else:
            body = (f"<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>{e.code}</title>"
                    f"<p>{message}</p><p><a href=\"/\">返回首页</a></p></html>").encode()
            content_type = "text/html; charset=utf-8"
        self.status = f"{e.code} {e.reason}"
        self.response_headers.extend([("Content-Type", content_type), ("X-Content-Type-Options", "nosniff")])
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _Channel(HTTPChannel):
    error_task_class = _ChineseErrorTask


def make_server(home: Path, *, host: str, port: int, threads: int = 8, config: WebConfig | None = None,
                trusted_proxy: str | None = None, app: Any = None) -> Any:
    """A waitress server for the workspace (not started): `.run()` serves until interrupted."""
    app = app or create_app(home, config=config)
    limit = int(app.config["MAX_CONTENT_LENGTH"])
    kw: dict[str, Any] = {}
    if trusted_proxy:
        kw.update(trusted_proxy=trusted_proxy, trusted_proxy_count=1,
                  trusted_proxy_headers={"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})
    server = create_server(app, host=host, port=port, threads=threads, ident="supervise",
                           max_request_body_size=limit + 1, channel_timeout=120, connection_limit=200, **kw)
    servers = [s for s in server.map.values() if isinstance(s, BaseWSGIServer)] if isinstance(
        server, MultiSocketServer) else [server]
    for s in servers:
        s.channel_class = _Channel
    return server


def addresses(server: Any) -> list[tuple[str, int]]:
    if isinstance(server, MultiSocketServer):
        return [(str(h), int(p)) for h, p in server.effective_listen]
    return [(str(server.effective_host), int(server.effective_port))]


def serve(home: Path, *, host: str = "127.0.0.1", port: int = 8000, threads: int = 8,
          config: WebConfig | None = None, trusted_proxy: str | None = None,
          ready: Callable[[list[tuple[str, int]]], None] | None = None) -> None:
    """Serve until SIGINT or SIGTERM (then the requests in progress finish)."""
    server = make_server(home, host=host, port=port, threads=threads, config=config, trusted_proxy=trusted_proxy)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        if ready is not None:
            ready(addresses(server))
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
        log.info("stopped")
