"""`sla-bot`: the operator's command line (app environment).

  sla-bot catalog check [DIR]   validate the SLA catalog, listing every problem
  sla-bot catalog sources       write reports/catalog-sources.md: every key fact and its source
  sla-bot run                   start Rasa, the action server and the gateway, restart any
                                that dies, stop all three on Ctrl-C (`make run`)
  sla-bot actions               the action server alone
  sla-bot gateway               the gateway alone
  sla-bot db upgrade            create or upgrade the database tables (DATABASE_URL, else var/sla-bot.db)
  sla-bot agency-key create CODE [--name N]   a new API key for an agency, printed once
  sla-bot agency-key revoke KEY_ID            revoke a key at once
  sla-bot agency-key list [CODE]              key ids, agencies, names, created/revoked
  sla-bot webhooks add --agency CODE URL      subscribe an agency's system to its complaints' signed events;
                                              prints the signing secret once
  sla-bot webhooks list [--agency CODE]       subscriptions (never their secrets)
  sla-bot webhooks revoke ID                  stop sending to a subscription (its queued events are cancelled)
  sla-bot webhooks failed [--agency CODE]     dead-lettered deliveries (gave up after retries)
  sla-bot webhooks resend KEY                 requeue a dead-lettered delivery (same Idempotency-Key)
  sla-bot outbox failed                       chat pushes (LINE, Telegram) that could not be delivered
  sla-bot demo load             file the demo requests (make run does it on embedded defaults)
  sla-bot portal add-officer --agency DLT --username U [--central] [--password-stdin]
                                an agency portal account (also disable-officer, list-officers)
  sla-bot telegram set-webhook URL   register the gateway's public HTTPS URL with Telegram
                                (TELEGRAM_WEBHOOK_SECRET as secret token) and the bot's commands
  sla-bot line rich-menu        create the LINE rich menu from bot/gateway/channels/line_rich_menu.json,
                                upload its image and make it every user's default
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.settings import GENERATED_SECRETS, PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from bot.assistant import LiveAssistant
    from bot.casework.registry import Registry
    from bot.catalog import Catalog

# How long the action server keeps an idle connection: longer than Rasa's client (aiohttp,
# 15 s) and the gateway's pool (30 s) reuse one, so the client always closes it first. With
# Sanic's 5 s a call could go out on a connection the server was closing, and the custom action
# failed ("Cannot write to closing transport"). Rasa's own server keeps them 120 s (Rasa's setting).
ACTIONS_KEEP_ALIVE_SECONDS = 75


def open_catalog_and_database(settings: Settings) -> "tuple[Catalog, Engine] | None":
    """The catalog and the migrated database a command works on; None (the problems printed)
    when the catalog is invalid. The caller disposes of the engine."""
    from bot.catalog import CatalogError, load_catalog
    from bot.db import make_engine, migrate

    try:
        catalog = load_catalog(settings.catalog_dir)
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        return None
    engine = make_engine(settings.database)
    migrate(engine)
    return catalog, engine

def _catalog_check(directory: Path) -> int:
    """Validate the catalog and render every reply from it, as the live reload does."""
    from bot.assistant import Assistant
    from bot.catalog import CatalogError, load_catalog

    try:
        catalog = Assistant.from_catalog(load_catalog(directory)).catalog
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        print("Fix the fields above and run `sla-bot catalog check` again.", file=sys.stderr)
        return 1
    print(
        f"OK: {len(catalog.services)} services and {len(catalog.agencies)} agencies in {directory} "
        f"(fingerprint {catalog.fingerprint})"
    )
    return 0


def _catalog_sources(directory: Path, out: Path, as_of: dt.date) -> int:
    from bot.catalog import CatalogError, load_catalog
    from bot.catalog.report import sources_report

    try:
        catalog = load_catalog(directory)
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(sources_report(catalog, as_of), encoding="utf-8")
    print(f"wrote {out}")
    return 0


def _actions(settings: Settings) -> int:
    from rasa_sdk.endpoint import create_app

    import actions.actions
    import actions.complaints
    import actions.status
    from bot.assistant import LiveAssistant
    from bot.casework.lookup import StatusLookup
    from bot.casework.registry import Registry
    from bot.complaints import Desk, PhotoStore
    from bot.complaints.chat import ComplaintChat
    from bot.db import make_engine

    live = LiveAssistant(settings.catalog_dir)
    actions.actions.configure(live)
    engine = make_engine(settings.database)
    registry = Registry(engine, settings.verification_secret, lambda: live.current().catalog)
    actions.status.configure(StatusLookup(registry, lambda: live.current()))
    # The complaint desk on the same database and secret as the gateway's, and the same photo
    # directory (the gateway stores the photos a citizen sends; filing checks their ids).
    chat = ComplaintChat(
        Desk(engine, settings.verification_secret, lambda: live.current().catalog,
             photos=PhotoStore(settings.data_dir / "photos"))
    )
    actions.complaints.configure(chat)
    actions.status.configure_complaints(chat)
    app = create_app("actions")
    app.config.KEEP_ALIVE_TIMEOUT = ACTIONS_KEEP_ALIVE_SECONDS
    # Internal: only Rasa calls the action server, so it binds the internal host.
    app.run(settings.internal_host, settings.actions_port, workers=1, access_log=False, motd=False)
    return 0


def _gateway(settings: Settings) -> int:
    import uvicorn

    from bot.gateway.app import create_app

    # The one process meant to face the outside, so it alone binds the gateway host.
    # ws="none": the gateway serves no websockets, and rasa-sdk pins an old `websockets`.
    # No access log: it costs about a millisecond a request, and it would record citizens' IPs.
    uvicorn.run(
        create_app(settings), host=settings.gateway_host, port=settings.gateway_port, ws="none", access_log=False
    )
    return 0


def _registry(settings: Settings, live: "LiveAssistant") -> "Registry":
    """The registry on the settings' database: its engine is built here, once per process."""
    from bot.casework.registry import Registry
    from bot.db import make_engine

    return Registry(make_engine(settings.database), settings.verification_secret, lambda: live.current().catalog)


