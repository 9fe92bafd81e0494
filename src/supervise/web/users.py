"""Accounts of the web: adding, listing, disabling users and their passwords; logging in with
lock-out. No Flask here: the CLI (`supervise users`) and the web call the same functions.

Passwords are kept only as argon2id hashes (argon2-cffi's defaults: salted, memory-hard).
A failed login counts against the account and against the address it came from; either
reaching its limit within the window locks it out for a while, and a locked login is refused
without even looking at the password.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from ..errors import SuperviseError
from ..registry import unknown_county_message
from ..store import accounts as store
from ..workspace import ADDRESS, Workspace

ROLES = ("county", "staff", "admin")
ROLE_LABELS = {"county": "县（市）填报员", "staff": "市工信局工作人员", "admin": "管理员"}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024          # an argon2 hash of a megabyte is still a megabyte to read


@dataclass(frozen=True)
class LockoutPolicy:
    """How many failed logins within `window` lock an account or an address out, and for how long."""

    account_failures: int = 5
    address_failures: int = 10
    window: timedelta = timedelta(minutes=15)
    lock_for: timedelta = timedelta(minutes=15)


class AccountError(SuperviseError, ValueError):
    """A user cannot be added or changed as asked (the message says why, in Chinese)."""


@lru_cache(maxsize=1)
def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


# Each argon2 hash takes 64 MiB for a moment: at most two at once, whatever the threads (twenty
# clerks logging in together must not take the server's memory).
_HASHING = threading.BoundedSemaphore(2)


def hash_password(password: str) -> str:
    with _HASHING:
        return str(_hasher().hash(password))


# Verified against when the user does not exist, so that an unknown name costs as much as a wrong password.
@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def verify_password(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        with _HASHING:
            return bool(_hasher().verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """16 characters from an alphabet without look-alikes (no 0/O, 1/l/I)."""
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"密码至少{MIN_PASSWORD}个字符 / the password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"密码不得超过{MAX_PASSWORD}个字符 / at most {MAX_PASSWORD} characters")
    return password


def add_user(ws: Workspace, name: str, role: str, *, county: str | None = None, email: str | None = None,
             password: str, now: datetime) -> store.UserRow:
    """Add a user; a county user is bound to one county code, staff and admins to none."""
    if not NAME.fullmatch(name):
        raise AccountError(f"用户名 {name!r} 无效：1～64个字母、数字或 . _ @ -，以字母或数字开头 / "
                           "a user name is 1-64 letters, digits or . _ @ -")
    if role not in ROLES:
        raise AccountError(f"角色须为 {' | '.join(ROLES)} / role must be one of {', '.join(ROLES)}")
    if role == "county":
        if not county:
            raise AccountError("县（市）用户须用 --county 指明所属县（市）代码 / a county user needs --county CODE")
        if county not in ws.registry.counties:
            raise AccountError(unknown_county_message(county))
    elif county:
        raise AccountError(f"{role} 用户不属于某个县（市），不能给 --county / only county users have --county")
    if email is not None and not ADDRESS.fullmatch(email):
        raise AccountError(f"{email!r} 不是邮件地址 / is not an e-mail address")
    check_password(password)
    conn = ws.connect()
    try:
        try:
            store.add_user(conn, name=name, role=role, county_code=county if role == "county" else None,
                           email=email, password_hash=hash_password(password), now=now)
        except store.UserExists:
            raise AccountError(f"用户 {name} 已存在 / user {name} already exists") from None
        user = store.get_user(conn, name)
    finally:
        conn.close()
    assert user is not None
    return user


def list_users(ws: Workspace) -> list[store.UserRow]:
    conn = ws.connect()
    try:
        return store.list_users(conn)
    finally:
        conn.close()


def set_password(ws: Workspace, name: str, password: str, *, now: datetime) -> None:
    """A new password; the user's open sessions end."""
    check_password(password)
    conn = ws.connect()
    try:
        if not store.set_password_hash(conn, name, hash_password(password), now):
            raise AccountError(f"没有用户 {name} / no user {name}")
    finally:
        conn.close()


def set_disabled(ws: Workspace, name: str, disabled: bool) -> None:
    """Disable a user (its sessions end at once) or enable it again (its lock-out cleared)."""
    conn = ws.connect()
    try:
        if not store.set_disabled(conn, name, disabled):
            raise AccountError(f"没有用户 {name} / no user {name}")
    finally:
        conn.close()


# ------------------------------------------------------------------ logging in


@dataclass(frozen=True)
class LoginOutcome:
    user: store.UserRow | None           # the user, when the login succeeded
    locked_until: str | None = None      # the end of a lock-out that refused it

    @property
    def ok(self) -> bool:
        return self.user is not None


def authenticate(conn: sqlite3.Connection, name: str, password: str, address: str, *, now: datetime,
                 policy: LockoutPolicy) -> LoginOutcome:
    """Check a login. Locked account or address: refused before the password is looked at.
    A failure counts against both; a success clears the account's count (not the address's:
    one good account must not reset an address trying others)."""
    ukey, akey = store.user_key(name), store.address_key(address)
    locked = store.locked_until(conn, [ukey, akey], now)
    if locked:
        return LoginOutcome(None, max(locked.values()))
    user = store.get_user(conn, name) if NAME.fullmatch(name) and len(password) <= MAX_PASSWORD else None
    if user is not None and not user.disabled and verify_password(user.password_hash, password):
        store.clear_failures(conn, ukey)
        if _hasher().check_needs_rehash(user.password_hash):
            store.rehash(conn, user.id, hash_password(password))
        return LoginOutcome(user)
    if user is None:
        verify_password(_dummy_hash(), password[:MAX_PASSWORD])
    now_locked = store.note_failure(
        conn, {ukey: policy.account_failures, akey: policy.address_failures}, now=now,
        window_start=now - policy.window, lock_until=now + policy.lock_for)
    return LoginOutcome(None, max(now_locked.values()) if now_locked else None)
