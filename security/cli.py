"""``python app.py users ...``: manage accounts from a shell, without a running dashboard."""

from __future__ import annotations

import argparse
import getpass
import sys

from config import Settings
from services.accounts import Accounts
from services.errors import DomainError
from services.secret_key import load_or_create
from storage.db import Database, default_url
from storage.models import ROLES


def _accounts(settings: Settings) -> Accounts:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url or default_url(settings.data_dir))
    db.upgrade()
    return Accounts(db, load_or_create(settings.secret_key, settings.data_dir))


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("error: the passwords differ")
    return first


def main(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog="python app.py users", description="Manage dashboard accounts.")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create a user (asks for the password)")
    create.add_argument("name")
    create.add_argument("--role", choices=ROLES, default="viewer")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    passwd = sub.add_parser("set-password", help="set a user's password (their logins end)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true")
    sub.add_parser("list", help="list users and roles")
    args = parser.parse_args(argv)
    accounts = _accounts(settings)
    try:
        if args.command == "create":
            user = accounts.create_user({"name": args.name, "password": _password(args), "role": args.role})
            print(f"created {user['name']} ({user['role']})")
        elif args.command == "set-password":
            user = next((u for u in accounts.list_users() if u["name"].lower() == args.name.lower()), None)
            if user is None:
                raise SystemExit(f"error: no user named {args.name!r}")
            accounts.update_user(user["id"], {"password": _password(args)})
            print(f"password of {user['name']} set")
        else:
            for user in accounts.list_users():
                print(f"{user['id']:>4}  {user['name']:<32} {user['role']}")
    except DomainError as exc:
        details = "; ".join(f"{k}: {v}" for k, v in exc.details.items()) if isinstance(exc.details, dict) else ""
        raise SystemExit(f"error: {exc.message}" + (f" ({details})" if details and details not in exc.message else ""))
    return 0
