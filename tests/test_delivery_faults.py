"""Mail servers that misbehave: a scripted SMTP peer on 127.0.0.1, real sockets, no mocks.

The peer answers each command with a scripted reply (by verb, or by recipient for RCPT and the
end of DATA), can send its replies one byte at a time, and can stall a TLS handshake.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy

import pytest

from supervise.delivery import DeliveryError, Outbox, SmtpSettings, build_message, send
from supervise.jobs import JobFailed, collect
from supervise.jobs.locks import WORKSPACE_LOCK, hold
from supervise.periods import TZ
from supervise.store import runs
from supervise.workspace import Workspace, WorkspaceError, load_settings

from .test_jobs_support import FAKE_STEPS

NOW = datetime(2025, 4, 6, 8, 0, tzinfo=TZ)
CHIEF = "chief@bureau.example"
ADMIN = "admin@bureau.example"
SENDER = "bulletin@bureau.example"
TITLE = "关于2025年3月全市县域特色产业集群发展情况的通报"
DRIP = 1.5  # seconds between two bytes of a dripping peer
# A TLS record header announcing 16 KiB of handshake, which the peer then drips one byte at a time.
TLS_STALL = b"\x16\x03\x03\x40\x00"


# ------------------------------------------------------------------ the peer


@dataclass
class Peer:
    """A tiny SMTP server on a free loopback port, scripted to misbehave."""

    replies: dict[str, str] = field(default_factory=dict)   # by verb; "" = say nothing at all
    rcpt: dict[str, str] = field(default_factory=dict)      # RCPT reply by recipient
    end: dict[str, str] = field(default_factory=dict)       # reply after the message, by recipient
    drip: bool = False           # every reply (the greeting too) one byte every DRIP seconds
    tls: str = ""                # "implicit": stall the handshake at once; "starttls": after STARTTLS
    accepted: list[tuple[str, bytes]] = field(default_factory=list)  # (recipient, message) answered 2xx
    sessions: int = 0
    port: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _conns: list[socket.socket] = field(default_factory=list)
    _listener: socket.socket | None = None

    def start(self) -> Peer:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.2)
        self._listener, self.port = listener, listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for conn in [*self._conns, *([self._listener] if self._listener else [])]:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def to(self, address: str) -> list[bytes]:
        return [m for r, m in self.accepted if r == address]

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.sessions += 1
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _say(self, conn: socket.socket, text: str) -> None:
        data = text.replace("\n", "\r\n").encode() + b"\r\n"
        if not self.drip:
            conn.sendall(data)
            return
        for i in range(len(data)):
            if self._stop.is_set():
                return
            conn.sendall(data[i:i + 1])
            self._stop.wait(DRIP)

    def _stall_tls(self, conn: socket.socket) -> None:
        conn.sendall(TLS_STALL)
        while not self._stop.wait(DRIP):
            conn.sendall(b"\x00")

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn, conn.makefile("rb") as f:
            if self.tls == "implicit":
                self._stall_tls(conn)
                return
            self._say(conn, "220 peer.test ESMTP")
            rcpts: list[str] = []
            while (line := f.readline()) and not self._stop.is_set():
                verb = line.decode("ascii", "replace").split(" ")[0].upper().strip()
                if verb in ("EHLO", "HELO"):
                    self._say(conn, "250-peer.test\n250 STARTTLS" if self.tls == "starttls" else "250 peer.test")
                elif verb == "STARTTLS":
                    self._say(conn, "220 go ahead")
                    self._stall_tls(conn)
                    return
                elif verb == "MAIL":
                    rcpts = []
                    self._say(conn, self.replies.get("MAIL", "250 OK"))
                elif verb == "RCPT":
                    who = line.decode().partition("<")[2].partition(">")[0]
                    reply = self.rcpt.get(who, "250 OK")
                    if reply.startswith("2"):
                        rcpts.append(who)
                    self._say(conn, reply)
                elif verb == "DATA":
                    self._say(conn, "354 go ahead")
                    body = b"".join(iter(lambda: f.readline(), b".\r\n"))
                    reply = next((self.end[r] for r in rcpts if r in self.end), "250 accepted")
                    if reply.startswith("2"):
                        self.accepted += [(r, body) for r in rcpts]
                    self._say(conn, reply)
                elif verb == "QUIT":
                    reply = self.replies.get("QUIT", "221 bye")
                    if reply:
                        self._say(conn, reply)
                    else:  # silence: wait for the client to hang up
                        f.read()
                    return
                else:
                    self._say(conn, "250 OK")


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer().start()
    yield p
    p.stop()


def _settings(peer: Peer, *, timeout: float = 2, ssl: bool = False, starttls: bool = False) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=peer.port, sender=SENDER, timeout=timeout, ssl=ssl,
                        starttls=starttls)


def _configure(ws: Workspace, peer: Peer, *, timeout: float = 2, attempts: int = 2, admin: str = ADMIN) -> Workspace:
    ws.settings_path.write_text(
        f'[smtp]\nhost = "127.0.0.1"\nport = {peer.port}\nsender = "{SENDER}"\ntimeout_seconds = {timeout}\n\n'
        f'[delivery]\nrecipients = ["{CHIEF}"]\nadmin = "{admin}"\nattempts = {attempts}\n'
        f"retry_delay_seconds = 0\n\n[jobs]\nlock_wait_seconds = 0\n",
        encoding="utf-8",
    )
    return Workspace(ws.home)


def _queue(box: Outbox, recipient: str = CHIEF, content_hash: str = "h1") -> runs.Delivery:
    d = box.queue(kind="bulletin", period="2025-03", recipient=recipient, subject=TITLE,
                  content_hash=content_hash, message=lambda: build_message(
                      sender=SENDER, recipient=recipient, subject=TITLE, text="正文", now=NOW), now=NOW)
    assert d is not None
    return d


# ------------------------------------------------------------------ 1. QUIT after acceptance


@pytest.mark.parametrize("quit_reply", ["500 5.5.1 QUIT? never heard of it", "421 4.3.0 closing", ""])
def test_a_message_the_server_accepted_is_sent_whatever_quit_gets(
    ws: Workspace, peer: Peer, quit_reply: str
) -> None:
    """250 after DATA is success: a bad (or no) answer to QUIT must not make it a retry, a duplicate."""
    peer.replies["QUIT"] = quit_reply
    send(_settings(peer), b"Subject: x\r\n\r\nx\r\n", CHIEF)  # no DeliveryError
    assert len(peer.to(CHIEF)) == 1

    ws = _configure(ws, peer, attempts=3)
    conn = ws.connect()
    box = Outbox.open(ws, conn, sleep=lambda s: None)
    d = _queue(box)
    outcome = box.deliver(d, NOW)
    assert outcome.state == "sent" and outcome.error is None
    assert len(peer.to(CHIEF)) == 2  # the one above and this one: not retried
    row = runs.get_delivery(conn, d.id)
    assert row is not None and row.state == "sent" and row.attempts == 1
    assert not (ws.home / f"outbox/mail/{d.id}.eml").exists()
    assert box.flush(NOW) == []
    conn.close()


# ------------------------------------------------------------------ 2. a dripping server


@pytest.mark.parametrize("tls", ["", "implicit", "starttls"])
def test_a_dripping_server_is_cut_at_the_timeout_for_the_whole_conversation(peer: Peer, tls: str) -> None:
    """Each byte comes within the socket timeout, so only a deadline on the whole talk stops it."""
    peer.drip = tls == ""
    peer.tls = tls
    started = time.monotonic()
    with pytest.raises(DeliveryError, match=r"2 ?s.*timeout_seconds") as failed:
        send(_settings(peer, ssl=tls == "implicit", starttls=tls == "starttls"), b"Subject: x\r\n\r\nx\r\n", CHIEF)
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 4.5, elapsed
    assert not failed.value.permanent  # a slow server is worth another try later
    assert peer.accepted == []


def test_a_dripping_server_fails_the_collect_in_time_keeps_the_mail_and_frees_the_lock(
    ws: Workspace, peer: Peer
) -> None:
    ws = _configure(ws, peer, attempts=1, admin="")
    conn = ws.connect()
    d = _queue(Outbox.open(ws, conn))
    conn.close()
    peer.drip = True

    started = time.monotonic()
    with pytest.raises(JobFailed, match="not delivered") as failed:
        collect(ws, NOW, steps=FAKE_STEPS)
    assert time.monotonic() - started < 6
    [outcome] = failed.value.result.deliveries
    assert outcome.state == "failed" and "timeout_seconds" in (outcome.error or "")

    conn = ws.connect()
    row = runs.get_delivery(conn, d.id)
    [record] = runs.recent_runs(conn, job="collect")
    conn.close()
    assert row is not None and row.state == "failed" and (ws.home / str(row.message_path)).exists()
    assert record.state == "error" and "timeout_seconds" in (record.error or "")
    # Nothing is left holding the job's lock or the workspace's.
    for name in ("collect", WORKSPACE_LOCK):
        with hold(ws.home, name, wait=0):
            pass

    peer.drip = False  # the server recovers: the next collect sends it, once
    result = collect(ws, NOW, steps=FAKE_STEPS)
    assert [(o.recipient, o.state) for o in result.deliveries] == [(CHIEF, "sent")]
    assert len(peer.to(CHIEF)) == 1


# ------------------------------------------------------------------ 3. permanent refusals


@pytest.mark.parametrize("where, reply", [("end", "552 5.3.4 message too big"), ("rcpt", "550 5.1.1 no such user")])
def test_a_permanent_refusal_is_given_up_after_three_tries_reported_and_never_sent(
    ws: Workspace, peer: Peer, where: str, reply: str
) -> None:
    getattr(peer, where)[CHIEF] = reply
    ws = _configure(ws, peer, attempts=3)
    conn = ws.connect()
    box = Outbox.open(ws, conn, sleep=lambda s: None)
    d = _queue(box)

    first = box.deliver(d, NOW)
    assert first.state == "failed" and not first.permanent and reply[:3] in (first.error or "")
    assert peer.sessions == 1  # a 5xx is not tried again in the same run
    assert peer.to(ADMIN) == []

    [second] = box.flush(NOW)
    assert second.state == "failed" and not second.permanent
    [third] = box.flush(NOW)
    assert third.state == "failed" and third.permanent and "放弃" in (third.error or "")
    assert peer.sessions == 4  # three tries, and the alert to the administrator

    # Given up: no more tries, neither by the hourly collect nor by another flush ...
    assert Outbox.open(ws, conn).flush(NOW) == []
    assert peer.sessions == 4
    row = runs.get_delivery(conn, d.id)
    assert row is not None and row.state == "failed" and row.attempts == 3
    assert (ws.home / str(row.message_path)).exists()  # kept, for a deliberate new try
    # ... never counted as sent ...
    assert peer.to(CHIEF) == [] and runs.find_deliveries(
        conn, kind="bulletin", period="2025-03", recipient=CHIEF, states=("sent",)) == []
    # ... and the administrator is told, once, what was given up and why.
    [raw] = peer.to(ADMIN)
    alert = message_from_bytes(raw, policy=policy.default)
    assert "放弃" in str(alert["Subject"]) and CHIEF in str(alert["Subject"])
    body = alert.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert CHIEF in body and reply in body and TITLE in body
    conn.close()


def test_a_collect_reports_a_permanent_refusal_as_a_failure_not_a_success(ws: Workspace, peer: Peer) -> None:
    peer.rcpt[CHIEF] = "550 5.1.1 no such user"
    ws = _configure(ws, peer, attempts=1)
    conn = ws.connect()
    _queue(Outbox.open(ws, conn))
    conn.close()
    for _ in range(2):
        with pytest.raises(JobFailed):
            collect(ws, NOW, steps=FAKE_STEPS)
    with pytest.raises(JobFailed, match="not delivered") as failed:
        collect(ws, NOW, steps=FAKE_STEPS)
    [outcome] = [o for o in failed.value.result.deliveries if o.recipient == CHIEF]
    assert outcome.state == "failed" and outcome.permanent and outcome.to_json()["permanent"] is True
    collect(ws, NOW, steps=FAKE_STEPS)  # given up: the next collect has nothing to send, and succeeds


def test_queueing_the_same_mail_again_gives_a_refused_mail_one_new_try(ws: Workspace, peer: Peer) -> None:
    """After fixing the cause the bureau runs the job again by hand: that run tries once more."""
    peer.rcpt[CHIEF] = "550 5.1.1 no such user"
    ws = _configure(ws, peer, attempts=1)
    conn = ws.connect()
    box = Outbox.open(ws, conn)
    d = _queue(box)
    box.deliver(d, NOW)
    box.flush(NOW)
    [given_up] = box.flush(NOW)
    assert given_up.permanent
    sessions = peer.sessions

    del peer.rcpt[CHIEF]  # the mailbox now exists
    box = Outbox.open(ws, conn)
    again = _queue(box)
    assert again.id == d.id
    [sent] = box.flush(NOW)
    assert sent.state == "sent" and len(peer.to(CHIEF)) == 1
    assert peer.sessions == sessions + 1
    conn.close()


@pytest.mark.parametrize("where, reply", [("end", "451 4.3.0 try again later"), ("rcpt", "450 4.2.1 mailbox busy")])
def test_a_temporary_refusal_stays_retryable(ws: Workspace, peer: Peer, where: str, reply: str) -> None:
    getattr(peer, where)[CHIEF] = reply
    ws = _configure(ws, peer, attempts=2)
    conn = ws.connect()
    box = Outbox.open(ws, conn, sleep=lambda s: None)
    d = _queue(box)
    assert box.deliver(d, NOW).state == "failed"
    assert peer.sessions == 2  # 4xx: tried again within the run
    for _ in range(3):
        [again] = box.flush(NOW)
        assert again.state == "failed" and not again.permanent
    getattr(peer, where).clear()
    [sent] = box.flush(NOW)
    assert sent.state == "sent" and len(peer.to(CHIEF)) == 1
    assert peer.to(ADMIN) == []
    conn.close()


def test_a_mail_whose_file_is_gone_is_given_up_at_once(ws: Workspace, peer: Peer) -> None:
    ws = _configure(ws, peer)
    conn = ws.connect()
    box = Outbox.open(ws, conn)
    d = _queue(box)
    (ws.home / str(d.message_path)).unlink()
    outcome = box.deliver(d, NOW)
    assert outcome.state == "failed" and outcome.permanent and "missing" in (outcome.error or "")
    assert Outbox.open(ws, conn).flush(NOW) == []
    [raw] = peer.to(ADMIN)
    alert = message_from_bytes(raw, policy=policy.default)
    assert "missing" in alert.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert peer.to(CHIEF) == []
    conn.close()


# ------------------------------------------------------------------ 4. addresses in supervise.toml


@pytest.mark.parametrize(
    "line, shown",
    [
        ('recipients = ["chief@bureau.example", "<evil>@x.y"]', "'<evil>@x.y'"),
        ('recipients = ["chief@bureau.example\\r\\nBcc: all@x.y"]', r"'chief@bureau.example\r\nBcc: all@x.y'"),
        ('recipients = ["张三 <chief@bureau.example>"]', "'张三 <chief@bureau.example>'"),
        ('recipients = ["chief"]', "'chief'"),
        ("recipients = [1]", "1"),
        ('admin = "it@bureau.example\\n"', r"'it@bureau.example\n'"),
        ('admin = "it at bureau"', "'it at bureau'"),
    ],
)
def test_a_bad_address_in_the_settings_is_refused_when_they_are_loaded(
    ws: Workspace, line: str, shown: str
) -> None:
    ws.settings_path.write_text(f"[delivery]\n{line}\n", encoding="utf-8")
    key = line.split(" ", 1)[0]
    with pytest.raises(WorkspaceError) as refused:
        load_settings(ws.settings_path)
    message = str(refused.value)
    assert "\n" not in message and "\r" not in message
    assert f"[delivery] {key}" in message and shown in message and str(ws.settings_path) in message
    with pytest.raises(WorkspaceError):
        _ = Workspace(ws.home).settings


def test_good_addresses_are_kept(ws: Workspace) -> None:
    ws.settings_path.write_text(
        '[delivery]\nrecipients = ["chief@bureau.example", "o.f-fice+bulletin@mail.cz.gov.cn"]\n'
        'admin = "it@bureau.example"\n', encoding="utf-8")
    d = load_settings(ws.settings_path).delivery
    assert d.recipients == ("chief@bureau.example", "o.f-fice+bulletin@mail.cz.gov.cn")
    assert d.admin == "it@bureau.example"
    ws.settings_path.write_text('[delivery]\nrecipients = []\nadmin = ""\n', encoding="utf-8")
    assert load_settings(ws.settings_path).delivery.admin == ""
