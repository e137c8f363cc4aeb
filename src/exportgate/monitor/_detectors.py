"""Evasion detectors: streaming state machines fed decision events in time order.

Each detector keeps only per-account (or per-key) state and is fed one account's events at a time
(``feed(account, events)``, in time order): the monitor groups what it reads by account, so the
per-event work is a tight loop over local state. Feeding one event at a time or a whole window at once
gives the same findings, so a batch run over a window and ``--follow`` find the same things. Parameters,
defaults and what each one catches are in docs/monitoring.md; every finding names the audit records
that are its evidence.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from exportgate.identity import Trip

from ._centroids import min_distance_km
from ._events import Event

__all__ = ["DETECTORS", "Detector", "Finding", "detector_named"]

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Finding:
    detector: str
    account: str
    severity: str  # low | medium | high
    start_ns: int
    end_ns: int
    evidence: tuple[str, ...]  # audit record ids
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


class Trips:
    """Declared trips by account: whether a request's country on its day was declared."""

    def __init__(self, trips: Sequence[Trip] = ()) -> None:
        self._by_account: dict[str, list[Trip]] = defaultdict(list)
        for trip in trips:
            self._by_account[trip.account].append(trip)

    def of(self, account: str) -> list[Trip]:
        """The account's trips (usually none: callers skip :meth:`declared` then)."""
        return self._by_account.get(account) or []

    @staticmethod
    def declared(trips: Sequence[Trip], event: Event) -> bool:
        day = dt.datetime.fromtimestamp(event.time_ns / NS_PER_S, dt.UTC).date()
        return any(t.covers(event.country, day) for t in trips)


