"""Simulated provider latency for the stand-ins: per-model profiles and seeded draws.

Every delay produced here is **simulated**. Time to first token (TTFT) is drawn from a
log-normal fitted to a profile's published p50 and p95,

    mu = ln(p50),  sigma = (ln(p95) - ln(p50)) / 1.645

(1.645 is the 95th percentile of the standard normal), and output tokens then arrive at
the profile's tokens per second. Profiles live in ``data/latency_profiles.yaml`` with
their sources; entries marked ``estimate`` are not measurements.

A global *time scale* multiplies every delay the server actually sleeps (0 = none). The
draws themselves do not depend on it, so a run at scale 0.01 makes the same random choices
as a run at scale 1. Introduced in ``01_gateway_mode_openai.ipynb``.

>>> rng = request_rng(0, "example")
>>> lat = simulate_latency("gpt-4o-mini", 100, rng)
>>> lat.profile, round(lat.generation_s, 3)
('gpt-4o-mini', 0.952)
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from helpers.errors import ConfigError
from helpers.settings import DATA_DIR
from helpers.yamlcheck import load_yaml

__all__ = [
    "DEFAULT_PROFILES_PATH",
    "Z_95",
    "LatencyProfile",
    "LatencyProfiles",
    "SimulatedLatency",
    "load_profiles",
    "request_rng",
    "simulate_latency",
]

DEFAULT_PROFILES_PATH = DATA_DIR / "latency_profiles.yaml"
#: 95th percentile of the standard normal distribution.
Z_95 = 1.645


@dataclass(frozen=True)
class LatencyProfile:
    """Published (or estimated) latency figures for one model.

    >>> p = LatencyProfile("m", "openai", 645.0, 1094.0, 105.0)
    >>> round(math.exp(p.mu), 1), round(p.sigma, 3)
    (645.0, 0.321)
    """

    name: str
    provider: str
    ttft_p50_ms: float
    ttft_p95_ms: float
    tokens_per_s: float
    estimate: bool = True
    source: str = ""
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (0 < self.ttft_p50_ms <= self.ttft_p95_ms):
            raise ConfigError(
                f"latency profile {self.name!r}: need 0 < ttft_p50_ms <= ttft_p95_ms, "
                f"got {self.ttft_p50_ms} and {self.ttft_p95_ms}"
            )
        if self.tokens_per_s <= 0:
            raise ConfigError(
                f"latency profile {self.name!r}: tokens_per_s must be > 0, got {self.tokens_per_s}"
            )

    @property
    def mu(self) -> float:
        """Log-normal location: ln(p50 in ms)."""
        return math.log(self.ttft_p50_ms)

    @property
    def sigma(self) -> float:
        """Log-normal scale fitted so that the 95th percentile equals ``ttft_p95_ms``."""
        return (math.log(self.ttft_p95_ms) - math.log(self.ttft_p50_ms)) / Z_95

    def draw_ttft_ms(self, rng: random.Random) -> float:
        """One simulated TTFT in milliseconds (always one draw from ``rng``)."""
        return rng.lognormvariate(self.mu, self.sigma)

    def __repr__(self) -> str:
        kind = "estimate" if self.estimate else "published"
        return (
            f"<LatencyProfile {self.name} ttft p50={self.ttft_p50_ms:g}ms "
            f"p95={self.ttft_p95_ms:g}ms {self.tokens_per_s:g} tok/s ({kind})>"
        )


@dataclass(frozen=True)
class LatencyProfiles:
    """All profiles from one file; :meth:`for_model` resolves a request's model name."""

    default: LatencyProfile
    models: tuple[LatencyProfile, ...]

    def for_model(self, model: str) -> LatencyProfile:
        """Exact name or alias first, then the longest name/alias that prefixes ``model``.

        Prefix matching lets dated names (``gpt-4o-2024-05-13``) find their family, and
        "longest" keeps ``gpt-4o-mini-...`` from landing on ``gpt-4o``.
        """
        best: tuple[int, LatencyProfile] | None = None
        for profile in self.models:
            for name in (profile.name, *profile.aliases):
                if name == model:
                    return profile
                if model.startswith(name) and (best is None or len(name) > best[0]):
                    best = (len(name), profile)
        return best[1] if best else self.default

    def names(self, provider: str | None = None) -> list[str]:
        """Model names (not aliases), optionally only one provider's, in file order."""
        return [p.name for p in self.models if provider is None or p.provider == provider]

    @classmethod
    def from_yaml(cls, path: str | Path) -> LatencyProfiles:
        """Load and validate a profiles file; problems raise :class:`ConfigError`."""
        path = Path(path)
        raw = load_yaml(path)  # a mapping, duplicate keys refused, errors name the file
        if not isinstance(raw, dict) or not isinstance(raw.get("default"), dict):
            raise ConfigError(f"{path}: expected a mapping with 'default' and 'models'")
        models = raw.get("models") or {}
        if not isinstance(models, dict):
            raise ConfigError(f"{path}: 'models' must map model names to profiles")
        default = _profile(path, "default", raw["default"])
        return cls(default, tuple(_profile(path, n, e) for n, e in models.items()))


