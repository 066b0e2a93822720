"""The gateway benchmark: in-process decisions, client-observed HTTP, throughput, memory.

Each section measures on the client with ``perf_counter_ns`` around exactly the step named,
warms up first and says so, and reports full percentiles with n. The `/health` floor is
measured through the same client in the same run, interleaved in random order with the
pre-checks and audits, so "the gateway's own cost" is a same-run difference.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from helpers.corpus import load_corpus
from helpers.gateway.engine import DecisionEngine
from helpers.lab.load_results import LOAD_USER
from helpers.lab.machine import machine_info, machine_line, pin_beside, pinned, write_report
from helpers.lab.stats import summarize
from helpers.server import start_gateway, start_service
from helpers.settings import PROJECT_ROOT, Settings
from helpers.trail.quality import quality_report, run_corpus

from .adversarial import adversarial_inputs, adversarial_section
from .baseline import baseline_section
from .readers import reader_section
from .throughput import throughput_section

__all__ = ["SECTIONS", "run_gateway_bench"]

_PAD = (
    "Our platform team is reviewing how we deploy, monitor and roll back language models "
    "across regions, and we want a short checklist that covers evaluation, canary releases, "
    "observability, cost controls and incident response for the next quarter. "
)


# A 5 KB document as applications send them: a support ticket with an e-mail thread, a
# table pasted from a spreadsheet and a RAG chunk of policy text. Numbers everywhere (dates,
# amounts, order and ticket numbers, versions), no personal data: it must be approved.
_DOCUMENT_PARTS = (
    "Ticket #48213 (priority: normal, opened 2026-03-14 09:12 UTC)\n"
    "Subject: Re: Re: invoice totals do not match the March export\n\n",
    "> On 13 March 2026, at 16:40, the billing team wrote:\n"
    "> We re-ran the export for account group EU-West after the 2.14.3 release. The totals\n"
    "> should now include the credit notes issued between 1 and 12 March.\n\n",
    "Hi both, thanks for the quick turnaround. Two of the rows still look off to me, see\n"
    "the table below (copied from the spreadsheet, tabs and all):\n\n",
    "| Order    | Date       | Net (EUR) | VAT   | Gross (EUR) | Status   |\n"
    "|----------|------------|-----------|-------|-------------|----------|\n"
    "| 1042-77  | 2026-03-02 | 1,240.00  | 19 %  | 1,475.60    | paid     |\n"
    "| 1042-78  | 2026-03-03 |   310.50  | 19 %  |   369.50    | open     |\n"
    "| 1042-91  | 2026-03-09 | 2,005.00  |  7 %  | 2,145.35    | disputed |\n\n",
    "Policy excerpt (finance handbook, section 4.2, revision 11): credit notes are matched\n"
    "to the original invoice by order number; partial credits reduce the net amount before\n"
    "tax is applied, and a disputed invoice is held for up to 30 days while the account\n"
    "manager confirms the adjustment with the customer. Exports run nightly at 02:00 and\n"
    "cover the previous calendar day; a re-run replaces the earlier file for that day.\n\n",
)
_DOCUMENT_5KB = ("".join(_DOCUMENT_PARTS) * 5)[: 5 * 1024]


def _ms(ns: int) -> float:
    return ns / 1e6


def _bad_cards() -> str:
    """1 MiB of distinct Visa-shaped numbers that all fail Luhn: the validator flood case."""
    rng = random.Random(1)
    out: list[str] = []
    size = 0
    while size < 1 << 20:
        digits = [4] + [rng.randrange(10) for _ in range(15)]
        total = sum(
            d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2)
            for i, d in enumerate(reversed(digits))
        )
        if total % 10:
            out.append("".join(map(str, digits)))
            size += 17
    return " ".join(out)[: 1 << 20]


def _adversarial_inputs() -> dict[str, str]:
    """About 1 MiB each: the inputs built to hurt the scanners (worst of 3 is reported)."""
    big = (_PAD * (1 + (1 << 20) // len(_PAD)))[: 1 << 20]
    return {
        "1 MiB benign prose": big,
        "1 MiB of quotes": "'" * (1 << 20),
        "1 MiB of digits": "1" * (1 << 20),
        "1 MiB digit-dash runs": "1-" * (1 << 19),
        "1 MiB of 'union select '": ("union select " * 80_660)[: 1 << 20],
        "1 MiB of '/*'": "/*" * (1 << 19),
        "1 MiB of 'a@'": "a@" * (1 << 19),
        '1 MiB of "a\'--"': "a'--" * (1 << 18),
        "1 MiB of 'sleep('": ("sleep(" * 174_763)[: 1 << 20],
        "1 MiB of spaces then SSN": " " * ((1 << 20) - 12) + " 123-45-6789",
        "1 MiB of Luhn-failing card numbers": _bad_cards(),
        "1 MiB of SSN-shaped, area 000": " ".join(
            f"000-{i % 98 + 1:02d}-{i % 9998 + 1:04d}" for i in range(95_000)
        )[: 1 << 20],
        "1 MiB of labelled, split card-shaped runs": (
            "card 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 2 " * ((1 << 20) // 37)
        )[: 1 << 20],
        "1 MiB of base64-shaped runs": ("QUJDREVGR0hJSktMTU5PUA== " * ((1 << 20) // 25))[: 1 << 20],
        "1 MiB of letters glued to digits": ("x1234ab" * ((1 << 20) // 7))[: 1 << 20],
        "1 MiB of quoted-printable escapes": ("=3D=27" * ((1 << 20) // 6))[: 1 << 20],
        "1 MiB of number words": ("dos tres cuatro " * ((1 << 20) // 16))[: 1 << 20],
        "1 MiB of questions about a payload": ("what does ' OR '1'='1 do? " * ((1 << 20) // 26))[
            : 1 << 20
        ],
    }


def _timed(engine: DecisionEngine, texts: list[str], passes: int) -> list[float]:
    out: list[float] = []
    for _ in range(passes):
        for text in texts:
            t0 = time.perf_counter_ns()
            engine.decide(text, "user-123")
            out.append((time.perf_counter_ns() - t0) / 1e3)
    return out


def _decision_section(quick: bool, baseline: Path | None = None) -> dict[str, Any]:
    settings = Settings.load()
    engine = DecisionEngine.from_settings(settings, rate_limits=False)
    rows = load_corpus()
    verdicts = quality_report(run_corpus(engine, rows))
    passes = 3 if quick else 20
    for row in rows:  # warm-up pass, discarded: first-call costs (imports, caches)
        engine.decide(row.query, row.user_token)
    corpus_us: list[float] = []
    for _ in range(passes):
        for row in rows:
            t0 = time.perf_counter_ns()
            engine.decide(row.query, row.user_token)
            corpus_us.append((time.perf_counter_ns() - t0) / 1e3)
    long_prompts = [(row.query + " " + _PAD * 20)[:2048] for row in rows if row.expected_approved]
    # The first pass over the long texts is timed apart and left out, like the corpus's
    # warm-up: RE2 builds each pattern's matching states lazily, on the first text that needs
    # them (up to a millisecond or so once per state, never again).
    first_us = _timed(engine, long_prompts, 1)
    long_us = _timed(engine, long_prompts, 1 if quick else 5)
    document = engine.decide(_DOCUMENT_5KB, "user-123")
    document_us = _timed(engine, [_DOCUMENT_5KB], 50 if quick else 500)
    adversarial = _adversarial_inputs()
    worst: dict[str, float] = {}
    for name, text in adversarial.items():
        worst[name] = max(_timed(engine, [text], 3)) / 1e3
    out = {
        "adversarial": adversarial_section(engine),
        "corpus": {
            "rows": verdicts.total,
            "correct": verdicts.correct,
            "misses": [repr(r) for r in verdicts.results if not r.correct],
        },
        "decision_us_corpus": summarize(corpus_us).as_dict(),
        "decision_us_corpus_passes": passes,
        "decision_us_2kb": summarize(long_us).as_dict(),
        "decision_us_2kb_first_pass": summarize(first_us).as_dict(),
        "decision_us_5kb_document": summarize(document_us).as_dict(),
        "document_5kb_approved": document.approved,
        "adversarial_ms_worst_of_3": worst,
    }
    if baseline is not None:
        print(f"   ... and the same decisions in {baseline}, interleaved ...", flush=True)
        scenarios = {
            "corpus": [row.query for row in rows],
            "2kb": long_prompts,
            "5kb_document": [_DOCUMENT_5KB] * 20,
            "adversarial": list(adversarial.values()),
            "floods": list(adversarial_inputs().values()),
        }
        out["baseline"] = baseline_section(
            baseline,
            PROJECT_ROOT,
            scenarios,
            rounds=3 if quick else 10,
            worst_of=("adversarial", "floods"),
        )
    return out


def _pre_check_body(query: str) -> dict[str, str]:
    return {"user_token": LOAD_USER, "client_id": "bench", "query": query}


def _http_section(url: str, n: int, warmup: int) -> dict[str, Any]:
    """Interleave /health, pre-check and audit through one keep-alive httpx.Client."""
    queries = [r.query for r in load_corpus() if r.expected_approved]
    rng = random.Random(7)
    samples: dict[str, list[float]] = {"health": [], "pre_check": [], "audit": []}
    errors = 0
    with httpx.Client(base_url=url, timeout=10.0) as client:
        for i in range(warmup + n):
            order = ["health", "governed"]
            rng.shuffle(order)
            for step in order:
                if step == "health":
                    t0 = time.perf_counter_ns()
                    r = client.get("/health")
                    r.json()
                    dt = time.perf_counter_ns() - t0
                    if i >= warmup:
                        samples["health"].append(_ms(dt))
                    errors += r.status_code != 200
                    continue
                body = _pre_check_body(queries[i % len(queries)])
                t0 = time.perf_counter_ns()
                r = client.post("/api/policy/pre-check", json=body)
                ctx = r.json()
                dt_pre = time.perf_counter_ns() - t0
                errors += r.status_code != 200
                audit = {
                    "context_id": ctx.get("context_id", ""),
                    "client_id": "bench",
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "latency_ms": 640,
                    "token_usage": {"prompt_tokens": 25, "completion_tokens": 150},
                }
                t0 = time.perf_counter_ns()
                r = client.post("/api/audit/llm-call", json=audit)
                r.json()
                dt_audit = time.perf_counter_ns() - t0
                errors += r.status_code != 200
                if i >= warmup:
                    samples["pre_check"].append(_ms(dt_pre))
                    samples["audit"].append(_ms(dt_audit))
    out: dict[str, Any] = {k: summarize(v).as_dict() for k, v in samples.items()}
    out["errors"] = errors
    out["warmup_discarded"] = warmup
    out["client"] = f"httpx.Client {httpx.__version__}, keep-alive, sequential"
    floor = out["health"]["p50"]
    out["pre_check_p50_above_floor_ms"] = out["pre_check"]["p50"] - floor
    out["audit_p50_above_floor_ms"] = out["audit"]["p50"] - floor
    out["pre_check_p99_plus_audit_p99_ms"] = out["pre_check"]["p99"] + out["audit"]["p99"]
    return out


def _http_beside_baseline(urls: dict[str, str], n: int, warmup: int) -> dict[str, Any]:
    """/health and pre-check against this tree's gateway and the baseline tree's, all four
    steps of each round in random order through one keep-alive client per gateway, so the
    pre-check's cost above the floor is compared within one run."""
    queries = [r.query for r in load_corpus() if r.expected_approved]
    rng = random.Random(13)
    samples: dict[str, dict[str, list[float]]] = {t: {"health": [], "pre_check": []} for t in urls}
    clients = {tree: httpx.Client(base_url=url, timeout=10.0) for tree, url in urls.items()}
    errors = 0
    try:
        for i in range(warmup + n):
            steps = [(tree, step) for tree in urls for step in ("health", "pre_check")]
            rng.shuffle(steps)
            for tree, step in steps:
                client = clients[tree]
                t0 = time.perf_counter_ns()
                if step == "health":
                    r = client.get("/health")
                else:
                    body = _pre_check_body(queries[i % len(queries)])
                    r = client.post("/api/policy/pre-check", json=body)
                r.json()
                dt = time.perf_counter_ns() - t0
                errors += r.status_code != 200
                if i >= warmup:
                    samples[tree][step].append(_ms(dt))
    finally:
        for client in clients.values():
            client.close()
    out: dict[str, Any] = {"errors": errors, "warmup_discarded": warmup}
    for tree, by_step in samples.items():
        summary: dict[str, Any] = {step: summarize(v).as_dict() for step, v in by_step.items()}
        summary["pre_check_p50_above_floor_ms"] = (
            summary["pre_check"]["p50"] - summary["health"]["p50"]
        )
        out[tree] = summary
    return out


