"""A real SMTP server on 127.0.0.1 (aiosmtpd) that tests can stop and start again."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from supervise.workspace import Workspace


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]


@dataclass
class _Handler:
    server: SmtpServer

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address in self.server.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.server.lock:
            self.server.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(_Handler(self), hostname=self.host, port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def running(self) -> bool:
        return self.controller is not None

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]

    def settings_toml(self, *, recipients: list[str], admin: str = "") -> str:
        """[smtp] and [delivery] sections pointing at this server."""
        rec = ", ".join(f'"{r}"' for r in recipients)
        return (
            f'[smtp]\nhost = "{self.host}"\nport = {self.port}\nsender = "bulletin@bureau.example"\n'
            f"timeout_seconds = 5\n\n"
            f'[delivery]\nrecipients = [{rec}]\nadmin = "{admin}"\nattempts = 2\nretry_delay_seconds = 0\n'
        )


# ------------------------------------------------------------------ fixtures

RECIPIENTS = ["chief@bureau.example", "office@bureau.example"]
ADMIN = "admin@bureau.example"


def running_smtp() -> Iterator[SmtpServer]:
    """Body of the `smtp` fixtures: a server on a free loopback port, stopped at the end.

    Tests stop() and start() it to simulate an outage.
    """
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def configure(ws: Workspace, server: SmtpServer, *, recipients: list[str] | None = None,
              admin: str = ADMIN, extra: str = "") -> Workspace:
    """Point the workspace's mail at `server`; returns a fresh Workspace (settings reloaded)."""
    text = server.settings_toml(recipients=RECIPIENTS if recipients is None else recipients, admin=admin)
    text += "\n[jobs]\nlock_wait_seconds = 0\n" + extra
    ws.settings_path.write_text(text, encoding="utf-8")
    return Workspace(ws.home)