def _demo(settings: Settings, *, only_if_empty: bool) -> int:
    """Load the demo requests and print them as the README lists them."""
    from bot.assistant import LiveAssistant
    from bot.casework.demo import demo_loaded, load_demo
    from bot.gateway.portal.commands import print_demo_officers

    print_demo_officers(settings)  # the portal's demo officers, those missing
    registry = _registry(settings, LiveAssistant(settings.catalog_dir))
    if only_if_empty and demo_loaded(registry):
        return 0
    print("Demo requests (number · last 4 phone digits · state), clearly marked as demo data:")
    for number, digits, state in load_demo(registry):
        print(f"  {number} · {digits} · {state}")
    return 0


def _db_upgrade(settings: Settings) -> int:
    logging.getLogger("alembic").setLevel(logging.WARNING)  # before importing it: it logs at import
    from sqlalchemy.engine import make_url

    from bot.casework.registry import recompute_due_dates
    from bot.casework.timing import SlaView
    from bot.catalog import CatalogError, load_catalog
    from bot.db import current_revision, make_engine, migrate

    engine = make_engine(settings.database)
    try:
        migrate(engine)
        shown = make_url(settings.database).render_as_string(hide_password=True)
        print(f"Database {shown} is at revision {current_revision(engine)}")
        # Due dates missing (rows from before 0002_due_dates) or computed under another catalog's
        # SLA durations, hours or calendar: computed now, else the registry judges them as it meets them.
        try:
            catalog = load_catalog(settings.catalog_dir)
        except CatalogError as exc:
            print(f"Due dates not recomputed, the catalog has problems (the registry will as it meets them):\n{exc}",
                  file=sys.stderr)
            return 0
        count = recompute_due_dates(engine, SlaView(lambda: catalog))
        if count:
            print(f"Recomputed {count} requests' SLA due dates")
    finally:
        engine.dispose()
    return 0