class Detector(ABC):
    name: ClassVar[str]
    severity: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]

    def __init__(self, trips: Trips, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(f"{self.name}: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.params = {**self.defaults, **params}
        self.trips = trips
        self.window_ns = int(float(self.params.get("window_s", 0)) * NS_PER_S)

    @abstractmethod
    def feed(self, account: str, events: Sequence[Event]) -> list[Finding]:
        """Findings completed by these events of one account (in time order, after any fed before)."""

    def finding(  # noqa: PLR0917 - a finding's parts, in the order they read
        self, account: str, first: Event | int, last: Event, evidence: Sequence[Event], summary: str,
        details: dict[str, Any],
    ) -> Finding:  # fmt: skip
        start = first if isinstance(first, int) else first.time_ns
        return Finding(self.name, account, self.severity, start, last.time_ns, tuple(e.record for e in evidence),
                       summary, details)  # fmt: skip


class CountryHopping(Detector):
    """Many distinct countries for one account within a window (declared trips excepted)."""

    name, severity = "country_hopping", "medium"
    defaults: ClassVar[dict[str, Any]] = {"window_s": 3600, "min_countries": 3}

    def __init__(self, trips: Trips, **params: Any) -> None:
        super().__init__(trips, **params)
        self._seen: dict[str, dict[str, Event]] = defaultdict(dict)  # account -> country -> its last event

    def feed(self, account: str, events: Sequence[Event]) -> list[Finding]:
        found: list[Finding] = []
        countries, trips, need = self._seen[account], self.trips.of(account), self.params["min_countries"]
        for event in events:
            country = event.country
            if not country or event.anonymizers or (trips and Trips.declared(trips, event)):
                continue
            countries[country] = event
            if len(countries) < need:
                continue
            horizon = event.time_ns - self.window_ns
            for stale in [c for c, e in countries.items() if e.time_ns < horizon]:
                del countries[stale]
            if len(countries) < need:
                continue
            names = sorted(countries)
            window = sorted(countries.values(), key=lambda e: e.time_ns)
            found.append(self.finding(account, window[0], event, window,
                                      f"{len(names)} countries within {self.params['window_s']} s: {', '.join(names)}",
                                      {"countries": names}))  # fmt: skip
        return found


class ImpossibleTravel(Detector):
    """Consecutive requests from countries further apart than a plane could go in the time between."""

    name, severity = "impossible_travel", "high"
    defaults: ClassVar[dict[str, Any]] = {"max_kmh": 900, "min_km": 500}

    def __init__(self, trips: Trips, **params: Any) -> None:
        super().__init__(trips, **params)
        self._last: dict[str, Event] = {}

    def feed(self, account: str, events: Sequence[Event]) -> list[Finding]:
        found: list[Finding] = []
        last = self._last.get(account)
        for event in events:
            if not event.country or event.anonymizers:
                continue
            before, last = last, event
            if before is None or before.country == event.country:
                continue
            km = min_distance_km(str(before.country), event.country)
            hours = max(event.time_ns - before.time_ns, 1) / NS_PER_S / 3600
            if km is None or km < self.params["min_km"] or km / hours <= self.params["max_kmh"]:
                continue
            found.append(self.finding(account, before, event, (before, event),
                                      f"{before.country} to {event.country}: at least {km:,.0f} km in "
                                      f"{hours * 60:,.1f} min",
                                      {"from": before.country, "to": event.country, "km": round(km),
                                       "hours": round(hours, 3)}))  # fmt: skip
        if last is not None:
            self._last[account] = last
        return found


class AnonymizerOnRestricted(Detector):
    """Tor, VPN or hosting addresses used for a restricted tier, whether or not the directive denied them."""

    name, severity = "anonymizer_restricted", "medium"
    defaults: ClassVar[dict[str, Any]] = {"open_tiers": ["open"]}

    def feed(self, account: str, events: Sequence[Event]) -> list[Finding]:
        open_tiers = self.params["open_tiers"]
        return [
            self.finding(account, event, event, (event,),
                         f"{', '.join(event.anonymizers)} address for {event.model} (tier {event.tier}), "
                         f"{'allowed' if event.allowed else 'denied'}", {"anonymizers": list(event.anonymizers)})
            for event in events
            if event.anonymizers and event.tier not in open_tiers
        ]  # fmt: skip


class KeySharing(Detector):
    """One API key alternating between several networks within minutes: used from places at once."""

    name, severity = "key_sharing", "high"
    defaults: ClassVar[dict[str, Any]] = {"window_s": 600, "min_networks": 2, "min_switches": 3}

    def __init__(self, trips: Trips, **params: Any) -> None:
        super().__init__(trips, **params)
        self._last: dict[str, Event] = {}  # key -> its last request
        self._networks: dict[str, dict[str, int]] = defaultdict(dict)  # key -> network -> last seen
        self._switches: dict[str, deque[int]] = defaultdict(deque)  # key -> times a switch started
        self._recent: dict[str, deque[Event]] = {}  # key -> its last requests, once it has switched

    def feed(self, account: str, events: Sequence[Event]) -> list[Finding]:
        found: list[Finding] = []
        lasts, switching = self._last, self._recent
        key_now, last = None, None  # an account's requests mostly use one key: keep its last request at hand
        for event in events:
            key, network = event.key_id, event.network
            if not key or not network:
                continue
            if key != key_now:
                if key_now is not None:
                    lasts[key_now] = last  # type: ignore[assignment]
                key_now, last = key, lasts.get(key)
            before, last = last, event
            if (before is None or before.network == network) and key not in switching:
                continue  # the common case: the same place as before, never switched
            finding = self._moved(account, key, network, before, event)
            if finding is not None:
                found.append(finding)
        if key_now is not None:
            lasts[key_now] = last  # type: ignore[assignment]
        return found

    def _moved(self, account: str, key: str, network: str, last: Event | None, event: Event) -> Finding | None:
        recent = self._recent.setdefault(key, deque([last] if last is not None else [], maxlen=50))
        recent.append(event)
        networks, switches = self._networks[key], self._switches[key]
        networks[network] = event.time_ns
        if last is not None and last.network != network:
            networks[str(last.network)] = max(networks.get(str(last.network), 0), last.time_ns)
            switches.append(last.time_ns)  # a switch counts while the request before it is in the window
        horizon = event.time_ns - self.window_ns
        while switches and switches[0] < horizon:
            switches.popleft()
        for stale in [n for n, t in networks.items() if t < horizon]:
            del networks[stale]
        if not switches:  # settled again: back to the cheap path
            del self._recent[key]
            return None
        if len(networks) < self.params["min_networks"] or len(switches) < self.params["min_switches"]:
            return None
        window = [e for e in recent if e.time_ns >= horizon]
        return self.finding(account, window[0], event, window,
                            f"key {key} switched networks {len(switches)} times within {self.params['window_s']} s "
                            f"({len(networks)} networks)", {"key_id": key, "networks": sorted(networks)})  # fmt: skip


class ResidencyMismatch(Detector):
    """Requests mostly from a country other than where the account declared it lives (its residencies, or its
    citizenships when it declared none) and not covered by a declared trip: e.g. a US permanent resident,
    a US person by residence, who in fact lives abroad."""

    name, severity = "residency_mismatch", "medium"
    defaults: ClassVar[dict[str, Any]] = {"window_s": 7 * 86400, "min_requests": 10, "min_share": 0.5}

    def __init__(self, trips: Trips, **params: Any) -> None:
        super().__init__(trips, **params)
        self._all: dict[str, deque[int]] = defaultdict(deque)  # request times
        self._away: dict[str, deque[Event]] = defaultdict(deque)  # requests from elsewhere

    def feed(self, account: str, events: Sequence[Event]) -> list[Finding]:
        found: list[Finding] = []
        every, away, trips = self._all[account], self._away[account], self.trips.of(account)
        window, need, share = self.window_ns, self.params["min_requests"], self.params["min_share"]
        for event in events:
            country, homes = event.country, event.homes
            if not country or event.anonymizers or not homes:
                continue
            every.append(event.time_ns)
            if country not in homes and not (trips and Trips.declared(trips, event)):
                away.append(event)
            horizon = event.time_ns - window
            while every[0] < horizon:
                every.popleft()
            if not away:
                continue
            while away and away[0].time_ns < horizon:
                away.popleft()
            if len(away) < need or len(away) / len(every) < share:
                continue
            countries = sorted({str(e.country) for e in away})
            found.append(self.finding(account, every[0], event, list(away)[-20:],
                                      f"{len(away)} of {len(every)} requests from {', '.join(countries)}; declared: "
                                      f"{', '.join(homes)}",
                                      {"countries": countries, "homes": list(homes)}))  # fmt: skip
        return found


class DenyThenAllow(Detector):
    """A location or anonymizer denial, then soon an allowed request for the same model from another
    country or network: the block routed around through a permitted region."""

    name, severity = "deny_then_allow", "high"
    defaults: ClassVar[dict[str, Any]] = {"window_s": 1800}

    def __init__(self, trips: Trips, **params: Any) -> None:
        super().__init__(trips, **params)
        self._denied: dict[str, dict[str, Event]] = defaultdict(dict)  # account -> model -> its last denial

    def feed(self, account: str, events: Sequence[Event]) -> list[Finding]:
        found: list[Finding] = []
        pending = self._denied[account]
        for event in events:
            model = event.model
            if not model:
                continue
            if not event.allowed:
                if event.location_denied:
                    pending[model] = event
                continue
            denied = pending.get(model) if pending else None
            if denied is None or event.time_ns - denied.time_ns > self.window_ns:
                continue
            if denied.country == event.country and denied.network == event.network:
                continue
            del pending[model]
            minutes = (event.time_ns - denied.time_ns) / NS_PER_S / 60
            via = " via " + ",".join(denied.anonymizers) if denied.anonymizers else ""
            found.append(self.finding(account, denied, event, (denied, event),
                                      f"{model} denied from {denied.country or 'unknown'}{via}, allowed "
                                      f"{minutes:.1f} min later from {event.country or 'unknown'}",
                                      {"model": model, "denied_country": denied.country,
                                       "allowed_country": event.country}))  # fmt: skip
        return found


DETECTORS: dict[str, type[Detector]] = {
    d.name: d
    for d in (CountryHopping, ImpossibleTravel, AnonymizerOnRestricted, KeySharing, ResidencyMismatch, DenyThenAllow)
}


def detector_named(name: str, trips: Trips, params: Mapping[str, Any]) -> Detector:
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    return DETECTORS[name](trips, **params)