def _profile(path: Path, name: object, entry: object) -> LatencyProfile:
    if not isinstance(name, str) or not isinstance(entry, dict):
        raise ConfigError(f"{path}: profile {name!r} must be a mapping")
    try:
        aliases = entry.get("aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise TypeError("aliases must be a list of strings")
        return LatencyProfile(
            name=name,
            provider=str(entry.get("provider", "unknown")),
            ttft_p50_ms=float(entry["ttft_p50_ms"]),
            ttft_p95_ms=float(entry["ttft_p95_ms"]),
            tokens_per_s=float(entry["tokens_per_s"]),
            estimate=bool(entry.get("estimate", True)),
            source=str(entry.get("source", "")),
            aliases=tuple(aliases),
        )
    except KeyError as exc:
        raise ConfigError(f"{path}: profile {name!r} is missing {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: profile {name!r}: {exc}") from None


@lru_cache(maxsize=8)
def _cached(path: Path) -> LatencyProfiles:
    return LatencyProfiles.from_yaml(path)


def load_profiles(path: str | Path | None = None) -> LatencyProfiles:
    """Profiles from ``path`` (default ``data/latency_profiles.yaml``), cached per path."""
    return _cached(Path(path or DEFAULT_PROFILES_PATH).resolve())


@dataclass(frozen=True)
class SimulatedLatency:
    """The simulated timing of one reply. ``*_s`` are simulated seconds at scale 1;
    ``wall_*_s`` are what the server actually sleeps (multiplied by ``time_scale``)."""

    profile: str
    ttft_s: float
    tokens_per_s: float
    output_tokens: int
    time_scale: float = 1.0
    slowed: bool = False

    @property
    def generation_s(self) -> float:
        return self.output_tokens / self.tokens_per_s

    @property
    def total_s(self) -> float:
        return self.ttft_s + self.generation_s

    @property
    def wall_ttft_s(self) -> float:
        return self.ttft_s * self.time_scale

    @property
    def wall_per_token_s(self) -> float:
        return self.time_scale / self.tokens_per_s

    @property
    def wall_total_s(self) -> float:
        return self.total_s * self.time_scale

    def slowed_by(self, factor: float) -> SimulatedLatency:
        """A copy whose first token comes ``factor`` times later (the "slow" fault)."""
        return replace(self, ttft_s=self.ttft_s * factor, slowed=True)

    def __repr__(self) -> str:
        slow = " slowed" if self.slowed else ""
        return (
            f"<SimulatedLatency {self.profile} ttft={self.ttft_s * 1000:.0f}ms "
            f"total={self.total_s * 1000:.0f}ms for {self.output_tokens} tokens "
            f"x{self.time_scale:g}{slow}>"
        )


def simulate_latency(
    model: str,
    output_tokens: int,
    rng: random.Random,
    *,
    profiles: LatencyProfiles | None = None,
    time_scale: float = 1.0,
) -> SimulatedLatency:
    """Draw the simulated timing for ``output_tokens`` tokens from ``model``'s profile."""
    if time_scale < 0:
        raise ValueError(f"time_scale must be >= 0, got {time_scale}")
    profile = (profiles or load_profiles()).for_model(model)
    ttft_s = profile.draw_ttft_ms(rng) / 1000.0
    return SimulatedLatency(profile.name, ttft_s, profile.tokens_per_s, output_tokens, time_scale)


def request_rng(*parts: object) -> random.Random:
    """A ``random.Random`` seeded from ``parts`` through SHA-256.

    Python's ``hash()`` is salted per process, so it cannot give reproducible seeds.
    """
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))
