"""The peer benchmark: this gateway's governance overhead beside LiteLLM's and Portkey's.

``make bench-peers`` builds the peers' own environments under ``build/peers/`` (LiteLLM from
PyPI, Portkey's gateway from npm, both pinned in the Makefile) and runs
``python -m helpers.bench peers``, which starts, all on 127.0.0.1:

* the OpenAI stand-in with no simulated delay, behind every setup;
* two embedded gateways with proxy mode on: ``PII_ACTION=block`` and ``PII_ACTION=redact``,
  reply inspection on in both (``GATEWAY_INSPECT_REPLIES``, the default);
* LiteLLM's proxy, one model routed to the stand-in and its ``litellm_content_filter``
  guardrail set to mask personal data and keys both ways, used per request (Presidio, its
  other PII guardrail, calls analyzer services and language models that do not run offline);
* Portkey's gateway, routing only (``x-portkey-custom-host``: the stand-in).

Then one keep-alive client runs N paired iterations: in each, every setup answers the same
benign query once, in a random order, and each setup's overhead is its time minus the direct
call's in that iteration (:func:`paired_iterations`). Every answer must be the stand-in's
own text for that query (a real completion, not an error page), and every governed request
must have left its audit record in the gateway's trail. Afterwards each server's CPU time
per request is read from ``/proc`` over a run of its own (:func:`cpu_per_request`).

The JSON report (:func:`build_report`) keeps the machine, the load average before and after,
the peers' versions and configuration, every setup's percentiles and raw overhead samples,
the ratios to Portkey and the targets; the figure (:func:`plot_peers`) is drawn from the
report alone. Benchmarks are not tests: nothing here fails a build. Explained in
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx
import numpy as np
import pandas as pd

from helpers.lab.latency_plots import axes_or_new
from helpers.lab.load_results import LOAD_USER
from helpers.lab.machine import cpu_seconds, machine_info, machine_line, write_report
from helpers.lab.proxy_modes import approved_queries, proxy_request_body
from helpers.lab.stats import summarize
from helpers.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "SETUPS",
    "TARGETS",
    "Answer",
    "PairedRun",
    "Setup",
    "build_parser",
    "build_report",
    "completion_text",
    "main",
    "paired_iterations",
    "plot_peers",
    "run_peers_bench",
]

MODEL = "gpt-4o-mini"
PEERS_DIR = PROJECT_ROOT / "build" / "peers"
REFERENCE = "portkey"
BASELINE = "direct"
#: Overheads at or below zero (a setup faster than the direct call in that iteration, which
#: noise allows) are drawn at this floor on the log axis; the report keeps the true values.
PLOT_FLOOR_MS = 0.01


@dataclass(frozen=True)
class Setup:
    """One way of making the same chat call: who serves it and whether it is governed."""

    name: str
    server: str  # the process that serves it, whose CPU time per request is read
    label: str
    governed: bool  # every request must leave an audit record in the gateway's trail
    description: str


# A table: `# fmt: skip` keeps each setup on two or three lines, not one line per argument.
SETUPS: tuple[Setup, ...] = (
    Setup("direct", "standin", "direct call (baseline)", False,
          "POST /v1/chat/completions to the stand-in itself"),
    Setup("gateway_mode", "block", "gateway mode, block", True,
          "pre-check + the direct call + audit: three requests, PII_ACTION=block"),
    Setup("proxy_openai", "block", "proxy /v1/chat/completions, block", True,
          "one request to the gateway's OpenAI-compatible endpoint, PII_ACTION=block, "
          "replies inspected"),
    Setup("proxy_request", "block", "proxy /api/request, block", True,
          "one request to the gateway's AxonFlow proxy endpoint, PII_ACTION=block, "
          "replies inspected"),
    Setup("proxy_openai_redact", "redact", "proxy /v1/chat/completions, redact", True,
          "as proxy_openai on a gateway with PII_ACTION=redact, replies inspected"),
    Setup("proxy_request_redact", "redact", "proxy /api/request, redact", True,
          "as proxy_request on a gateway with PII_ACTION=redact, replies inspected"),
    Setup("litellm", "litellm", "LiteLLM proxy", False, "LiteLLM's proxy, routing only"),
    Setup("litellm_pii", "litellm", "LiteLLM + PII mask guardrail", False,
          "LiteLLM's proxy with its litellm_content_filter guardrail masking personal data "
          "and keys before the call and after it"),
    Setup("portkey", "portkey", "Portkey gateway", False,
          "Portkey's gateway, routing only: no policy, no audit"),
)  # fmt: skip


class Target(NamedTuple):
    setup: str
    stat: str  # "p50" or "p99" of the overhead
    max_ratio: float  # at most this times Portkey's same statistic, in the same run


TARGETS: tuple[Target, ...] = (
    Target("proxy_openai", "p50", 0.6),
    Target("proxy_openai", "p99", 0.6),
    Target("proxy_request", "p50", 0.6),
    Target("proxy_request", "p99", 0.6),
    Target("proxy_openai_redact", "p50", 0.8),
    Target("proxy_request_redact", "p50", 0.8),
)


class Answer(NamedTuple):
    """What one call returned: the completion's text and, for a governed one, its audit id."""

    text: str
    audit_id: str | None = None