def _agency_key(settings: Settings, args: argparse.Namespace) -> int:
    """Create, revoke or list agencies' API keys (stored hashed; a new key is shown only here)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # before importing it: it logs at import
    from bot.casework import ApiKeys, CaseworkError

    opened = open_catalog_and_database(settings)
    if opened is None:
        return 1
    catalog, engine = opened
    try:
        keys = ApiKeys(engine, catalog=lambda: catalog)
        if args.key_command == "create":
            created = keys.create(args.agency, args.name or "")
            print(
                f"API key {created.info.key_id} for {created.info.agency_code} ({created.info.name}):\n"
                f"  {created.key}\n"
                "Store it now: it is not kept and cannot be shown again. "
                "Send it as `Authorization: Bearer <key>`.",
            )
        elif args.key_command == "revoke":
            info = keys.revoke(args.key_id)
            print(f"Revoked {info.key_id} ({info.agency_code}, {info.name})")
        else:
            for info in keys.list_keys(args.agency):
                state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
                print(f"{info.key_id}  {info.agency_code:6}  {info.created_at:%Y-%m-%d %H:%M}  {state:22}  {info.name}")
    except CaseworkError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def _webhooks(settings: Settings, args: argparse.Namespace) -> int:
    """Agencies' webhook subscriptions and dead letters (bot.complaints.webhooks); audited as the CLI."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # before importing it: it logs at import
    from bot.casework import CaseworkError, audit
    from bot.complaints import Desk, deliveries, resend, revoke, subscribe, subscriptions

    if args.webhooks_command == "add":  # the secret is sealed with VERIFICATION_SECRET, as the gateway opens it
        settings = _with_generated_secrets(settings)
    opened = open_catalog_and_database(settings)
    if opened is None:
        return 1
    catalog, engine = opened
    try:
        # Listing, revoking and resending never open a secret: any key will do when none is set yet.
        desk = Desk(engine, settings.verification_secret or "unset", lambda: catalog)
        if args.webhooks_command == "add":
            subscription, secret = subscribe(desk, args.agency, args.url, actor=audit.CLI)
            print(
                f"Webhook {subscription.id} for {subscription.agency_code}: {subscription.url}\n"
                f"  signing secret: {secret}\n"
                "Store it now: it is shown only this once. Each POST carries "
                "X-SLA-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, \"<t>.<raw body>\")>, "
                "X-SLA-Event and an Idempotency-Key (the same on every retry)."
            )
        elif args.webhooks_command == "list":
            found = subscriptions(desk, args.agency)
            for item in found:
                state = f"revoked {item.revoked_at:%Y-%m-%d %H:%M}" if item.revoked_at else "active"
                print(f"{item.id:>5}  {item.agency_code:6}  {item.created_at:%Y-%m-%d %H:%M}  {state:22}  {item.url}")
            if not found:
                print("No webhook subscriptions.")
        elif args.webhooks_command == "revoke":
            item = revoke(desk, args.id, actor=audit.CLI)
            print(f"Revoked webhook {item.id} ({item.agency_code}, {item.url}); its queued events are cancelled")
        elif args.webhooks_command == "failed":
            dead = deliveries(desk, agency_code=args.agency, state="failed", limit=args.limit)
            for item in dead:
                print(f"{item.key}  {item.agency_code:6}  {item.event:24}  {item.attempts:>3} attempts  "
                      f"{item.created_at:%Y-%m-%d %H:%M}  {item.last_error or ''}")
            if not dead:
                print("No failed webhook deliveries.")
        else:
            if resend(desk, args.key, actor=audit.CLI):
                print(f"Requeued {args.key}: the running gateway sends it within a minute")
            else:
                print(f"error: {args.key} is not failed, or its subscription was revoked: nothing to resend",
                      file=sys.stderr)
                return 1
    except CaseworkError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def _outbox(settings: Settings, args: argparse.Namespace) -> int:
    """Chat pushes the sender gave up on (newest first); identities shortened."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from bot.db import make_engine, migrate
    from bot.delivery.outbox import DurableOutbox

    engine = make_engine(settings.database)
    try:
        migrate(engine)
        failed = DurableOutbox(engine).entries(state="failed", limit=args.limit)
        for entry in failed:
            who = entry.identity if len(entry.identity) <= 16 else entry.identity[:14] + "…"
            print(f"{entry.key}  {who:16}  {entry.attempts:>3} attempts  {entry.created_at:%Y-%m-%d %H:%M}  "
                  f"{entry.last_error or ''}")
        if not failed:
            print("No failed chat pushes.")
    finally:
        engine.dispose()
    return 0


def _line_rich_menu(settings: Settings, args: argparse.Namespace) -> int:
    """Install the committed rich menu on the LINE Official Account of LINE_CHANNEL_ACCESS_TOKEN."""
    import asyncio

    from linebot.v3.messaging import ApiException

    from bot.gateway.channels import line_rich_menu

    if not settings.line_enabled:
        missing = settings.channel_problems() or [
            "LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN are not set (LINE Developers console, Messaging API tab)"
        ]
        print(f"error: {missing[0]}", file=sys.stderr)
        return 1
    try:
        installed = asyncio.run(
            line_rich_menu.install_rich_menu(
                settings.line_channel_access_token,
                settings.line_api_base_url,
                definition_path=args.definition,
                image_path=args.image,
                keep_old=args.keep_old,
            )
        )
    except line_rich_menu.RichMenuError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ApiException as exc:
        print(f"error: LINE answered {exc.status}: {exc.body or exc.reason}", file=sys.stderr)
        if exc.status == 401:
            print("Check LINE_CHANNEL_ACCESS_TOKEN (a long-lived channel access token).", file=sys.stderr)
        return 1
    print(f"Rich menu {installed.rich_menu_id} is now every user's default")
    if installed.removed:
        print(f"Removed the menus it replaces: {', '.join(installed.removed)}")
    return 0


def _telegram(settings: Settings, args: argparse.Namespace) -> int:
    """Register the webhook (with the secret token and update types) and the command list."""
    import asyncio

    from bot.gateway.channels.telegram import TelegramSetupError, setup_webhook

    try:
        print(asyncio.run(setup_webhook(settings, args.url, drop_pending_updates=args.drop_pending_updates)))
    except TelegramSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _interrupt(signum: int, frame: object) -> None:
    """Treat SIGTERM like Ctrl-C, so the three processes are always stopped."""
    raise KeyboardInterrupt


def _with_generated_secrets(settings: Settings, env_file: Path = PROJECT_ROOT / ".env") -> Settings:
    """Generate each unset secret of GENERATED_SECRETS into the git-ignored .env (the contract).

    The values go only into that file (created 0600) and the returned settings; only the
    names are printed.
    """
    current = settings.to_env()
    generated = {name: secrets.token_urlsafe(32) for name in GENERATED_SECRETS if not current.get(name)}
    if not generated:
        return settings
    _append_private(env_file, "".join(f"{name}={value}\n" for name, value in generated.items()))
    print(f"Generated {', '.join(generated)} into {env_file}", flush=True)
    # Each secret's Settings field is its lower-cased name: RASA_TOKEN -> rasa_token.
    return dataclasses.replace(settings, **{name.lower(): value for name, value in generated.items()})


def _append_private(path: Path, text: str) -> None:
    """Append to `path`, readable by its owner only from before the first byte is written."""
    if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
        text = "\n" + text  # keep a hand-edited last line intact
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)


def _run(settings: Settings) -> int:
    from bot.runtime.stack import Stack, StackError

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    problems = settings.channel_problems()
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    stack = Stack(_with_generated_secrets(settings))
    s = stack.settings
    try:
        stack.start()
        if not s.database_url:  # embedded defaults only: never into an operator's database
            _demo(s, only_if_empty=True)
        print(
            "\nThe assistant is running:\n"
            f"  web chat        {s.gateway_url}/\n"
            f"  gateway health  {s.gateway_url}/healthz\n"
            f"  Rasa server     {s.rasa_url}  (REST channel: /webhooks/rest/webhook; API token in .env)\n"
            f"  action server   {s.actions_url}/health\n"
            "A process that dies is restarted. Press Ctrl-C to stop all three.\n",
            flush=True,
        )
        stack.wait()
        print("error: the supervisor stopped unexpectedly", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
        return 0
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C must not cut the stopping short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sla-bot", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    catalog = commands.add_parser("catalog", help="work with the SLA catalog")
    catalog_commands = catalog.add_subparsers(dest="catalog_command", required=True)
    check = catalog_commands.add_parser("check", help="validate the catalog")
    check.add_argument(
        "directory", nargs="?", type=Path,
        help="catalog directory (default: SLA_CATALOG_DIR or sla_catalog/)",
    )
    report = catalog_commands.add_parser("sources", help="write the report of every key fact and its source")
    report.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "catalog-sources.md")
    report.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD (default: today)")
    report.add_argument("directory", nargs="?", type=Path)
    commands.add_parser(
        "run", help="start the Rasa server, the action server and the gateway; restart any that dies"
    )
    commands.add_parser("actions", help="start the action server")
    commands.add_parser("gateway", help="start the gateway")
    db = commands.add_parser("db", help="the database")
    db.add_subparsers(dest="db_command", required=True).add_parser(
        "upgrade", help="create or upgrade the tables (run by `make run` and the tests)"
    )
    demo = commands.add_parser("demo", help="demo requests for trying the status lookup")
    demo.add_subparsers(dest="demo_command", required=True).add_parser(
        "load", help="file the demo requests into DATABASE_URL's database (make run does this on embedded defaults)"
    )
    key = commands.add_parser("agency-key", help="agencies' API keys")
    key_commands = key.add_subparsers(dest="key_command", required=True)
    key_create = key_commands.add_parser("create", help="create a key for an agency and print it once")
    key_create.add_argument("agency", help="agency code from sla_catalog/agencies.yml, e.g. DLT")
    key_create.add_argument("--name", help="what the key is for, e.g. the agency system using it")
    key_commands.add_parser("revoke", help="revoke a key").add_argument("key_id")
    key_commands.add_parser("list", help="list keys (never the keys themselves)").add_argument(
        "agency", nargs="?", help="only this agency's keys"
    )
    hooks = commands.add_parser("webhooks", help="agencies' signed webhook subscriptions and dead letters")
    hook_commands = hooks.add_subparsers(dest="webhooks_command", required=True)
    hook_add = hook_commands.add_parser("add", help="subscribe a URL to an agency's complaint events")
    hook_add.add_argument("--agency", required=True, help="agency code from sla_catalog/agencies.yml, e.g. DLT")
    hook_add.add_argument("url", help="https URL of the agency's receiver (http only to this machine)")
    hook_commands.add_parser("list", help="list subscriptions").add_argument("--agency", help="only this agency's")
    hook_commands.add_parser("revoke", help="revoke a subscription").add_argument("id", type=int)
    hook_failed = hook_commands.add_parser("failed", help="dead-lettered deliveries, newest first")
    hook_failed.add_argument("--agency", help="only this agency's")
    hook_failed.add_argument("--limit", type=int, default=50)
    hook_commands.add_parser("resend", help="requeue a dead-lettered delivery").add_argument(
        "key", help="the delivery's key (Idempotency-Key), from `webhooks failed`"
    )
    outbox = commands.add_parser("outbox", help="chat pushes to citizens (LINE, Telegram)")
    outbox.add_subparsers(dest="outbox_command", required=True).add_parser(
        "failed", help="pushes that could not be delivered, newest first"
    ).add_argument("--limit", type=int, default=50)
    from bot.gateway.channels.line_rich_menu import DEFINITION, IMAGE
    from bot.gateway.portal import commands as portal_commands

    portal_commands.add_arguments(commands)

    line = commands.add_parser("line", help="the LINE Official Account")
    rich_menu = line.add_subparsers(dest="line_command", required=True).add_parser(
        "rich-menu", help="create the rich menu (help, status, complaint, hotline) and make it the default"
    )
    rich_menu.add_argument("--definition", type=Path, default=DEFINITION, help="LINE rich menu object (JSON)")
    rich_menu.add_argument("--image", type=Path, default=IMAGE, help="its image, PNG or JPEG, at most 1 MB")
    rich_menu.add_argument("--keep-old", action="store_true", help="keep the menus this command made before")
    telegram = commands.add_parser("telegram", help="the Telegram bot")
    set_webhook = telegram.add_subparsers(dest="telegram_command", required=True).add_parser(
        "set-webhook",
        help="register the webhook URL (with TELEGRAM_WEBHOOK_SECRET) and the command list with Telegram",
    )
    set_webhook.add_argument(
        "url", help="the gateway's public HTTPS URL, e.g. https://bot.example.go.th (/webhooks/telegram is added)"
    )
    set_webhook.add_argument(
        "--drop-pending-updates", action="store_true", help="discard the updates Telegram holds for the bot"
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL at INFO, and Rasa's status URL carries the API token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings.from_env()
    if args.command == "catalog" and args.catalog_command == "sources":
        return _catalog_sources(args.directory or settings.catalog_dir, args.out, args.as_of or dt.date.today())
    if args.command == "catalog":
        return _catalog_check(args.directory or settings.catalog_dir)
    if args.command == "actions":
        return _actions(settings)
    if args.command == "gateway":
        return _gateway(settings)
    if args.command == "db":
        return _db_upgrade(settings)
    if args.command == "agency-key":
        return _agency_key(settings, args)
    if args.command == "webhooks":
        return _webhooks(settings, args)
    if args.command == "outbox":
        return _outbox(settings, args)
    if args.command == "line":
        return _line_rich_menu(settings, args)
    if args.command == "telegram":
        return _telegram(settings, args)
    if args.command == "portal":
        return portal_commands.main(settings, args)
    if args.command == "demo":
        _with_generated_secrets(settings)
        return _demo(Settings.from_env(), only_if_empty=False)
    return _run(settings)


if __name__ == "__main__":
    sys.exit(main())
