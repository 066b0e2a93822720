"""One way to register a benchmark that parses its own options under ``python -m helpers.bench``.

``pipeline``, ``proxy``, ``replies`` and ``peers`` each have a full parser of their own (``--help``
included). The subcommand takes every word after its name, options too (no prefix
characters), and hands them to the benchmark's ``main``, then exits with its status.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["add_subcommand"]


def add_subcommand(sub: Any, name: str, main: Callable[[list[str]], int], help: str) -> None:
    """Register ``name`` on ``sub`` (the subparsers) so that it runs ``main(words)``."""

    class _Run(argparse.Action):
        def __call__(
            self,
            parser: argparse.ArgumentParser,
            namespace: argparse.Namespace,
            values: Any,
            option_string: str | None = None,
        ) -> None:
            parser.exit(main(list(values)))

    cmd = sub.add_parser(name, add_help=False, prefix_chars="\0", help=help)
    cmd.add_argument("args", nargs="*", action=_Run, help=argparse.SUPPRESS)