class NotACompletion(ValueError):
    """An answer that is not a chat completion with text (an error page, a refusal)."""


def completion_text(body: Any) -> str:
    """The text of an OpenAI ``chat.completion`` body; :class:`NotACompletion` otherwise."""
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"]
        usage = body["usage"]["completion_tokens"]
    except (KeyError, IndexError, TypeError):
        raise NotACompletion(f"not a chat completion: {str(body)[:200]}") from None
    if not isinstance(text, str) or not text or not usage:
        raise NotACompletion(f"a completion without text or usage: {str(body)[:200]}")
    return text


# -- pairing ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairedRun:
    """One row per iteration: each setup's client-side time in ms (``<setup>_ms``) and the
    order they ran in. ``checks`` counts, per setup, answers that were the stand-in's own text
    (``same_text``) and, for governed setups, that carried an audit id (``audit_ids``)."""

    frame: pd.DataFrame = field(repr=False)
    errors: int
    error_examples: tuple[str, ...]
    checks: Mapping[str, Mapping[str, int]]
    audit_ids: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return len(self.frame)

    @property
    def setups(self) -> list[str]:
        return [c.removesuffix("_ms") for c in self.frame.columns if c.endswith("_ms")]

    def overheads(self, baseline: str = BASELINE) -> dict[str, np.ndarray]:
        """Per iteration, each setup's time minus the baseline's in the same iteration."""
        base = self.frame[f"{baseline}_ms"].to_numpy()
        return {s: self.frame[f"{s}_ms"].to_numpy() - base for s in self.setups if s != baseline}

    def __repr__(self) -> str:
        return f"<PairedRun n={self.n} setups={len(self.setups)} errors={self.errors}>"


def paired_iterations(
    calls: Mapping[str, Callable[[str], Answer]],
    queries: Sequence[str],
    *,
    governed: Sequence[str] = (),
    baseline: str = BASELINE,
    seed: int = 0,
    warmup: int = 20,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> PairedRun:
    """Every call once per query, in a random order per query, timed with ``clock``.

    The first ``warmup`` queries are run and discarded (connections, caches, imports). An
    iteration in which any call raises is dropped whole, so every row stays paired, and the
    error is kept (the first ten). Each answer's text is compared with the baseline's in the
    same iteration: the stand-in answers the same query with the same text, whoever asks.
    """
    if baseline not in calls:
        raise ValueError(f"the baseline {baseline!r} is not one of the calls {sorted(calls)}")
    rng = random.Random(seed)
    names = list(calls)
    rows: list[dict[str, Any]] = []
    errors: list[str] = []  # the first ten
    failed = 0
    same = dict.fromkeys(names, 0)
    audits: dict[str, list[str]] = {name: [] for name in governed}
    for i, query in enumerate([*queries[:warmup], *queries]):
        order = names[:]
        rng.shuffle(order)
        row: dict[str, Any] = {}
        answers: dict[str, Answer] = {}
        try:
            for name in order:
                started = clock()
                answers[name] = calls[name](query)
                row[f"{name}_ms"] = (clock() - started) / 1e6
        except Exception as exc:
            failed += 1
            if len(errors) < 10:
                errors.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
            continue
        if i < warmup:
            continue
        reference = answers[baseline].text
        for name, answer in answers.items():
            same[name] += answer.text == reference
            if name in audits and answer.audit_id:
                audits[name].append(answer.audit_id)
        row["order"] = ",".join(order)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*(f"{n}_ms" for n in names), "order"])
    checks = {
        name: {
            "same_text": same[name],
            **({"audit_ids": len(audits[name])} if name in audits else {}),
        }
        for name in names
    }
    return PairedRun(frame, failed, tuple(errors), checks, {k: tuple(v) for k, v in audits.items()})


