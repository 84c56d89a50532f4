"""The Rasa server's entry point: `make run`, the integration tests and production start it here.

Run it with the Rasa environment's Python, with Rasa's own `run` arguments, minus the token:

    RASA_TOKEN=... .venv-rasa/bin/python -m bot.runtime.rasa_server run --enable-api \\
        --interface 127.0.0.1 --port 5005 --model models/sla-bot.tar.gz \\
        --endpoints var/endpoints-5005.yml --credentials bot/runtime/credentials.yml

Why a launcher rather than the `rasa` script:

- Secrets stay off the command line. Any local user can read a process's command line
  (`ps`, /proc/<pid>/cmdline), so the HTTP API token is never passed there: it is read from
  RASA_TOKEN in this process's environment and appended to `sys.argv` inside the process,
  just before Rasa's own CLI entry point (`rasa.__main__.main`) parses it. Changing
  `sys.argv` does not change /proc/<pid>/cmdline. A token given on the command line is refused.
- It is the one narrow place where runtime patches to the Rasa server are installed, before
  Rasa's CLI starts; `bot.runtime.rasa_patches` lists them and documents each (what it
  changes, why, and how to drop it). The server logs "installed Rasa patches: ..." at start-up.
- pythainlp's dictionary trie is built here, before the server listens, not by the first
  citizen's message (about a second).

Standard library only until Rasa itself is imported, so the argument handling is testable in
the app environment.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Mapping, Sequence

TOKEN_ENV = "RASA_TOKEN"
TOKEN_OPTION = "--auth-token"


class LaunchError(SystemExit):
    """The launcher was started wrongly; the message says how to start it."""


def rasa_arguments(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """Rasa's arguments (without the program name): `argv` plus the token from `environ`."""
    if not argv or argv[0] != "run":
        raise LaunchError("usage: python -m bot.runtime.rasa_server run [rasa run options]")
    if any(arg == TOKEN_OPTION or arg.startswith(TOKEN_OPTION + "=") for arg in argv):
        raise LaunchError(
            f"do not pass {TOKEN_OPTION} on the command line (every local user can read it); "
            f"set {TOKEN_ENV} in the environment"
        )
    token = environ.get(TOKEN_ENV, "")
    if not token:
        raise LaunchError(f"{TOKEN_ENV} is empty: the Rasa HTTP API must be token-protected")
    return [*argv, TOKEN_OPTION, token]


def _rasa_cli() -> Callable[[], None]:
    """Rasa's own command-line entry point, with the patches installed (imported late: needs Rasa)."""
    from rasa.__main__ import main

    from bot.runtime import rasa_patches

    installed = rasa_patches.install()
    print(f"installed Rasa patches: {', '.join(installed)}", flush=True)
    warm_up_thai_dictionary()
    return main


def warm_up_thai_dictionary() -> None:
    """Build pythainlp's dictionary trie now: it is built on first use, which took the first
    message after every start about a second (issue 7)."""
    from pythainlp.tokenize import word_dict_trie

    word_dict_trie()


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
    """Put the token into `sys.argv` in this process, then hand over to Rasa's CLI."""
    arguments = rasa_arguments(
        sys.argv[1:] if argv is None else argv, os.environ if environ is None else environ
    )
    sys.argv = ["rasa", *arguments]
    _rasa_cli()()


if __name__ == "__main__":
    main()
