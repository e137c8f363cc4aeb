"""Each detector on hand-made event sequences: what it must catch, and the look-alikes it must not."""

from __future__ import annotations

import datetime as dt

import pytest

from exportgate.identity import Trip
from exportgate.monitor import DETECTORS, Event, Trips, detector_named, min_distance_km

MIN = 60 * 1_000_000_000
T0 = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
counter = iter(range(1_000_000))


def ev(
    minute: float,
    country: str | None = "US",
    *,
    account: str = "a",
    network: str = "3.3.3.0/24",
    allowed: bool = True,
    location_denied: bool = False,
    anonymizers: tuple[str, ...] = (),
    tier: str = "domestic",
    model: str = "fable-5",
    key: str = "k1",
    homes: tuple[str, ...] = ("US",),
) -> Event:
    return Event(f"w:{next(counter)}", T0 + int(minute * MIN), account, key, network, country, anonymizers, model,
                 tier, allowed, location_denied, tuple(sorted(homes)))  # fmt: skip


def run(name: str, events: list[Event], trips: tuple[Trip, ...] = (), **params: object) -> list:
    """The findings fed one event at a time; fed all at once, and in uneven runs, they must be the same."""
    one = detector_named(name, Trips(trips), params)
    findings = [f for e in events for f in one.feed(e.account, [e])]
    whole = detector_named(name, Trips(trips), params)
    assert whole.feed("a", events) == findings
    runs, rest, size = detector_named(name, Trips(trips), params), list(events), 0
    pieces: list = []
    while rest:
        size = size % 3 + 1  # runs of 1, 2, 3, 1, ...
        pieces.extend(runs.feed("a", rest[:size]))
        rest = rest[size:]
    assert pieces == findings
    return findings


def test_country_hopping():
    hops = [ev(0, "US"), ev(10, "CA", network="n2"), ev(20, "GB", network="n3")]
    assert run("country_hopping", hops)[0].details["countries"] == ["CA", "GB", "US"]
    assert not run("country_hopping", [ev(0, "US"), ev(10, "CA"), ev(70, "GB")])  # spread over > 1 h
    assert not run("country_hopping", [ev(0, "US"), ev(10, "CA"), ev(20, "GB", anonymizers=("vpn",))])
    assert len(run("country_hopping", hops, min_countries=4)) == 0


def test_impossible_travel_respects_distance_time_and_size():
    findings = run("impossible_travel", [ev(0, "CN"), ev(5, "US")])
    assert findings and findings[0].evidence[0].startswith("w:") and findings[0].severity == "high"
    assert not run("impossible_travel", [ev(0, "US"), ev(10 * 60, "DE")])  # a 10-hour flight
    assert not run("impossible_travel", [ev(0, "DE"), ev(5, "FR")])  # neighbours
    assert not run("impossible_travel", [ev(0, "US"), ev(5, "CA")])  # large neighbours: radii subtracted
    assert not run("impossible_travel", [ev(0, "US"), ev(5, "DE", anonymizers=("vpn",))])  # a VPN's country
    assert min_distance_km("US", "DE") > 5000 and min_distance_km("US", "XX") is None


def test_anonymizer_on_restricted_tiers_only():
    assert run("anonymizer_restricted", [ev(0, anonymizers=("tor",), allowed=False)])
    assert run("anonymizer_restricted", [ev(0, anonymizers=("hosting",), tier="restricted")])  # even if allowed
    assert not run("anonymizer_restricted", [ev(0, anonymizers=("vpn",), tier="open")])


def test_key_sharing_needs_alternation_not_one_move():
    shared = [ev(i * 2, network=("n1", "n2", "n3")[i % 3]) for i in range(6)]
    assert run("key_sharing", shared)[0].details["networks"] == ["n1", "n2", "n3"]
    moved = [ev(i * 2, network="home") for i in range(3)] + [ev(10 + i * 2, network="phone") for i in range(3)]
    assert not run("key_sharing", moved)  # home wifi to phone: one switch
    slow = [ev(i * 30, network=("n1", "n2")[i % 2]) for i in range(6)]
    assert not run("key_sharing", slow)  # alternating, but not within 10 minutes


def test_residency_mismatch_and_declared_trips():
    abroad = [ev(i * 30, "DE", homes=("US",)) for i in range(12)]
    assert run("residency_mismatch", abroad)[0].details["countries"] == ["DE"]
    trip = Trip(1, "a", "DE", dt.date(2026, 11, 19), dt.date(2026, 11, 30))
    assert not run("residency_mismatch", abroad, (trip,))
    mixed = [ev(i * 30, "DE" if i % 3 == 0 else "US", homes=("US",)) for i in range(40)]
    assert not run("residency_mismatch", mixed)  # a third of the requests: not where it lives
    assert not run("residency_mismatch", [ev(i * 30, "DE", homes=()) for i in range(12)])  # nothing declared


def test_deny_then_allow_from_elsewhere():
    denied = ev(0, "CN", location_denied=True, allowed=False, network="cn")
    allowed = ev(5, "US", network="us")
    assert run("deny_then_allow", [denied, allowed])[0].evidence == (denied.record, allowed.record)
    assert not run("deny_then_allow", [ev(0, "CN", location_denied=True, allowed=False), ev(45, "US", network="x")])
    assert not run("deny_then_allow", [ev(0, "US", allowed=False), ev(5, "US", network="y")])  # not a location denial
    other_model = ev(5, "US", network="us", model="sonnet-4")
    assert not run("deny_then_allow", [ev(0, "CN", location_denied=True, allowed=False), other_model])


def test_unknown_parameters_are_refused():
    with pytest.raises(ValueError, match="unknown parameter"):
        detector_named("key_sharing", Trips(), {"window": 5})
    with pytest.raises(ValueError, match="unknown detector"):
        detector_named("telepathy", Trips(), {})
    assert set(DETECTORS) == {"country_hopping", "impossible_travel", "anonymizer_restricted", "key_sharing",
                              "residency_mismatch", "deny_then_allow"}  # fmt: skip
