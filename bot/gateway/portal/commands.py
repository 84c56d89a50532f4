"""The portal's operator commands (`sla-bot portal ...`) and the demo officers of `make run`.

    sla-bot portal add-officer --agency DLT --username somchai [--display-name "สมชาย ใจดี"] [--central]
                               [--password-stdin]
    sla-bot portal disable-officer USERNAME      # and every session of theirs ends at once
    sla-bot portal list-officers [--agency DLT]

The password is read from a prompt (twice, not echoed) or, with --password-stdin, from the first
line of standard input: never from the command line, where `ps` shows it to every local user.

Demo officers (`print_demo_officers`) are created only on embedded defaults (`make run` or
`sla-bot demo load` without DATABASE_URL): their passwords are in the README, so they are never
created in an operator's database, even when the demo requests are loaded there.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from typing import Optional, TextIO

from bot.settings import Settings

# (username, agency, central, display name, password): printed by `make run` and in the README.
DEMO_OFFICERS: tuple[tuple[str, str, bool, str, str], ...] = (
    ("dlt.demo", "DLT", False, "เจ้าหน้าที่กรมการขนส่งทางบก (สาธิต)", "demo-dlt-2569"),
    ("dopa.demo", "DOPA", False, "เจ้าหน้าที่กรมการปกครอง (สาธิต)", "demo-dopa-2569"),
    ("central.demo", "OPM", True, "เจ้าหน้าที่ศูนย์บริการประชาชน 1111 (สาธิต)", "demo-central-2569"),
)


def add_arguments(commands: argparse._SubParsersAction) -> None:
    portal = commands.add_parser("portal", help="the agency portal's officers")
    sub = portal.add_subparsers(dest="portal_command", required=True)
    add = sub.add_parser("add-officer", help="create an officer account (password from a prompt or stdin)")
    add.add_argument("--agency", required=True, help="agency code from sla_catalog/agencies.yml, e.g. DLT")
    add.add_argument("--username", required=True, help="3-56 characters: a-z, 0-9, '.', '_', '-'")
    add.add_argument("--display-name", default="", help="the name shown in the portal")
    add.add_argument("--central", action="store_true", help="central triage role: sees every agency's complaints")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    sub.add_parser("disable-officer", help="disable an account and end its sessions").add_argument("username")
    sub.add_parser("list-officers", help="list accounts (never passwords)").add_argument("--agency")


def main(settings: Settings, args: argparse.Namespace, stdin: Optional[TextIO] = None) -> int:
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from bot.casework.errors import CaseworkError
    from bot.cli import open_catalog_and_database
    from bot.gateway.portal.accounts import Officers
    from bot.gateway.portal.sessions import Sessions

    opened = open_catalog_and_database(settings)
    if opened is None:
        return 1
    catalog, engine = opened
    try:
        officers = Officers(engine)
        if args.portal_command == "add-officer":
            password = _read_password(args.password_stdin, stdin or sys.stdin)
            if password is None:
                return 1
            account = officers.add(
                args.username, password, args.agency, display_name=args.display_name, central=args.central,
                catalog=catalog,
            )
            print(f"Officer {account.username} ({account.role}, {account.agency_code}) can now log in at /portal/login")
        elif args.portal_command == "disable-officer":
            account = officers.set_disabled(args.username)
            ended = Sessions(engine, officers.clock).end_all(account.id)
            print(f"Disabled {account.username}; {ended} open session(s) ended")
        else:
            for account in officers.accounts(args.agency):
                state = "disabled" if account.disabled else "active"
                last = f"{account.last_login_at:%Y-%m-%d %H:%M}" if account.last_login_at else "never"
                print(f"{account.username:24} {account.agency_code:6} {account.role:8} {state:8} last login {last}"
                      f"  {account.display_name}")
    except CaseworkError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def _read_password(from_stdin: bool, stdin: TextIO) -> str | None:
    if from_stdin:
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        print("error: the passwords do not match", file=sys.stderr)
        return None
    return first


def load_demo_officers(settings: Settings) -> list[tuple[str, str, str]]:
    """Create the demo officers that are missing; (username, password, agency or "central") of each created."""
    from bot.db import make_engine
    from bot.gateway.portal.accounts import Officers

    engine = make_engine(settings.database)
    try:
        officers = Officers(engine)
        created = []
        for username, agency, central, name, password in DEMO_OFFICERS:
            if officers.find(username) is None:
                officers.add(username, password, agency, display_name=name, central=central)
                created.append((username, password, f"{agency} (central)" if central else agency))
        return created
    finally:
        engine.dispose()


def print_demo_officers(settings: Settings) -> None:
    if settings.database_url:  # an operator's database: no accounts with published passwords
        return
    created = load_demo_officers(settings)
    if created:
        print(f"Demo portal officers ({settings.gateway_url}/portal/; username · password · agency), demo only:")
        for username, password, agency in created:
            print(f"  {username} · {password} · {agency}")
