"""Commands of the web area: `serve` and `users add | list | disable | enable | passwd`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli import ChineseHelp, cli, county_option, emit_json, json_option, now, workspace_required
from .cli_text import safe_text
from .workspace import Workspace


class _UsersGroup(ChineseHelp, click.Group):
    pass


@cli.group(cls=_UsersGroup)
def users() -> None:
    """网页账户：添加、列出、停用、启用用户，重设密码。

    角色：county（县（市）填报员，须用 --county 指明所属县），staff（市工信局工作人员），
    admin（管理员，另可查看审计日志）。密码只以加盐的慢哈希（argon2）保存。
    """


def _read_password(from_stdin: bool) -> tuple[str, bool]:
    """(password, generated): the first line of stdin, or a new one to print once."""
    from .web.users import generate_password

    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise click.UsageError("--password-stdin：标准输入中没有密码 / no password on standard input")
        return password, False
    return generate_password(), True


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["county", "staff", "admin"]), required=True,
              help="角色：county（县（市）填报员）、staff（市工信局工作人员）或 admin（管理员）。")
@county_option(required=False, help="县（市）用户所属县（市）的6位代码（role 为 county 时必填）。")
@click.option("--email", metavar="ADDR", default=None, help="用户的邮件地址（可选）。")
@click.option("--password-stdin", is_flag=True, help="从标准输入读取密码（第一行）；不加时生成密码并只显示这一次。")
@workspace_required
def users_add(ws: Workspace, name: str, role: str, county: str | None, email: str | None,
              password_stdin: bool) -> None:
    """添加用户 NAME。"""
    from .web.users import ROLE_LABELS, add_user

    password, generated = _read_password(password_stdin)
    user = add_user(ws, name, role, county=county, email=email, password=password, now=now())
    where = f"，{ws.registry.county_name(user.county_code)}（{user.county_code}）" if user.county_code else ""
    click.echo(safe_text(f"已添加用户 {user.name}（{ROLE_LABELS[user.role]}{where}）"))
    if generated:
        click.echo(f"初始密码（只显示这一次，请转交本人并提醒其妥善保管）：{password}")


@users.command("list")
@json_option
@workspace_required
def users_list(ws: Workspace, as_json: bool) -> None:
    """列出所有用户（不显示密码）。"""
    from .web.users import ROLE_LABELS, list_users

    rows = list_users(ws)
    if as_json:
        emit_json({"users": [u.to_json() for u in rows]})
        return
    if not rows:
        click.echo("还没有用户；用 supervise users add 添加")
        return
    click.echo("用户名  角色  县（市）  邮件  状态  最近登录")
    for u in rows:
        county = f"{u.county_code} {ws.registry.county_name(u.county_code)}" if u.county_code else "-"
        state = "已停用" if u.disabled else "启用"
        last = (u.last_login_at or "")[:16].replace("T", " ") or "从未登录"
        click.echo(safe_text(f"{u.name}  {ROLE_LABELS[u.role]}  {county}  {u.email or '-'}  {state}  {last}"))


@users.command("disable")
@click.argument("name")
@workspace_required
def users_disable(ws: Workspace, name: str) -> None:
    """停用用户 NAME：不能再登录，已登录的会话立即失效。"""
    from .web.users import set_disabled

    set_disabled(ws, name, True)
    click.echo(safe_text(f"已停用用户 {name}"))


@users.command("enable")
@click.argument("name")
@workspace_required
def users_enable(ws: Workspace, name: str) -> None:
    """重新启用用户 NAME，并解除其登录锁定。"""
    from .web.users import set_disabled

    set_disabled(ws, name, False)
    click.echo(safe_text(f"已启用用户 {name}"))


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="从标准输入读取新密码（第一行）；不加时生成新密码并只显示这一次。")
@workspace_required
def users_passwd(ws: Workspace, name: str, password_stdin: bool) -> None:
    """重设用户 NAME 的密码；其已登录的会话立即失效。"""
    from .web.users import set_password

    password, generated = _read_password(password_stdin)
    set_password(ws, name, password, now=now())
    click.echo(safe_text(f"已重设用户 {name} 的密码"))
    if generated:
        click.echo(f"新密码（只显示这一次）：{password}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="监听地址（放在反向代理之后时保持 127.0.0.1）。")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="监听端口（0：由系统分配空闲端口）。")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64), help="处理请求的线程数。")
@click.option("--trusted-proxy", metavar="ADDR", default=None,
              help="前置反向代理的地址（如 127.0.0.1）：信任其 X-Forwarded-For/Proto/Host，登录 Cookie 加 Secure。")
@click.option("--session-hours", default=12.0, show_default=True, type=click.FloatRange(0.1, 24 * 30),
              help="登录有效时长（小时）。")
@workspace_required
def serve(ws: Workspace, host: str, port: int, threads: int, trusted_proxy: str | None, session_hours: float) -> None:
    """提供网页服务：县（市）报送门户和市工信局工作台（waitress，生产用服务器）。

    应放在局内网的反向代理（TLS）之后；见 docs/operations.md。按 Ctrl+C 或 SIGTERM 停止。
    """
    from datetime import timedelta

    from .web.app import WebConfig
    from .web.server import serve as run_server

    config = WebConfig(session_lifetime=timedelta(hours=session_hours), secure_cookies=bool(trusted_proxy))

    def ready(addresses: list[tuple[str, int]]) -> None:
        for h, p in addresses:
            shown = f"[{h}]" if ":" in h else h
            click.echo(f"正在提供网页服务：http://{shown}:{p}/（按 Ctrl+C 停止）", err=True)
        sys.stderr.flush()

    run_server(Path(ws.home), host=host, port=port, threads=threads, config=config, trusted_proxy=trusted_proxy,
               ready=ready)