def _disk_per_audit(db: Path) -> float | None:
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        audits = con.execute("SELECT COUNT(*) FROM audits").fetchone()[0]
        try:
            size = con.execute("SELECT SUM(pgsize) FROM dbstat WHERE name = 'audits'").fetchone()[0]
        except sqlite3.OperationalError:  # dbstat not compiled in
            return None
        return size / audits if audits else None
    finally:
        con.close()


def _check(
    targets: dict[str, Any],
    name: str,
    value: float | None,
    limit: float,
    unit: str,
    higher_is_better: bool = False,
) -> None:
    ok = value is not None and (value >= limit if higher_is_better else value <= limit)
    targets[name] = {"value": value, "limit": limit, "unit": unit, "met": ok}


#: The sections ``--only`` can pick, in the order they run.
SECTIONS = ("decision", "http", "throughput", "fsync", "readers")


def run_gateway_bench(
    quick: bool,
    out: Path,
    use_wrk: bool = True,
    n: int | None = None,
    pin: bool = False,
    only: tuple[str, ...] = SECTIONS,
    baseline: Path | None = None,
) -> int:
    """Run the sections in ``only`` (all by default), write the JSON report to ``out``;
    ``pin`` keeps the gateway and the clients (this process, wrk) on separate CPUs (see
    :func:`pinned`). Targets of sections not run are left out of the report. ``baseline``
    names another checkout whose decisions are timed beside this tree's, interleaved
    (:mod:`.baseline`)."""
    report: dict[str, Any] = {
        "benchmark": "gateway",
        "quick": quick,
        "machine": machine_info(),
        "sections": list(only),
    }
    if "decision" in only:
        print("1/5 in-process decisions over the corpus ...", flush=True)
        report["decision"] = _decision_section(quick, baseline)
    n_default, warmup = (1000, 200) if quick else (5000, 500)
    n = n or n_default
    warmup = min(warmup, max(1, n // 5))
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        if {"http", "throughput"} & set(only):
            with start_gateway(db_path=db) as gw, pinned(gw.pid if pin else None) as pinning:
                report["pinning"] = pinning
                if "http" in only:
                    print(f"2/5 client-observed HTTP against {gw.url} (n={n}) ...", flush=True)
                    report["http"] = _http_section(gw.url, n, warmup)
                if "http" in only and baseline is not None:
                    print(
                        f"   ... and beside a gateway from {baseline}, interleaved ...", flush=True
                    )
                    # Run from the baseline tree, with only it on the path: `python -m`
                    # puts the working directory first on sys.path.
                    args = [
                        "--host",
                        "127.0.0.1",
                        "--port",
                        "0",
                        "--db",
                        str(Path(tmp) / "baseline.db"),
                    ]
                    with start_service(
                        "helpers.gateway",
                        args,
                        name="gateway-baseline",
                        env={"PYTHONPATH": str(baseline)},
                        cwd=baseline,
                    ) as old:
                        pin_beside(old.pid, pinning)
                        report["http_baseline"] = _http_beside_baseline(
                            {"current": gw.url, "baseline": old.url}, n, warmup
                        )
                        report["http_baseline"]["pinned_as_current"] = pinning is not None
                if "throughput" in only and use_wrk:
                    print("3/5 throughput with wrk at 1, 8, 32 connections ...", flush=True)
                    report["throughput"] = throughput_section(gw.url, gw.pid, quick, LOAD_USER)
                elif "throughput" in only:
                    report["throughput"] = {"skipped": "--no-wrk: the wrk runs were not asked for"}
            report["disk_bytes_per_audit"] = _disk_per_audit(db)
        if "fsync" in only:
            db_fsync = Path(tmp) / "bench-fsync.db"
            with (
                start_gateway(db_path=db_fsync, extra_args=["--fsync"]) as gw,
                pinned(gw.pid if pin else None),
            ):
                print("4/5 the same HTTP loop with --fsync (power-loss durable) ...", flush=True)
                report["http_fsync"] = _http_section(gw.url, n // 4, warmup // 4)
        if "readers" in only:
            rows = 20_000 if quick else 200_000
            print(
                f"5/5 pre-checks beside a reader of a {rows:,}-row trail (verify, paging) ...",
                flush=True,
            )
            report["readers"] = reader_section(
                Path(tmp), rows, n, warmup, LOAD_USER, lambda pid: pinned(pid if pin else None)
            )
    report["targets"] = _targets(report)
    write_report(out, report)
    _print_summary(report)
    print(f"\nreport written to {out}")
    return 0


def _targets(report: dict[str, Any]) -> dict[str, Any]:
    t: dict[str, Any] = {}
    if "decision" in report:
        _decision_targets(t, report["decision"])
    if "http" in report:
        h = report["http"]
        _check(t, "pre_check_p50_above_floor_ms", h["pre_check_p50_above_floor_ms"], 0.15, "ms")
        _check(t, "audit_p50_above_floor_ms", h["audit_p50_above_floor_ms"], 0.3, "ms")
        _check(
            t, "pre_check_p99_plus_audit_p99_ms", h["pre_check_p99_plus_audit_p99_ms"], 3.0, "ms"
        )
    rd = report.get("readers")
    for phase in ("verify", "records") if rd else ():
        _check(
            t,
            f"pre_check_p99_during_{phase}_ms",
            rd[f"during_{phase}"]["pre_check"]["p99"],
            5.0,
            "ms",
        )
        _check(t, f"pre_check_p50_shift_during_{phase}_ms", rd[f"{phase}_p50_shift_ms"], 0.1, "ms")
    thr = report.get("throughput", {})
    if "pre_check" in thr:
        c32 = thr["pre_check"][-1]
        _check(t, "pre_checks_per_s_at_32", c32["requests_per_s"], 5000, "req/s", True)
        _check(t, "non_2xx_at_32", c32["non_2xx"] + c32["socket_errors"], 0, "responses")
        _check(t, "rss_mb_after_soak", thr["memory"]["rss_mb_after"], 150, "MB")
    if "disk_bytes_per_audit" in report:
        _check(t, "disk_bytes_per_audit", report["disk_bytes_per_audit"], 1024, "bytes")
    return t


def _decision_targets(t: dict[str, Any], d: dict[str, Any]) -> None:
    _check(t, "decision_p50_us", d["decision_us_corpus"]["p50"], 25, "us")
    _check(t, "decision_p99_us", d["decision_us_corpus"]["p99"], 100, "us")
    _check(t, "decision_2kb_p50_us", d["decision_us_2kb"]["p50"], 25, "us")
    _check(t, "decision_2kb_p99_us", d["decision_us_2kb"]["p99"], 100, "us")
    _check(t, "decision_5kb_document_p50_us", d["decision_us_5kb_document"]["p50"], 500, "us")
    _check(t, "adversarial_worst_ms", max(d["adversarial_ms_worst_of_3"].values()), 50, "ms")
    _check(t, "flood_worst_ms", max(d["adversarial"]["flood_ms_worst_of_3"].values()), 50, "ms")
    _check(
        t, "corpus_correct_pct", 100 * d["corpus"]["correct"] / d["corpus"]["rows"], 100, "%", True
    )


def _print_corpus(d: dict[str, Any]) -> None:
    c = d["corpus"]
    print(f"corpus: {c['correct']}/{c['rows']} decided as labelled")
    a = d["adversarial"]
    print(
        f"adversarial corpus: {a['correct']}/{a['rows']} decided as labelled "
        f"({a['threat_rows']} threats, {a['benign_rows']} benign look-alikes)"
    )
    for name, cat in a["by_category"].items():
        kind = "threat" if cat["threat"] else "benign"
        print(f"  {name:<32}{kind:<8}{cat['correct']:>4}/{cat['rows']}")
    for miss in a["misses"]:
        print(f"  miss: {miss}")
    for name, was_blocked in a["payload_floods_blocked"].items():
        print(f"  {'blocked' if was_blocked else 'MISSED '} payload in flood: {name}")


def _print_baseline(b: dict[str, Any] | None) -> None:
    if b is None:
        return
    print(f"\nthis tree beside {b['tree']} ({b['rounds']} interleaved rounds, decision in us):")
    print(f"{'scenario':<22}{'tree':<10}{'n':>7}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>10}")
    for name, entry in b["scenarios"].items():
        for tree in ("baseline", "current"):
            s = entry[tree]
            if "worst_ms" in s:
                print(
                    f"{name:<22}{tree:<10}{'':>34}{'worst ' + format(s['worst_ms'], '.1f'):>10} ms"
                )
                continue
            print(
                f"{name:<22}{tree:<10}{s['n']:>7}{s['p50']:>9.1f}{s['p90']:>9.1f}"
                f"{s['p99']:>9.1f}{s['max']:>10.1f}"
            )


def _print_summary(r: dict[str, Any]) -> None:
    print(f"\n{machine_line(r['machine'])}")
    if "decision" in r:
        _print_corpus(r["decision"])
    print(f"\n{'step':<34}{'n':>7}{'p50':>9}{'p90':>9}{'p99':>9}{'p99.9':>9}{'max':>9}")
    rows = [
        ("decision, corpus (us)", ("decision", "decision_us_corpus")),
        ("decision, 2 KB prompts (us)", ("decision", "decision_us_2kb")),
        ("  their first pass, left out (us)", ("decision", "decision_us_2kb_first_pass")),
        ("decision, 5 KB document (us)", ("decision", "decision_us_5kb_document")),
        ("GET /health floor (ms)", ("http", "health")),
        ("POST pre-check (ms)", ("http", "pre_check")),
        ("POST audit, committed (ms)", ("http", "audit")),
        ("POST audit, --fsync (ms)", ("http_fsync", "audit")),
        ("pre-check, no reader (ms)", ("readers", "idle", "pre_check")),
        ("pre-check during verify (ms)", ("readers", "during_verify", "pre_check")),
        ("pre-check during paging (ms)", ("readers", "during_records", "pre_check")),
    ]
    for name, where in rows:
        s: Any = r
        for key in where:
            s = s.get(key) if s is not None else None
        if s is None:
            continue
        print(
            f"{name:<34}{s['n']:>7}{s['p50']:>9.3f}{s['p90']:>9.3f}{s['p99']:>9.3f}"
            f"{s['p999']:>9.3f}{s['max']:>9.3f}"
        )
    _print_baseline(r.get("decision", {}).get("baseline"))
    hb = r.get("http_baseline")
    if hb is not None:
        print(
            "pre-check p50 above the /health floor, same run (ms): "
            f"baseline {hb['baseline']['pre_check_p50_above_floor_ms']:.3f}, "
            f"current {hb['current']['pre_check_p50_above_floor_ms']:.3f}"
        )
    thr = r.get("throughput", {})
    for run in thr.get("pre_check", []):
        print(
            f"wrk pre-check c={run['connections']:<3} {run['requests_per_s']:>9.0f} req/s, "
            f"non-2xx {run['non_2xx']}, socket errors {run['socket_errors']}"
        )
    rd = r.get("readers")
    if rd is not None:
        by_round = "; ".join(
            f"{k} {rd[k]['p50_by_round']}" for k in ("idle", "during_verify", "during_records")
        )
        print(f"pre-check p50 by round (ms): {by_round}")
    phases = (("during_verify", "verifications"), ("during_records", "pages"))
    for phase, what in () if rd is None else phases:
        step, ph = rd[phase]["reader_step_s"], rd[phase]
        took = f", p50 {step['p50']:.3f} s each" if step else ""
        print(
            f"{phase.replace('_', ' ')} ({rd['rows']:,}-row trail, {ph['seconds']} s): "
            f"{ph['reader_steps_done']} {what} done{took}, {ph['reader_rows']:,} rows "
            "read"
        )
    if "memory" in thr:
        mem = thr["memory"]
        print(
            f"memory: {mem['rss_mb_before']} MB -> {mem['rss_mb_after']} MB RSS "
            f"after {mem['pre_checks']} pre-checks"
        )
    print("\ntargets:")
    for name, t in r["targets"].items():
        value = "n/a" if t["value"] is None else f"{t['value']:.3f}"
        print(
            f"  {'met ' if t['met'] else 'MISS'} {name}: {value} {t['unit']} (limit {t['limit']})"
        )
