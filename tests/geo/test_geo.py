"""IP intelligence: embedded data, .mmdb databases, address normalization."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import iporigin
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from exportgate.errors import GeoDataError, InvalidAddressError
from exportgate.geo import GeoLookup, parse_address
from exportgate.geo._embedded import KIND_FLAGS


@pytest.mark.parametrize(
    ("ip", "country", "flags"),
    [
        ("114.114.114.114", "CN", set()),
        ("8.8.8.8", "US", {"hosting"}),
        ("52.95.110.1", "US", {"hosting"}),
        ("185.220.101.1", "DE", {"tor"}),
        ("2001:4860:4860::8888", "US", {"hosting"}),
        ("::ffff:114.114.114.114", "CN", set()),
        ("::FFFF:8.8.8.8", "US", {"hosting"}),
        (" 114.114.114.114\n", "CN", set()),
        ("[2001:4860:4860::8888]", "US", {"hosting"}),
    ],
)
def test_embedded_lookup(geo, ip, country, flags):
    info = geo.lookup(ip)
    assert info.country == country
    assert info.anonymizers == frozenset(flags)


@pytest.mark.parametrize(
    "ip",
    [
        "10.1.2.3",
        "127.0.0.1",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "192.0.2.5",
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd12:3456::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "2001:db8::1",
        "ff02::1",
    ],
)
def test_reserved_addresses_have_no_country(geo, ip):
    info = geo.lookup(ip)
    assert info.country is None
    assert info.anonymizers == frozenset()
    assert info.source == "reserved"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "bad",
        "1.2.3",
        "1.2.3.4.5",
        "127.1",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "01.2.3.4",
        "1.2.3.256",
        "::ffff:1.2.3",
        "1.2.3.4/32",
        "1.2.3.4:80",
        "2001:db8::g",
        "a" * 500,
        "1.2.3.4\x00",
        "\u0661.2.3.4",
    ],
)
def test_malformed_addresses_are_a_clear_error(geo, raw):
    with pytest.raises(InvalidAddressError, match="not an IP address"):
        geo.lookup(raw)


def test_parse_address_canonicalizes():
    assert parse_address("::ffff:1.2.3.4") == (4, 0x01020304, "1.2.3.4")
    assert parse_address("2001:DB8:0:0::1").text == "2001:db8::1"
    with pytest.raises(InvalidAddressError):
        parse_address(None)  # type: ignore[arg-type]


def test_embedded_flags_agree_with_iporigin_on_random_addresses(geo):
    rng = random.Random(7)
    for _ in range(3000):
        ip = socket.inet_ntoa(rng.getrandbits(32).to_bytes(4, "big"))
        origin = iporigin.classify(ip)
        expected = frozenset() if origin.kind in ("unknown", "reserved") else KIND_FLAGS[origin.kind]
        assert geo.lookup(ip).anonymizers == expected, ip


def test_memo_returns_same_answer_and_is_bounded():
    lookup = GeoLookup(memo_size=4)
    first = lookup.lookup("8.8.8.8")
    assert lookup.lookup("8.8.8.8") is first
    for i in range(10):
        lookup.lookup(f"1.1.1.{i}")
    assert len(lookup._memo) <= 4


def _mmdb(path: Path, db_type: str, networks: dict[str, dict]) -> Path:
    writer = MMDBWriter(ip_version=6, database_type=db_type, ipv4_compatible=True)
    for cidr, record in networks.items():
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path


@pytest.fixture
def country_db(tmp_path: Path) -> Path:
    return _mmdb(
        tmp_path / "country.mmdb",
        "GeoIP2-Country",
        {
            "114.114.0.0/16": {"country": {"iso_code": "JP"}},
            "203.0.114.0/24": {"registered_country": {"iso_code": "NZ"}},
            "2a00:1450::/32": {"country": {"iso_code": "IE"}},
        },
    )


@pytest.fixture
def anon_db(tmp_path: Path) -> Path:
    return _mmdb(
        tmp_path / "anon.mmdb",
        "GeoIP2-Anonymous-IP",
        {
            "114.114.114.0/24": {"is_anonymous": True, "is_anonymous_vpn": True},
            "9.9.9.0/24": {"is_anonymous": True, "is_public_proxy": True},
            "1.0.0.0/24": {"is_anonymous": True},
            "185.220.101.0/24": {"is_anonymous": True, "is_tor_exit_node": True, "is_hosting_provider": True},
        },
    )


def test_country_mmdb_answers_first_and_embedded_fills_in(country_db):
    lookup = GeoLookup(country_mmdb=country_db)
    assert lookup.lookup("114.114.114.114").country == "JP"
    assert lookup.lookup("114.114.114.114").source == "country.mmdb"
    assert lookup.lookup("203.0.114.9").country == "NZ"
    assert lookup.lookup("2a00:1450::1").country == "IE"
    fallback = lookup.lookup("8.8.8.8")
    assert (fallback.country, fallback.source) == ("US", "embedded")


def test_country_mmdb_alone_answers_none_where_it_has_nothing(country_db):
    lookup = GeoLookup(embedded=False, country_mmdb=country_db)
    assert lookup.lookup("8.8.8.8").country is None
    assert lookup.lookup("8.8.8.8").anonymizers is None  # no anonymizer source at all: unknown


def test_anonymous_mmdb_flags_add_to_embedded(anon_db):
    lookup = GeoLookup(anonymous_mmdb=anon_db)
    assert lookup.lookup("114.114.114.114").anonymizers == frozenset({"vpn"})
    assert lookup.lookup("9.9.9.9").anonymizers == frozenset({"vpn"})
    assert lookup.lookup("1.0.0.1").anonymizers == frozenset({"vpn"})
    assert lookup.lookup("185.220.101.1").anonymizers == frozenset({"tor", "hosting"})
    assert lookup.lookup("8.8.8.8").anonymizers == frozenset({"hosting"})
    assert lookup.lookup("114.114.114.114").source == "embedded+anon.mmdb"
    assert lookup.info()["anonymous_mmdb"]["type"] == "GeoIP2-Anonymous-IP"


def test_unreadable_mmdb_is_a_geo_data_error(tmp_path: Path):
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"not a database")
    with pytest.raises(GeoDataError, match="cannot open MaxMind database"):
        GeoLookup(country_mmdb=junk)
    with pytest.raises(GeoDataError):
        GeoLookup(anonymous_mmdb=tmp_path / "missing.mmdb")


def test_info_names_packages_and_dates(geo):
    info = geo.info()
    assert info["country"]["package"] == "iptocc"
    assert info["anonymizers"]["package"] == "iporigin"
    assert info["anonymizers"]["built"] >= "2026-01-01"
