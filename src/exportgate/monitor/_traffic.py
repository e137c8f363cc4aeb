"""Synthetic traffic with known labels (``exportgate sim traffic``): populations of accounts behaving
as honest users and as evaders would, sent through a real gateway with the client addresses they would
have (``X-Forwarded-For`` from loopback, which the gateway must trust), and a scorecard of the monitor's
alerts against the labels.

Time is compressed: a plan of ``hours`` simulated hours is sent over ``hours * 3600 / time_scale`` real
seconds, and ``exportgate monitor --time-scale`` reads the records back at the simulated pace. Client
addresses are drawn from the gateway's own geo data (residential: a country and no anonymizer flag;
VPN: a vpn or hosting flag), so every request is classified by the gateway exactly as a real one would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from exportgate._http import HttpClient, parse_base_url
from exportgate._types import KycLevel
from exportgate.errors import ConfigError, ExportgateError, UpstreamError
from exportgate.geo import GeoLookup
from exportgate.identity import AccountStore

__all__ = ["POPULATIONS", "SYNTHETIC", "AddressBook", "Plan", "build_plan", "is_synthetic", "load_labels", "scorecard",
           "send_plan"]  # fmt: skip

HOUR = 3600.0
SYNTHETIC = "synthetic"  # HOME/synthetic marks a home that holds synthetic accounts only


def is_synthetic(home: Path) -> bool:
    """Whether ``home`` is marked as holding synthetic accounts (``HOME/synthetic``, written by sim traffic)."""
    return (home / SYNTHETIC).is_file()


class AddressBook:
    """Client addresses by country (residential) and anonymizing ones, found in the geo data."""

    def __init__(self, geo: GeoLookup, rng: random.Random, countries: Iterable[str], per_country: int = 64) -> None:
        self.residential: dict[str, list[str]] = {c: [] for c in countries}
        self.anonymizing: list[str] = []
        for _ in range(3_000_000):
            if all(len(v) >= per_country for v in self.residential.values()) and len(self.anonymizing) >= per_country:
                break
            ip = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            info = geo.lookup(ip)
            if info.anonymizers and {"vpn", "hosting"} & info.anonymizers and len(self.anonymizing) < per_country:
                self.anonymizing.append(ip)
            elif info.anonymizers == frozenset() and info.country in self.residential:
                pool = self.residential[info.country]
                if len(pool) < per_country and all(ip.rsplit(".", 1)[0] != p.rsplit(".", 1)[0] for p in pool):
                    pool.append(ip)
        missing = [c for c, v in self.residential.items() if not v] + (["anonymizers"] if not self.anonymizing else [])
        if missing:
            raise RuntimeError(f"the geo data gave no addresses for {', '.join(missing)}")

    def home(self, country: str, rng: random.Random) -> str:
        return rng.choice(self.residential[country])


@dataclass(frozen=True)
class Step:
    t: float  # simulated seconds from the start
    account: str
    ip: str
    model: str


@dataclass(frozen=True)
class Member:
    name: str
    population: str
    expected: frozenset[str]  # detectors that should alert on this account


@dataclass(frozen=True)
class Population:
    name: str
    citizenships: tuple[str, ...]
    residencies: tuple[str, ...]
    kyc: KycLevel
    expected: frozenset[str]
    trip: tuple[str, int, int] | None  # (country, first day offset, last day offset) declared
    steps: Callable[[str, AddressBook, random.Random, float], list[Step]]


def _every(start_h: float, end_h: float, minutes: float, rng: random.Random) -> list[float]:
    times, t = [], start_h * HOUR + rng.uniform(0, minutes * 60)
    while t < end_h * HOUR:
        times.append(t)
        t += minutes * 60 * rng.uniform(0.6, 1.4)
    return times


def _us_home(name: str, book: AddressBook, rng: random.Random, hours: float) -> list[Step]:
    ip = book.home("US", rng)
    return [Step(t, name, ip, rng.choice(("fable-5", "sonnet-4"))) for t in _every(0, hours, 20, rng)]


def _us_traveller(name: str, book: AddressBook, rng: random.Random, hours: float) -> list[Step]:
    home, hotel = book.home("US", rng), book.home("DE", rng)
    steps = [Step(t, name, home, "fable-5") for t in _every(0, 2, 20, rng)]
    abroad = _every(hours - 2, hours, 15, rng)  # after a long flight, with the trip declared
    steps += [Step(t, name, hotel, "sonnet-4") for t in abroad]
    steps += [Step(abroad[0] + 60, name, hotel, "fable-5")]  # a 451 abroad: not evasion
    return steps


def _allied(name: str, book: AddressBook, rng: random.Random, hours: float) -> list[Step]:
    ip = book.home("DE", rng)
    steps = [Step(t, name, ip, "sonnet-4") for t in _every(0, hours, 25, rng)]
    return [*steps, Step(rng.uniform(0, hours * HOUR), name, ip, "fable-5")]  # us_person_required: not evasion


def _quitter(name: str, book: AddressBook, rng: random.Random, hours: float) -> list[Step]:
    ip = book.home("CN", rng)
    start = rng.uniform(0, hours * HOUR / 2)
    return [Step(start + i * 120, name, ip, "fable-5") for i in range(3)]  # denied thrice, gives up


def _vpn_evader(name: str, book: AddressBook, rng: random.Random, hours: float) -> list[Step]:
    home, start = book.home("CN", rng), rng.uniform(0, hours * HOUR / 2)
    steps = [Step(start, name, home, "fable-5")]
    return steps + [Step(start + 300 + i * 240, name, rng.choice(book.anonymizing), "fable-5") for i in range(4)]


def _region_hopper(name: str, book: AddressBook, rng: random.Random, hours: float) -> list[Step]:
    start = rng.uniform(0, hours * HOUR / 2)
    steps = [Step(start, name, book.home("CN", rng), "fable-5")]  # denied at home
    proxies = [book.home(c, rng) for c in ("US", "CA", "GB", "US")]  # then through permitted regions
    return steps + [Step(start + 240 + i * 300, name, ip, "fable-5") for i, ip in enumerate(proxies)]


def _key_sharer(name: str, book: AddressBook, rng: random.Random, hours: float) -> list[Step]:
    places = [book.home("US", rng) for _ in range(3)]
    start = rng.uniform(0, hours * HOUR / 2)
    return [Step(start + i * 90, name, places[i % 3], "sonnet-4") for i in range(12)]


def _expat(name: str, book: AddressBook, rng: random.Random, hours: float) -> list[Step]:
    ip = book.home("DE", rng)  # a US green-card holder who lives in Germany, undeclared
    return [Step(t, name, ip, "sonnet-4") for t in _every(0, hours, 15, rng)]


POPULATIONS: tuple[Population, ...] = (
    Population("us-home", ("US",), (), KycLevel.VERIFIED, frozenset(), None, _us_home),
    Population("us-traveller", ("US",), (), KycLevel.VERIFIED, frozenset(), ("DE", -1, 2), _us_traveller),
    Population("allied", ("DE",), (), KycLevel.BASIC, frozenset(), None, _allied),
    Population("quitter", ("CN",), (), KycLevel.BASIC, frozenset(), None, _quitter),
    Population("vpn-evader", ("US",), (), KycLevel.VERIFIED, frozenset({"anonymizer_restricted"}), None, _vpn_evader),
    Population("region-hopper", ("US",), (), KycLevel.VERIFIED,
               frozenset({"deny_then_allow", "impossible_travel", "country_hopping"}), None, _region_hopper),
    Population("key-sharer", ("US",), (), KycLevel.VERIFIED, frozenset({"key_sharing"}), None, _key_sharer),
    Population("expat", ("DE",), ("US",), KycLevel.VERIFIED, frozenset({"residency_mismatch"}), None, _expat),
)  # fmt: skip


@dataclass(frozen=True)
class Plan:
    steps: list[Step]
    members: list[Member]
    keys: dict[str, str]  # account -> API key secret
    hours: float
    time_scale: float

    def labels(self) -> dict[str, Any]:
        return {
            "time_scale": self.time_scale,
            "hours": self.hours,
            "accounts": {m.name: {"population": m.population, "expected": sorted(m.expected)} for m in self.members},
        }


def build_plan(accounts: AccountStore, geo: GeoLookup, *, per_population: int = 3, hours: float = 12.0,
               time_scale: float = 3600.0, seed: int = 0, prefix: str | None = None) -> Plan:  # fmt: skip
    """Create the accounts (and declared trips) and the time-ordered requests they will send."""
    rng = random.Random(seed)  # noqa: S311 - a simulation
    book = AddressBook(geo, rng, ("US", "DE", "CN", "CA", "GB"))
    prefix = prefix or f"syn{int(time.time())}-"
    today = dt.datetime.now(dt.UTC).date()
    steps, members, keys = [], [], {}
    for population in POPULATIONS:
        for index in range(per_population):
            name = f"{prefix}{population.name}-{index}"
            _, key = accounts.add_account(name, citizenships=population.citizenships,
                                          residencies=population.residencies, kyc=population.kyc)  # fmt: skip
            if population.trip is not None:
                country, first, last = population.trip
                accounts.add_trip(name, country, today + dt.timedelta(first), today + dt.timedelta(last), "synthetic")
            keys[name] = key.secret
            members.append(Member(name, population.name, population.expected))
            steps += population.steps(name, book, rng, hours)
    return Plan(sorted(steps, key=lambda s: s.t), members, keys, hours, time_scale)


class _Sender:
    """The requests of one plan in flight. The first that fails stops the run: nothing more is sent and
    the others are cancelled (a gateway that is down refuses them all; one error says so)."""

    def __init__(self, plan: Plan, gateway: str) -> None:
        self.plan, self.gateway = plan, gateway
        self.origin, self.prefix = parse_base_url(gateway)
        self.client = HttpClient()
        self.statuses: dict[str, int] = {}
        self.in_flight: set[asyncio.Task[None]] = set()
        self.failure: Exception | None = None
        self.stopped = asyncio.Event()
        self.sent = 0

    def start(self, step: Step) -> None:
        task = asyncio.create_task(self._one(step))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)
        self.sent += 1

    async def wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` (at least one pass of the event loop, so a failure is seen) unless the run stops
        first; whether it goes on."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopped.wait(), seconds)
        else:
            await asyncio.sleep(0)
        return not self.stopped.is_set()

    async def _one(self, step: Step) -> None:
        body = orjson.dumps({"model": step.model, "messages": [{"role": "user", "content": "Say hello."}],
                             "max_tokens": 16})  # fmt: skip
        headers = [(b"authorization", b"Bearer " + self.plan.keys[step.account].encode()),
                   (b"x-forwarded-for", step.ip.encode()), (b"content-type", b"application/json")]  # fmt: skip
        try:
            response = await self.client.request(self.origin, b"POST", self.prefix + b"/v1/chat/completions",
                                                 headers, body, 10, 30)  # fmt: skip
            await response.read()
        except (ExportgateError, OSError) as exc:
            self._stop(exc)
            return
        self.statuses[str(response.status)] = self.statuses.get(str(response.status), 0) + 1

    def _stop(self, exc: Exception) -> None:
        if self.failure is None:
            self.failure = exc
            self.stopped.set()
            mine = asyncio.current_task()
            for task in self.in_flight:
                if task is not mine:
                    task.cancel()

    async def drain(self) -> None:
        """Wait for the requests in flight, until they are done or the run stops."""
        while self.in_flight and not self.stopped.is_set():
            await asyncio.wait([*self.in_flight], return_when=asyncio.FIRST_COMPLETED)

    async def close(self) -> None:
        """Cancel what is still in flight (the run stopped, or was interrupted) and close the connections."""
        for task in self.in_flight:
            task.cancel()
        await asyncio.gather(*self.in_flight, return_exceptions=True)
        await self.client.close()

    def check(self) -> None:
        if self.failure is not None:
            raise UpstreamError(f"the gateway at {self.gateway} failed after {self.sent} of {len(self.plan.steps)} "
                                f"requests: {self.failure}")  # fmt: skip


async def send_plan(plan: Plan, gateway: str, *, progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Send every step at its compressed time; returns the count of each HTTP status. The first request that
    fails ends the run (UpstreamError): nothing more is sent, and the requests in flight are cancelled."""
    sender = _Sender(plan, gateway)
    start = time.monotonic()
    try:
        for done, step in enumerate(plan.steps):
            if not await sender.wait(start + step.t / plan.time_scale - time.monotonic()):
                break
            sender.start(step)
            if progress is not None:
                progress(done + 1)
        await sender.drain()
    finally:
        await sender.close()
    sender.check()
    return sender.statuses


