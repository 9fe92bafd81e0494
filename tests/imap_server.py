"""A real IMAP server on 127.0.0.1 for the tests: Dovecot, from the distribution's packages.

Started once per pytest run (per xdist worker) in a folder of its own with its own
configuration (`-c`), a passwd-file of test accounts and a free port; nothing of the
machine's own Dovecot setup is read or touched. Each test gets an account of its own
(`add_user`), so tests never see each other's mail. As root, the mail processes run as
Dovecot's own system users (`dovecot`, `dovenull`); as anyone else, as that user.
"""

from __future__ import annotations

import getpass
import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from pathlib import Path

from imapclient import IMAPClient

from .smtp_server import free_port

PASSWORD = "secret-过关"
ACCOUNTS = 200
_accounts = count(1)


def dovecot_executable() -> str | None:
    for candidate in (shutil.which("dovecot"), "/usr/sbin/dovecot"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _doveadm(dovecot: str) -> str:
    found = shutil.which("doveadm") or str(Path(dovecot).with_name("doveadm"))
    if not os.access(found, os.X_OK):
        found = "/usr/bin/doveadm"
    return found


CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
  default_fields = uid={uid} gid={gid} home={root}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class Dovecot:
    executable: str
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="supervise-dovecot-")))
    port: int = field(default_factory=free_port)
    tls_port: int = 0                   # implicit TLS (993's role), when openssl could make a certificate
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None

    @property
    def certificate(self) -> Path:
        """The server's self-signed certificate (for 127.0.0.1): the CA a client must trust."""
        return self.root / "cert.pem"

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    def start(self) -> None:
        self.root.chmod(0o755)   # the mail processes (another user when we are root) work below it
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir(exist_ok=True)
        # Every account is made now: Dovecot notices a passwd-file changed by its modification time,
        # which two tests within the same second would not move.
        (self.root / "passwd").write_text(
            "".join(f"{self._user(n)}:{{PLAIN}}{PASSWORD}::::::\n" for n in range(1, ACCOUNTS + 1)), encoding="utf-8")
        if os.geteuid() == 0:
            internal, group, login, uid, gid = "dovecot", "dovecot", "dovenull", "dovecot", "dovecot"
            os.chown(self.root / "mail", pwd.getpwnam("dovecot").pw_uid, grp.getgrnam("dovecot").gr_gid)
        else:
            me = getpass.getuser()
            group = grp.getgrgid(os.getgid()).gr_name
            internal, login, uid, gid = me, me, str(os.getuid()), str(os.getgid())
        tls = self._make_certificate()
        if tls:
            self.tls_port = free_port()
            ssl = f"ssl = yes\nssl_cert = <{self.certificate}\nssl_key = <{self.root / 'key.pem'}"
        else:
            ssl = "ssl = no"
        self.config.write_text(CONFIG.format(root=self.root, internal=internal, internal_group=group, login=login,
                                             uid=uid, gid=gid, port=self.port, tls_port=self.tls_port, ssl=ssl),
                               encoding="utf-8")
        with open(self.root / "stderr.log", "wb") as err:
            self.process = subprocess.Popen([self.executable, "-F", "-c", str(self.config)],
                                            stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {(self.root / 'stderr.log').read_text(errors='replace')}"
                                   f"\n{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dovecot did not listen on {self.port}:\n{self.log()}") from None
                time.sleep(0.05)

    def _make_certificate(self) -> bool:
        openssl = shutil.which("openssl")
        if openssl is None:
            return False
        done = subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(self.root / "key.pem"),
             "-out", str(self.certificate)], capture_output=True, timeout=60)
        return done.returncode == 0

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        try:
            return (self.root / "dovecot.log").read_text(encoding="utf-8", errors="replace")[-4000:]
        except OSError:
            return ""

    # -------------------------------------------------------------- accounts and mail

    @staticmethod
    def _user(n: int) -> str:
        return f"bureau{n}@bureau.example"

    def add_user(self) -> str:
        """A mailbox no test has used yet; returns its user name (the password is PASSWORD)."""
        n = next(_accounts)
        if n > ACCOUNTS:
            raise RuntimeError(f"more than {ACCOUNTS} IMAP accounts asked for in one test run")
        return self._user(n)

    def client(self, user: str) -> IMAPClient:
        c = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        try:
            c.plain_login(user, PASSWORD)
        except BaseException:
            c.shutdown()
            raise
        return c

    def append(self, user: str, raw: bytes, when: datetime, folder: str = "INBOX") -> int:
        """Deliver a message as the server would, with `when` as its arrival time (INTERNALDATE)."""
        c = self.client(user)
        try:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            answer = c.append(folder, raw, msg_time=when)
        finally:
            c.logout()
        text = answer.decode() if isinstance(answer, bytes) else str(answer)
        # [APPENDUID <uidvalidity> <uid>]
        return int(text.split("APPENDUID", 1)[1].split("]", 1)[0].split()[1])

    def messages(self, user: str, folder: str = "INBOX") -> dict[int, bytes]:
        """UID -> raw message of every message in a folder (an empty dict for a missing folder)."""
        c = self.client(user)
        try:
            if not c.folder_exists(folder):
                return {}
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            if not uids:
                return {}
            return {int(u): bytes(d[b"BODY[]"]) for u, d in c.fetch(uids, ["BODY.PEEK[]"]).items()}
        finally:
            c.logout()

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        c = self.client(user)
        try:
            return int(c.select_folder(folder, readonly=True)[b"UIDVALIDITY"])
        finally:
            c.logout()

    def set_uidvalidity(self, user: str, value: int, folder: str = "INBOX") -> None:
        """What a server restored from backup or migrated does: every UID of the folder is void."""
        subprocess.run([_doveadm(self.executable), "-c", str(self.config), "mailbox", "update", "-u", user,
                        "--uid-validity", str(value), folder], check=True, capture_output=True, timeout=30)


def running_dovecot() -> Iterator[Dovecot | None]:
    """Body of the fixture (one per test run): a started server, or None when Dovecot is not installed."""
    exe = dovecot_executable()
    if exe is None:
        yield None
        return
    server = Dovecot(exe)
    server.start()
    try:
        yield server
    finally:
        server.stop()