# -- the report ----------------------------------------------------------------------------------
def build_report(
    run: PairedRun,
    *,
    setups: Sequence[Setup] = SETUPS,
    skipped: Mapping[str, str] | None = None,
    machine: Mapping[str, Any] | None = None,
    load: Mapping[str, Any] | None = None,
    versions: Mapping[str, str] | None = None,
    cpu_ms: Mapping[str, Mapping[str, Any]] | None = None,
    audited: Mapping[str, Mapping[str, int]] | None = None,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON report of a run: everything :func:`plot_peers` and a reader need."""
    overheads = run.overheads()
    described = {s.name: s for s in setups}
    summaries = {name: summarize(values).as_dict(digits=4) for name, values in overheads.items()}
    report: dict[str, Any] = {
        "benchmark": "peers",
        "machine": dict(machine or machine_info()),
        "load": dict(load or {}),
        "versions": dict(versions or {}),
        "config": dict(config or {}),
        "n": run.n,
        "errors": run.errors,
        "error_examples": list(run.error_examples),
        "setups": {
            name: {
                "label": described[name].label,
                "governed": described[name].governed,
                "description": described[name].description,
            }
            for name in [BASELINE, *overheads]
            if name in described
        },
        "skipped": dict(skipped or {}),
        "latency_ms": {
            name: summarize(run.frame[f"{name}_ms"]).as_dict(digits=4) for name in run.setups
        },
        "overhead_ms": summaries,
        "samples_ms": {
            name: [round(float(v), 4) for v in values] for name, values in overheads.items()
        },
        "checks": {name: dict(counts) for name, counts in run.checks.items()},
        "audited": {name: dict(v) for name, v in (audited or {}).items()},
        "cpu_ms_per_request": {name: dict(v) for name, v in (cpu_ms or {}).items()},
    }
    report["real_completions"] = all(c["same_text"] == run.n for c in run.checks.values())
    report["all_audited"] = all(
        c.get("audit_ids") == run.n
        for name, c in run.checks.items()
        if name in described and described[name].governed
    ) and all(v.get("missing", 0) == 0 for v in report["audited"].values())
    ref = summaries.get(REFERENCE)
    report["ratio_to_portkey"] = {
        name: {stat: round(s[stat] / ref[stat], 3) for stat in ("p50", "p99")}
        for name, s in summaries.items()
        if ref and name != REFERENCE and ref["p50"] > 0
    }
    report["targets"] = [_target(t, summaries) for t in TARGETS]
    return report


def _target(target: Target, summaries: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "setup": target.setup,
        "stat": target.stat,
        "max_ratio": target.max_ratio,
    }
    ours, ref = summaries.get(target.setup), summaries.get(REFERENCE)
    if ours is None or ref is None or ref[target.stat] <= 0:
        row.update(ratio=None, met=None, why="not measured in this run")
        return row
    ratio = ours[target.stat] / ref[target.stat]
    row.update(ratio=round(ratio, 3), met=bool(ratio <= target.max_ratio))
    return row


# -- the figure ----------------------------------------------------------------------------------
def plot_peers(report: Mapping[str, Any], *, ax: Axes | None = None) -> Axes:
    """Each setup's overhead samples on a log axis, one row per setup, p50 and p99 marked;
    the machine, load and n in the title. Drawn from the report alone."""
    ax = axes_or_new(ax, (10, 0.55 * len(report["samples_ms"]) + 2.2))
    names = list(report["samples_ms"])
    rng = np.random.default_rng(0)  # the jitter only: the same report draws the same figure
    for row, name in enumerate(names):
        values = np.asarray(report["samples_ms"][name], float)
        shown = np.maximum(values, PLOT_FLOOR_MS)
        jitter = rng.uniform(-0.28, 0.28, size=shown.size)
        color = f"C{row % 10}"
        ax.scatter(shown, row + jitter, s=4, alpha=0.18, color=color, linewidths=0)
        s = report["overhead_ms"][name]
        for stat in ("p50", "p99"):
            value = max(s[stat], PLOT_FLOOR_MS)
            ax.plot(
                [value, value],
                [row - 0.38, row + 0.38],
                color="black",
                lw=2.2 if stat == "p50" else 1.2,
                ls="-" if stat == "p50" else "--",
            )
        floored = int((values <= PLOT_FLOOR_MS).sum())
        note = f"\n{floored} at or below {PLOT_FLOOR_MS:g} ms" if floored else ""
        ax.annotate(
            f"p50 {s['p50']:.2f}  p99 {s['p99']:.2f} ms{note}",
            (1.005, row),
            xycoords=("axes fraction", "data"),
            va="center",
            fontsize=8,
        )
    labels = [report["setups"].get(n, {}).get("label", n) for n in names]
    ax.set_yticks(range(len(names)), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("overhead over the direct call, ms (log scale; solid p50, dashed p99)")
    machine, load = report.get("machine", {}), report.get("load", {})
    before = load.get("before", [None])[0] if load.get("before") else None
    after = load.get("after", [None])[0] if load.get("after") else None
    loads = (
        f"load {before:.2f} before, {after:.2f} after"
        if before is not None and after is not None
        else "load not recorded"
    )
    ax.set_title(
        f"Overhead per setup, n={report['n']} paired iterations, one request at a time, "
        f"zero-latency stand-in\n{machine.get('cores', '?')} cores, {machine.get('cpu', '?')}, "
        f"Python {machine.get('python', '?')}, {loads}, {machine.get('measured_at', '')}",
        fontsize=9,
    )
    return ax


def save_figure(report: Mapping[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plot_peers(report).get_figure(root=True)
    assert fig is not None  # an axes drawn by plot_peers always belongs to a figure
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


# -- the servers ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Peer(NamedTuple):
    name: str
    url: str
    pid: int
    headers: Mapping[str, str] = {}  # what each request to it carries (its key)


@contextmanager
def _process(
    name: str,
    command: list[str],
    url: str,
    health: str,
    env: Mapping[str, str],
    logs: Path,
    ready_s: float = 120.0,
) -> Iterator[Peer]:
    """Run ``command`` (serving ``url``, its port chosen beforehand) and wait until
    ``url + health`` answers 200; stopped on exit."""
    logs.mkdir(parents=True, exist_ok=True)
    log = (logs / f"{name}.log").open("w")
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
    )
    try:
        deadline = time.monotonic() + ready_s
        with httpx.Client(timeout=2) as http:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}; see {log.name}")
                try:
                    if http.get(url + health).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not healthy within {ready_s:g} s; see {log.name}")
                time.sleep(0.25)
        yield Peer(name, url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


LITELLM_GUARDRAIL = "pii-mask"
#: The content filter's prebuilt patterns for what this gateway's PII and secret rules find.
LITELLM_PATTERNS = (
    "us_ssn",
    "email",
    "us_phone",
    "credit_card",
    "iban",
    "aws_access_key",
    "github_token",
    "slack_token",
    "generic_api_key",
)


def litellm_config(standin_v1: str, master_key: str) -> str:
    """LiteLLM's proxy configuration: one model on the stand-in, the PII guardrail off by
    default and asked for per request, a master key (LiteLLM refuses to start without one)."""
    patterns = "\n".join(
        f"        - {{pattern_type: prebuilt, pattern_name: {p}, action: MASK}}"
        for p in LITELLM_PATTERNS
    )
    return f"""model_list:
  - model_name: {MODEL}
    litellm_params:
      model: openai/{MODEL}
      api_base: {standin_v1}
      api_key: offline-stand-in
guardrails:
  - guardrail_name: {LITELLM_GUARDRAIL}
    litellm_params:
      guardrail: litellm_content_filter
      mode: [pre_call, post_call]
      default_on: false
      patterns:
{patterns}
litellm_settings:
  telemetry: false
  drop_params: true
general_settings:
  master_key: {master_key}
"""


#: Keep LiteLLM off the network: its cost map from the package, no telemetry.
LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOG": "ERROR",
    "DISABLE_ADMIN_UI": "True",
    "NO_DOCS": "True",
}


@contextmanager
def start_litellm(standin_v1: str, root: Path = PEERS_DIR) -> Iterator[Peer]:
    exe = root / "litellm" / "bin" / "litellm"
    if not exe.exists():
        raise FileNotFoundError(f"{exe} not found: run make bench-peers to build it")
    config = root / "litellm-config.yaml"
    master_key = "sk-" + secrets.token_hex(16)  # this run's only: the config is rewritten
    config.write_text(litellm_config(standin_v1, master_key))
    port = _free_port()
    command = [
        str(exe),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    url = f"http://127.0.0.1:{port}"
    with _process(
        "litellm", command, url, "/health/liveliness", LITELLM_ENV, root / "logs"
    ) as peer:
        yield peer._replace(headers={"authorization": f"Bearer {master_key}"})


@contextmanager
def start_portkey(root: Path = PEERS_DIR) -> Iterator[Peer]:
    entry = root / "portkey" / "node_modules" / "@portkey-ai" / "gateway" / "build"
    entry = entry / "start-server.js"
    node = shutil.which("node")
    if node is None or not entry.exists():
        raise FileNotFoundError(f"{entry} (or node) not found: run make bench-peers to build it")
    port = _free_port()
    wrapper = Path(__file__).with_name("portkey_loopback.mjs")
    command = [node, str(wrapper), str(entry), f"--port={port}", "--headless"]
    env = {"NODE_ENV": "production"}
    url = f"http://127.0.0.1:{port}"
    with _process("portkey", command, url, "/", env, root / "logs") as peer:
        yield peer


def installed_versions(root: Path = PEERS_DIR) -> dict[str, str]:
    """The peers' versions as installed (not as asked for)."""
    import json

    versions: dict[str, str] = {}
    pkg = root / "portkey" / "node_modules" / "@portkey-ai" / "gateway" / "package.json"
    if pkg.exists():
        versions["portkey"] = json.loads(pkg.read_text())["version"]
    py = root / "litellm" / "bin" / "python"
    if py.exists():
        done = subprocess.run(
            [str(py), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            versions["litellm"] = done.stdout.strip()
    node = shutil.which("node")
    if node:
        versions["node"] = subprocess.run(
            [node, "--version"], capture_output=True, text=True
        ).stdout.strip()
    return versions


def cpu_per_request(
    call: Callable[[str], Answer],
    pid: int,
    queries: Sequence[str],
    requests_per_call: int = 1,
    settle_s: float = 0.5,
) -> dict[str, Any]:
    """The server's CPU milliseconds per call, over ``queries`` run one after another.
    Read after a pause on each side, so work the server finishes after answering (an audit
    written in the background) is counted with the calls that caused it."""
    time.sleep(settle_s)
    before = cpu_seconds(pid)
    for query in queries:
        call(query)
    time.sleep(settle_s)
    spent = cpu_seconds(pid) - before
    return {
        "cpu_ms": round(spent * 1000 / len(queries), 3),
        "calls": len(queries),
        "server_requests_per_call": requests_per_call,
    }


def stored_audit_ids(http: httpx.Client, url: str) -> set[str]:
    """Every audit id in a gateway's trail, paged by its ``next`` cursor."""
    ids: set[str] = set()
    params: dict[str, Any] = {"limit": 10_000}
    while True:
        page = http.get(url + "/api/audit/records", params=params).json()
        ids.update(r["audit_id"] for r in page["records"] if r.get("audit_id"))
        if not page.get("next"):
            return ids
        params = {"limit": 10_000, "after": page["next"]}


# -- the calls ----------------------------------------------------------------------------------
def _calls(
    http: httpx.Client, urls: Mapping[str, str], litellm_headers: Mapping[str, str] | None = None
) -> dict[str, Callable[[str], Answer]]:
    """One function per setup, each making the same chat call its own way."""
    standin, block, redact = urls["standin"], urls["block"], urls["redact"]

    def chat_body(query: str, **extra: Any) -> dict[str, Any]:
        return {"model": MODEL, "messages": [{"role": "user", "content": query}], **extra}

    def openai_shaped(
        url: str, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> Callable[[str], Answer]:
        def call(query: str) -> Answer:
            r = http.post(url, json=chat_body(query, **extra), headers=headers)
            if r.status_code != 200:
                raise NotACompletion(f"HTTP {r.status_code}: {r.text[:200]}")
            return Answer(completion_text(r.json()), r.headers.get("x-axonflow-audit-id"))

        return call

    direct = openai_shaped(standin + "/v1/chat/completions")

    def gateway_mode(query: str) -> Answer:
        pre = http.post(
            block + "/api/policy/pre-check",
            json={"user_token": LOAD_USER, "client_id": "community", "query": query},
        )
        decision = pre.json()
        if pre.status_code != 200 or not decision.get("approved"):
            raise NotACompletion(f"pre-check did not approve: {pre.text[:200]}")
        started = time.perf_counter_ns()
        r = http.post(standin + "/v1/chat/completions", json=chat_body(query))
        latency = round((time.perf_counter_ns() - started) / 1e6)
        body = r.json()
        text = completion_text(body)
        usage = body["usage"]
        audit = http.post(
            block + "/api/audit/llm-call",
            json={
                "context_id": decision["context_id"],
                "client_id": "community",
                "provider": "openai",
                "model": MODEL,
                "response_summary": "",
                "latency_ms": latency,
                "token_usage": {
                    k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")
                },
            },
        )
        if audit.status_code != 200:
            raise NotACompletion(f"audit refused: {audit.text[:200]}")
        return Answer(text, audit.json().get("audit_id"))

    def proxy_request(url: str) -> Callable[[str], Answer]:
        def call(query: str) -> Answer:
            r = http.post(url + "/api/request", json=proxy_request_body(query))
            data = r.json()
            if r.status_code != 200 or not data.get("success"):
                raise NotACompletion(f"/api/request failed: {r.status_code} {r.text[:200]}")
            text = data["data"]["data"]
            if not isinstance(text, str) or not text:
                raise NotACompletion(f"/api/request answered no text: {r.text[:200]}")
            return Answer(text, data["data"]["metadata"].get("audit_id"))

        return call

    user = {"x-user-token": LOAD_USER}
    calls = {
        "direct": direct,
        "gateway_mode": gateway_mode,
        "proxy_openai": openai_shaped(block + "/v1/chat/completions", user),
        "proxy_request": proxy_request(block),
        "proxy_openai_redact": openai_shaped(redact + "/v1/chat/completions", user),
        "proxy_request_redact": proxy_request(redact),
    }
    if "litellm" in urls:
        calls["litellm"] = openai_shaped(urls["litellm"] + "/v1/chat/completions", litellm_headers)
        calls["litellm_pii"] = openai_shaped(
            urls["litellm"] + "/v1/chat/completions",
            litellm_headers,
            guardrails=[LITELLM_GUARDRAIL],
        )
    if "portkey" in urls:
        portkey = {
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": standin + "/v1",
            "authorization": "Bearer offline-stand-in",
        }
        calls["portkey"] = openai_shaped(urls["portkey"] + "/v1/chat/completions", portkey)
    return calls


PROBE_EMAIL = "jane.doe@example.com"


def guardrail_probe(calls: Mapping[str, Callable[[str], Answer]]) -> dict[str, Any]:
    """Is LiteLLM's guardrail on when asked for, and off when not? The stand-in repeats a
    "Repeat after me:" message, so the e-mail address comes back unless it was masked."""
    ask = f"Repeat after me: write to {PROBE_EMAIL} today."
    plain, guarded = calls["litellm"](ask).text, calls["litellm_pii"](ask).text
    return {
        "asked": ask,
        "without_guardrail": plain,
        "with_guardrail": guarded,
        "masks": PROBE_EMAIL in plain and PROBE_EMAIL not in guarded,
    }


def _gateway_env(standin: str, pii_action: str) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": "offline-stand-in",
        "OPENAI_BASE_URL": standin + "/v1",
        "ANTHROPIC_API_KEY": "offline-stand-in",
        "ANTHROPIC_BASE_URL": standin,
        "PII_ACTION": pii_action,
        "GATEWAY_INSPECT_REPLIES": "true",
    }


def run_peers_bench(
    *,
    n: int = 1000,
    out: Path,
    figure: Path | None,
    seed: int = 1,
    warmup: int = 20,
    cpu_n: int = 300,
    root: Path = PEERS_DIR,
    peers: Sequence[str] = ("litellm", "portkey"),
) -> int:
    from helpers.server import start_gateway, start_standins

    root = root.resolve()
    load_before = os.getloadavg()
    skipped: dict[str, str] = {}
    with ExitStack() as stack:
        standin = stack.enter_context(start_standins(time_scale=0))
        servers: dict[str, Any] = {"standin": standin}
        for name, action in (("block", "block"), ("redact", "redact")):
            servers[name] = stack.enter_context(
                start_gateway(env=_gateway_env(standin.url, action))
            )
        urls = {name: s.url for name, s in servers.items()}
        pids = {name: s.pid for name, s in servers.items()}
        headers: dict[str, Mapping[str, str]] = {}
        starters = {
            "litellm": lambda: start_litellm(standin.url + "/v1", root),
            "portkey": lambda: start_portkey(root),
        }
        for name in peers:
            try:
                peer = stack.enter_context(starters[name]())
            except (FileNotFoundError, RuntimeError) as exc:
                skipped[name] = str(exc)
                print(f"skipping {name}: {exc}", flush=True)
                continue
            urls[name], pids[name], headers[name] = peer.url, peer.pid, peer.headers
        if "litellm" in skipped:
            skipped["litellm_pii"] = skipped["litellm"]
        http = stack.enter_context(httpx.Client(timeout=30))
        calls = _calls(http, urls, headers.get("litellm"))
        probe = guardrail_probe(calls) if "litellm" in calls else None
        governed = [s.name for s in SETUPS if s.governed and s.name in calls]
        queries = approved_queries(n + warmup, seed=seed)
        print(f"paired: {n} iterations x {len(calls)} setups, random order each ...", flush=True)
        run = paired_iterations(
            calls, queries[warmup:], governed=governed, seed=seed, warmup=warmup
        )
        print(f"CPU per request: {cpu_n} calls per setup ...", flush=True)
        serving = {s.name: s.server for s in SETUPS}
        cpu: dict[str, dict[str, Any]] = {}
        for name in calls:
            server = serving[name]
            cpu[name] = {
                "process": server,
                **cpu_per_request(
                    calls[name],
                    pids[server],
                    queries[:cpu_n],
                    requests_per_call=2 if name == "gateway_mode" else 1,
                ),
            }
        audited = {}
        for gateway in ("block", "redact"):
            stored = stored_audit_ids(http, urls[gateway])
            ids = [
                i
                for name in governed
                if serving[name] == gateway
                for i in run.audit_ids.get(name, ())
            ]
            audited[gateway] = {"returned": len(ids), "missing": sum(i not in stored for i in ids)}
    load_after = os.getloadavg()
    report = build_report(
        run,
        skipped=skipped,
        machine=machine_info(),
        load={
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in load_after],
        },
        versions=installed_versions(root),
        cpu_ms=cpu,
        audited=audited,
        config={
            "model": MODEL,
            "seed": seed,
            "warmup": warmup,
            "cpu_calls": cpu_n,
            "client": f"one httpx {httpx.__version__} keep-alive client, HTTP/1.1",
            "litellm_guardrail": {
                "name": LITELLM_GUARDRAIL,
                "guardrail": "litellm_content_filter",
                "mode": ["pre_call", "post_call"],
                "patterns": list(LITELLM_PATTERNS),
                "action": "MASK",
            },
            "litellm_guardrail_probe": probe,
            "portkey": "routing only: x-portkey-provider openai, x-portkey-custom-host",
            "gateways": {
                "block": "PII_ACTION=block",
                "redact": "PII_ACTION=redact",
                "both": "GATEWAY_INSPECT_REPLIES=true, user svc-loadtest",
            },
        },
    )
    write_report(out, report)
    if figure is not None:
        save_figure(report, figure)
    _print(report)
    print(f"\nreport written to {out}" + (f", figure to {figure}" if figure else ""))
    return 0 if report["real_completions"] and report["all_audited"] else 1


def _print(r: Mapping[str, Any]) -> None:
    print(f"\n{machine_line(r['machine'])}; load {r['load']}")
    print(f"versions: {r['versions']}; paired iterations: {r['n']}, errors: {r['errors']}")
    for example in r["error_examples"][:3]:
        print(f"  {example}")
    print(
        f"\n{'overhead over the direct call (ms)':<40}{'p50':>8}{'p95':>8}{'p99':>8}"
        f"{'/Portkey p50':>14}{'p99':>7}{'CPU ms':>8}"
    )
    for name, s in r["overhead_ms"].items():
        ratio = r["ratio_to_portkey"].get(name, {})
        cpu = r["cpu_ms_per_request"].get(name, {}).get("cpu_ms")
        label = r["setups"][name]["label"]
        print(
            f"{label:<40}{s['p50']:>8.3f}{s['p95']:>8.3f}{s['p99']:>8.3f}"
            f"{ratio.get('p50', float('nan')):>14.2f}{ratio.get('p99', float('nan')):>7.2f}"
            f"{cpu if cpu is not None else float('nan'):>8.3f}"
        )
    for name, why in r["skipped"].items():
        print(f"skipped {name}: {why}")
    probe = r["config"].get("litellm_guardrail_probe")
    if probe:
        print(f"LiteLLM's guardrail masks when asked and only then: {probe['masks']}")
    print(
        f"\nevery answer the stand-in's own text: {r['real_completions']}; "
        f"every governed request audited: {r['all_audited']} ({r['audited']})"
    )
    for t in r["targets"]:
        verdict = "not measured" if t["met"] is None else ("met" if t["met"] else "MISSED")
        ratio = "-" if t["ratio"] is None else f"{t['ratio']:.2f}"
        print(f"target {t['setup']} {t['stat']} <= {t['max_ratio']}x Portkey: {ratio} {verdict}")


def build_parser(prog: str = "python -m helpers.bench peers") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="This gateway's overhead beside LiteLLM's and Portkey's, paired per "
        "iteration against one zero-latency stand-in (make bench-peers builds the peers).",
    )
    p.add_argument("--n", type=int, default=1000, help="paired iterations (default 1000)")
    p.add_argument("--quick", action="store_true", help="150 iterations, 100 CPU calls")
    p.add_argument("--seed", type=int, default=1, help="query and order seed (default 1)")
    p.add_argument(
        "--peers",
        default="litellm,portkey",
        help="comma-separated peers to run (default litellm,portkey; '' for none)",
    )
    p.add_argument("--root", type=Path, default=PEERS_DIR, help="where the peers are built")
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "bench-peers.json")
    p.add_argument("--figure", type=Path, default=PROJECT_ROOT / "reports" / "bench-peers.png")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = sorted(set(peers) - {"litellm", "portkey"})
    if unknown:
        print(f"--peers: unknown {', '.join(unknown)}; use litellm, portkey", file=sys.stderr)
        return 2
    n, cpu_n = (150, 100) if args.quick else (args.n, 300)
    return run_peers_bench(
        n=n,
        out=args.out,
        figure=args.figure,
        seed=args.seed,
        cpu_n=cpu_n,
        root=args.root,
        peers=peers,
    )


if __name__ == "__main__":
    sys.exit(main())
