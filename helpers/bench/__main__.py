"""``python -m helpers.bench gateway|pipeline``: the benchmarks; each writes a JSON report.

``gateway``   the embedded gateway alone: in-process decisions, client-observed HTTP against
              the /health floor, wrk throughput, memory, disk per audit, fsync cost.
``pipeline``  pre-check + LLM call + audit end to end, with the paired overhead targets.
``proxy``     proxy mode beside gateway mode: the proxy hop's added latency and TTFT.
``service``   the governed web service under concurrent load: governed against direct.
``policy-replay``  a candidate policy replayed over 10,000 masked queries, beside the current.
``peers``     this gateway beside LiteLLM and Portkey, paired (``make bench-peers``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers.settings import PROJECT_ROOT

from . import peers, pipeline, policy_replay, proxy, replies
from .service import add_service_arguments

#: The benchmarks with a full parser of their own (``--help`` included), in help order.
OWN_PARSERS: tuple[tuple[str, Callable[[list[str]], int], str], ...] = (
    ("pipeline", pipeline.main, "pre-check + LLM call + audit end to end; paired overhead targets"),
    ("proxy", proxy.main, "proxy mode beside gateway mode: the hop's added latency and TTFT"),
    ("replies", replies.main, "what inspecting a streamed answer costs"),
    ("policy-replay", policy_replay.main, "replaying a candidate policy over masked traffic"),
    ("peers", peers.main, "this gateway beside LiteLLM and Portkey, paired"),
)


def add_own_parser(sub: Any, name: str, main: Callable[[list[str]], int], help: str) -> None:
    """Register ``name`` on ``sub`` (the subparsers) so that it runs ``main(words)``.

    The subcommand takes every word after its name, options too (no prefix characters),
    and hands them to the benchmark's ``main``, then exits with its status.
    """

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m helpers.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gateway", help="the embedded gateway: decision time, HTTP, throughput")
    g.add_argument("--quick", action="store_true", help="small samples; under a minute")
    g.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "bench-gateway.json")
    g.add_argument("--no-wrk", action="store_true", help="skip the wrk throughput runs")
    g.add_argument("--n", type=int, default=None, help="HTTP samples per step (default 1000/5000)")
    g.add_argument(
        "--pin",
        action="store_true",
        help="keep the gateway and the clients on separate CPUs (recorded in the report)",
    )
    g.add_argument(
        "--only",
        default=None,
        help="comma-separated sections to run (decision, http, throughput, fsync, readers); "
        "default all",
    )
    g.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="PATH",
        help="another checkout (the tree before a change): its decisions are timed in the "
        "same run, interleaved with this tree's",
    )
    for name, run, help in OWN_PARSERS:
        add_own_parser(sub, name, run, help)
    add_service_arguments(sub.add_parser("service", help="the governed web service under load"))
    args = p.parse_args(argv)
    if args.command == "gateway":
        from .gateway import SECTIONS, run_gateway_bench

        only = SECTIONS if args.only is None else tuple(x.strip() for x in args.only.split(","))
        unknown = sorted(set(only) - set(SECTIONS))
        if unknown:
            p.error(
                f"--only: unknown section(s) {', '.join(unknown)}; pick from {', '.join(SECTIONS)}"
            )
        return run_gateway_bench(
            quick=args.quick,
            out=args.out,
            use_wrk=not args.no_wrk,
            n=args.n,
            pin=args.pin,
            only=only,
            baseline=args.baseline,
        )
    if args.command == "service":
        from .service import run_service_bench

        return run_service_bench(args.n, args.concurrency, args.time_scale, args.out)
    return 2


if __name__ == "__main__":
    sys.exit(main())
