"""`sla-bot`: the operator's command line (app environment).

  sla-bot catalog check [DIR]   validate the SLA catalog, listing every problem
  sla-bot run                   start Rasa, the action server and the gateway (`make run`)
  sla-bot actions               the action server alone
  sla-bot gateway               the gateway alone
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import secrets
import signal
import sys
import time
from pathlib import Path

from bot.settings import PROJECT_ROOT, Settings


def _catalog_check(directory: Path) -> int:
    from bot.catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(directory)
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        print("Fix the fields above and run `sla-bot catalog check` again.", file=sys.stderr)
        return 1
    print(
        f"OK: {len(catalog.services)} services and {len(catalog.agencies)} agencies in {directory} "
        f"(fingerprint {catalog.fingerprint})"
    )
    return 0


def _actions(settings: Settings) -> int:
    from rasa_sdk.endpoint import create_app

    import actions.actions
    from bot.assistant import LiveAssistant

    actions.actions.configure(LiveAssistant(settings.catalog_dir))
    app = create_app("actions")
    app.run(settings.host, settings.actions_port, workers=1, access_log=False, motd=False)
    return 0


def _gateway(settings: Settings) -> int:
    import uvicorn

    from bot.gateway.app import create_app

    # ws="none": the gateway serves no websockets, and rasa-sdk pins an old `websockets`.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.gateway_port, ws="none")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    """Treat SIGTERM like Ctrl-C, so the three processes are always stopped."""
    raise KeyboardInterrupt


def _with_rasa_token(settings: Settings, env_file: Path = PROJECT_ROOT / ".env") -> Settings:
    """Generate RASA_TOKEN into the git-ignored .env when it is unset (the contract)."""
    if settings.rasa_token:
        return settings
    token = secrets.token_urlsafe(32)
    with env_file.open("a", encoding="utf-8") as out:
        out.write(f"RASA_TOKEN={token}\n")
    env_file.chmod(0o600)
    print(f"Generated a Rasa API token into {env_file}", flush=True)
    return dataclasses.replace(settings, rasa_token=token)


def _run(settings: Settings) -> int:
    from bot.runtime.stack import Stack, StackError

    stack = Stack(_with_rasa_token(settings))
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    try:
        stack.start()
        print(
            "\nThe assistant is running:\n"
            f"  web chat        {settings.gateway_url}/\n"
            f"  gateway health  {settings.gateway_url}/healthz\n"
            f"  Rasa server     {settings.rasa_url}  (REST channel: /webhooks/rest/webhook; API token in .env)\n"
            f"  action server   {settings.actions_url}/health\n"
            "Press Ctrl-C to stop all three.\n",
            flush=True,
        )
        while True:
            stack.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
        return 0
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sla-bot", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    catalog = commands.add_parser("catalog", help="work with the SLA catalog")
    catalog_commands = catalog.add_subparsers(dest="catalog_command", required=True)
    check = catalog_commands.add_parser("check", help="validate the catalog")
    check.add_argument("directory", nargs="?", type=Path, help="catalog directory (default: SLA_CATALOG_DIR or sla_catalog/)")
    commands.add_parser("run", help="start the Rasa server, the action server and the gateway")
    commands.add_parser("actions", help="start the action server")
    commands.add_parser("gateway", help="start the gateway")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL at INFO, and Rasa's status URL carries the API token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings.from_env()
    if args.command == "catalog":
        return _catalog_check(args.directory or settings.catalog_dir)
    if args.command == "actions":
        return _actions(settings)
    if args.command == "gateway":
        return _gateway(settings)
    return _run(settings)


if __name__ == "__main__":
    sys.exit(main())