def load_labels(path: Path) -> dict[str, Any]:
    """Labels as ``sim traffic`` writes them; ConfigError unless the file holds an ``accounts`` object of
    ``{"expected": [detector, ...]}``."""
    try:
        labels = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read labels {path}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"labels {path} are not JSON: {exc}") from None
    accounts = labels.get("accounts") if isinstance(labels, dict) else None
    if (
        not isinstance(labels, dict)
        or not isinstance(accounts, dict)
        or not all(isinstance(a, dict) and isinstance(a.get("expected"), list) for a in accounts.values())
    ):
        raise ConfigError(f"{path} holds no labels (an 'accounts' object of {{\"expected\": [...]}} entries)")
    return labels


def scorecard(alerts: Sequence[dict[str, Any]], labels: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per detector, at the account level: true and false positives, misses, precision and recall."""
    accounts = labels["accounts"]
    flagged: dict[str, set[str]] = {}
    for alert in alerts:
        if alert["account"] in accounts:
            flagged.setdefault(alert["detector"], set()).add(alert["account"])
    detectors = sorted({d for a in accounts.values() for d in a["expected"]} | set(flagged))
    card = {}
    for detector in detectors:
        expected = {name for name, a in accounts.items() if detector in a["expected"]}
        found = flagged.get(detector, set())
        tp, fp, fn = len(found & expected), len(found - expected), len(expected - found)
        card[detector] = {
            "true_positives": tp, "false_positives": fp, "missed": fn,
            "precision": round(tp / (tp + fp), 3) if tp + fp else 1.0,
            "recall": round(tp / (tp + fn), 3) if tp + fn else 1.0,
            "false_positive_accounts": sorted(found - expected), "missed_accounts": sorted(expected - found),
        }  # fmt: skip
    return card
