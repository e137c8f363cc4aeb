"""Evasion detectors: streaming state machines fed decision events in time order.

Each detector keeps only per-account (or per-key) state, so a batch run over a window and ``--follow``
(feeding new records as they arrive) give the same findings. Parameters, defaults and what each one
catches are in docs/monitoring.md; every finding names the audit records that are its evidence.
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

    def declared(self, event: Event) -> bool:
        trips = self._by_account.get(event.account or "")
        if not trips:
            return False
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
    def feed(self, event: Event) -> list[Finding]:
        """Findings this event completes (usually none)."""


class CountryHopping(Detector):
    """Many distinct countries for one account within a window (declared trips excepted)."""

    name, severity = "country_hopping", "medium"
    defaults: ClassVar[dict[str, Any]] = {"window_s": 3600, "min_countries": 3}

    def __init__(self, trips: Trips, **params: Any) -> None:
        super().__init__(trips, **params)
        self._seen: dict[str, dict[str, Event]] = defaultdict(dict)  # account -> country -> its last event

    def feed(self, event: Event) -> list[Finding]:
        if not event.account or not event.country or event.anonymizers or self.trips.declared(event):
            return []
        countries = self._seen[event.account]
        countries[event.country] = event
        if len(countries) < self.params["min_countries"]:
            return []
        horizon = event.time_ns - self.window_ns
        for country in [c for c, e in countries.items() if e.time_ns < horizon]:
            del countries[country]
        if len(countries) < self.params["min_countries"]:
            return []
        names = sorted(countries)
        events = sorted(countries.values(), key=lambda e: e.time_ns)
        return [
            Finding(self.name, event.account, self.severity, events[0].time_ns, event.time_ns,
                    tuple(e.record for e in events),
                    f"{len(names)} countries within {self.params['window_s']} s: {', '.join(names)}",
                    {"countries": names})
        ]  # fmt: skip


class ImpossibleTravel(Detector):
    """Consecutive requests from countries further apart than a plane could go in the time between."""

    name, severity = "impossible_travel", "high"
    defaults: ClassVar[dict[str, Any]] = {"max_kmh": 900, "min_km": 500}

    def __init__(self, trips: Trips, **params: Any) -> None:
        super().__init__(trips, **params)
        self._last: dict[str, Event] = {}

    def feed(self, event: Event) -> list[Finding]:
        if not event.account or not event.country or event.anonymizers:
            return []
        last = self._last.get(event.account)
        self._last[event.account] = event
        if last is None or last.country == event.country:
            return []
        km = min_distance_km(str(last.country), event.country)
        hours = max(event.time_ns - last.time_ns, 1) / NS_PER_S / 3600
        if km is None or km < self.params["min_km"] or km / hours <= self.params["max_kmh"]:
            return []
        return [
            Finding(
                self.name,
                event.account,
                self.severity,
                last.time_ns,
                event.time_ns,
                (last.record, event.record),
                f"{last.country} to {event.country}: at least {km:,.0f} km in {hours * 60:,.1f} min",
                {"from": last.country, "to": event.country, "km": round(km), "hours": round(hours, 3)},
            )
        ]


class AnonymizerOnRestricted(Detector):
    """Tor, VPN or hosting addresses used for a restricted tier, whether or not the directive denied them."""

    name, severity = "anonymizer_restricted", "medium"
    defaults: ClassVar[dict[str, Any]] = {"open_tiers": ["open"]}

    def feed(self, event: Event) -> list[Finding]:
        if not event.account or not event.anonymizers or event.tier in self.params["open_tiers"]:
            return []
        flags = ", ".join(event.anonymizers)
        return [
            Finding(
                self.name,
                event.account,
                self.severity,
                event.time_ns,
                event.time_ns,
                (event.record,),
                f"{flags} address for {event.model} (tier {event.tier}), {'allowed' if event.allowed else 'denied'}",
                {"anonymizers": list(event.anonymizers)},
            )
        ]


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

    def feed(self, event: Event) -> list[Finding]:
        key, network = event.key_id, event.network
        if not key or not network or not event.account:
            return []
        last = self._last.get(key)
        self._last[key] = event
        if (last is None or last.network == network) and key not in self._recent:
            return []  # the common case: the same place as before, never switched
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
            return []
        if len(networks) < self.params["min_networks"] or len(switches) < self.params["min_switches"]:
            return []
        window = [e for e in recent if e.time_ns >= horizon]
        return [
            Finding(self.name, event.account, self.severity, window[0].time_ns, event.time_ns,
                    tuple(e.record for e in window),
                    f"key {key} switched networks {len(switches)} times within {self.params['window_s']} s "
                    f"({len(networks)} networks)", {"key_id": key, "networks": sorted(networks)})
        ]  # fmt: skip


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

    def feed(self, event: Event) -> list[Finding]:
        if not event.account or not event.country or event.anonymizers or not event.homes:
            return []
        every, away = self._all[event.account], self._away[event.account]
        every.append(event.time_ns)
        if event.country not in event.homes and not self.trips.declared(event):
            away.append(event)
        horizon = event.time_ns - self.window_ns
        while every[0] < horizon:
            every.popleft()
        while away and away[0].time_ns < horizon:
            away.popleft()
        if len(away) < self.params["min_requests"] or len(away) / len(every) < self.params["min_share"]:
            return []
        countries = sorted({str(e.country) for e in away})
        return [
            Finding(self.name, event.account, self.severity, every[0], event.time_ns,
                    tuple(e.record for e in list(away)[-20:]),
                    f"{len(away)} of {len(every)} requests from {', '.join(countries)}; declared: "
                    f"{', '.join(sorted(event.homes))}", {"countries": countries, "homes": sorted(event.homes)})
        ]  # fmt: skip


class DenyThenAllow(Detector):
    """A location or anonymizer denial, then soon an allowed request for the same model from another
    country or network: the block routed around through a permitted region."""

    name, severity = "deny_then_allow", "high"
    defaults: ClassVar[dict[str, Any]] = {"window_s": 1800}

    def __init__(self, trips: Trips, **params: Any) -> None:
        super().__init__(trips, **params)
        self._denied: dict[tuple[str, str], Event] = {}

    def feed(self, event: Event) -> list[Finding]:
        if not event.account or not event.model:
            return []
        key = (event.account, event.model)
        if not event.allowed:
            if event.location_denied:
                self._denied[key] = event
            return []
        denied = self._denied.get(key)
        if denied is None or event.time_ns - denied.time_ns > self.window_ns:
            return []
        if denied.country == event.country and denied.network == event.network:
            return []
        del self._denied[key]
        minutes = (event.time_ns - denied.time_ns) / NS_PER_S / 60
        return [
            Finding(
                self.name,
                event.account,
                self.severity,
                denied.time_ns,
                event.time_ns,
                (denied.record, event.record),
                f"{event.model} denied from {denied.country or 'unknown'}"
                f"{' via ' + ','.join(denied.anonymizers) if denied.anonymizers else ''}, allowed "
                f"{minutes:.1f} min later from {event.country or 'unknown'}",
                {"model": event.model, "denied_country": denied.country, "allowed_country": event.country},
            )
        ]


DETECTORS: dict[str, type[Detector]] = {
    d.name: d
    for d in (CountryHopping, ImpossibleTravel, AnonymizerOnRestricted, KeySharing, ResidencyMismatch, DenyThenAllow)
}


def detector_named(name: str, trips: Trips, params: Mapping[str, Any]) -> Detector:
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    return DETECTORS[name](trips, **params)
