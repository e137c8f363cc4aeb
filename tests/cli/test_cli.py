"""The CLI: the documented command names, one-line errors, no tracebacks, the done-when examples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exportgate.cli import main
from tests.conftest import EXAMPLE, ROOT


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def explain(capsys, *args: str) -> dict:
    code, out, err = run(capsys, "directive", "explain", EXAMPLE, "--format", "json", *args)
    assert code == 0, err
    return json.loads(out)


def test_done_when_cn_citizen_from_china_is_denied(capsys):
    result = explain(capsys, "--model", "fable-5", "--citizenship", "CN", "--ip", "114.114.114.114")
    assert result["decision"] == "deny"
    found = [r["code"] for r in result["reasons"]]
    assert "us_person_required" in found and "location_not_allowed" in found
    assert result["client"]["country"] == "CN"


def test_done_when_us_citizen_from_us_residential_address_is_allowed(capsys):
    result = explain(capsys, "--model", "fable-5", "--citizenship", "US", "--kyc", "verified", "--ip", "3.3.3.3")
    assert result["decision"] == "allow" and result["reasons"] == []


@pytest.mark.parametrize("spelling", ["FABLE-5", " fable5 ", "vendor/fable-5"])
def test_done_when_spellings_decide_the_same(capsys, spelling):
    for person in (
        ["--citizenship", "US", "--kyc", "verified", "--ip", "3.3.3.3"],
        ["--citizenship", "CN", "--ip", "114.114.114.114"],
    ):
        base = explain(capsys, "--model", "fable-5", *person)
        other = explain(capsys, "--model", spelling, *person)
        assert {**other, "requested_model": "fable-5"} == base


def test_text_explain_prints_every_reason(capsys):
    code, out, _ = run(
        capsys, "directive", "explain", EXAMPLE, "--model", "fable-5", "--citizenship", "CN", "--ip", "114.114.114.114"
    )
    assert code == 0
    assert out.startswith("DENY  fable-5 (tier domestic)")
    assert out.splitlines()[1] == (  # as in the README; the organization is recorded, not a decision input
        "  subject: citizenships CN, residencies none, us_person no, kyc unknown, screening unknown,"
        " controlled_by unknown"
    )
    for fragment in ("us_person_required", "location_not_allowed", "identity_incomplete", "require_kyc"):
        assert fragment in out


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("tiers: {t: {deny_location: [QQ]}}\nmodels: {m: t}\n", ":3: tier 't': deny_location: unknown country code"),
        ("tiers: {t: {deny_location: [ear:X:1]}}\nmodels: {m: t}\n", ":3: tier 't': deny_location: unknown group"),
        ("tiers: {t: {}}\nmodels:\n  m: {tier: gone}\n", ":5: model 'm': unknown tier 'gone'"),
    ],
)
def test_done_when_invalid_directive_is_refused_with_file_line(capsys, tmp_path: Path, body, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text('directive: d\nversion: "1"\n' + body)
    code, out, err = run(capsys, "directive", "check", path)
    assert code == 1 and out == ""
    first = err.splitlines()[0]
    assert first.startswith(f"exportgate: error: {path}:") and fragment in first


def test_check_reports_a_good_directive(capsys):
    code, out, _ = run(capsys, "directive", "check", EXAMPLE)
    assert code == 0 and out.startswith("ok: frontier-ai-access version 2026-06-14.1: 3 tiers, 3 models")


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["directive", "explain", EXAMPLE, "--model", "m", "--citizenship", "ZZ"], 2, "unknown country code 'ZZ'"),
        (["directive", "explain", EXAMPLE, "--model", "m", "--ip", "1.2.3"], 1, "not an IP address"),
        (["directive", "explain", EXAMPLE, "--model", "m", "--kyc", "gold"], 2, "unknown KYC level"),
        (["directive", "explain", EXAMPLE, "--model", "m", "--us-person", "maybe"], 2, "expected yes or no"),
        (["directive", "explain", EXAMPLE, "--model", "m", "--ip", "1.1.1.1", "--country", "US"], 2, "not both"),
        (["directive", "explain", EXAMPLE], 2, "Missing option '--model'"),
        (["directive", "check", "/nonexistent/d.yaml"], 1, "cannot read directive"),
        (["directive", "frobnicate"], 2, "No such command"),
        (["accounts", "suspend", "nobody", "--home", "{home}"], 1, "no account named 'nobody'"),
        (["accounts", "keys", "revoke", "feedfacefeed", "--home", "{home}"], 1, "no API key"),
        (["geo", "lookup", "not-an-ip"], 1, "not an IP address"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(capsys, home: Path, args, code, fragment):
    home.mkdir()  # an existing home: a missing one is its own error (tests/cli/test_read_only.py)
    got, out, err = run(capsys, *[a.format(home=home) if isinstance(a, str) else a for a in args])
    assert got == code
    assert err.count("\n") == 1 and err.startswith("exportgate: error: ") and fragment in err
    assert "Traceback" not in err + out


def test_accounts_lifecycle(capsys, home: Path):
    code, key, err = run(
        capsys,
        "accounts",
        "add",
        "ada",
        "--citizenship",
        "US",
        "--kyc",
        "verified",
        "--org",
        "Lab",
        "--controlled-by",
        "us",
        "--home",
        home,
    )
    assert code == 0 and key.startswith("egk_") and "shown once" in err
    code, _, err = run(capsys, "accounts", "add", "ada", "--home", home)
    assert code == 1 and "already exists" in err
    code, out, _ = run(capsys, "accounts", "list", "--format", "json", "--home", home)
    (account,) = json.loads(out)
    assert account["us_person"] is True and account["controlled_by"] == "US" and account["kyc"] == "verified"
    assert key.strip() not in out
    code, out, _ = run(capsys, "accounts", "suspend", "ada", "--home", home)
    assert code == 0
    code, out, _ = run(capsys, "accounts", "list", "--home", home)
    assert "ada" in out and out.splitlines()[1].rstrip().endswith("yes")
    code, out, _ = run(capsys, "accounts", "show", "ada", "--home", home)
    shown = json.loads(out)
    key_id = shown["keys"][0]["key_id"]
    assert shown["suspended"] is True and key_id in key
    code, out, _ = run(capsys, "accounts", "keys", "revoke", key_id, "--home", home)
    assert code == 0 and f"revoked {key_id} of ada" in out
    code, out, _ = run(capsys, "accounts", "keys", "list", "ada", "--home", home)
    row = out.splitlines()[1].split()
    assert row[0] == key_id and row[-1] != "-"  # revoked_at is set


def test_geo_lookup_json(capsys):
    code, out, _ = run(capsys, "geo", "lookup", "::ffff:114.114.114.114", "10.0.0.1", "--format", "json")
    assert code == 0
    first, second = json.loads(out)
    assert first["country"] == "CN" and second["country"] is None and second["source"] == "reserved"


def test_every_command_has_help(capsys):
    for args in (
        ["--help"],
        ["directive", "--help"],
        ["directive", "explain", "--help"],
        ["accounts", "--help"],
        ["accounts", "add", "--help"],
        ["accounts", "keys", "revoke", "--help"],
        ["geo", "lookup", "--help"],
    ):
        code, out, _ = run(capsys, *args)
        assert code == 0 and "Usage:" in out


def test_installed_script_never_prints_a_traceback(tmp_path: Path):
    script = Path(sys.executable).parent / "exportgate"
    env = {**os.environ, "EXPORTGATE_HOME": str(tmp_path)}
    for args in (
        ["directive", "check", str(ROOT / "pyproject.toml")],
        ["accounts", "keys", "revoke", "x"],
        ["directive", "explain", str(EXAMPLE), "--model", "m", "--ip", "[[["],
        ["nope"],
    ):
        proc = subprocess.run([str(script), *args], capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr and proc.stderr.startswith("exportgate: error: ")
    proc = subprocess.run([sys.executable, "-m", "exportgate", "version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("exportgate ")


@pytest.mark.parametrize(
    ("ip", "code"),
    [("10.0.0.1", "location_unknown"), ("192.0.2.1", "location_unknown"), ("::1", "location_unknown")],
)
def test_addresses_without_a_country_fail_closed(capsys, ip, code):
    result = explain(capsys, "--model", "fable-5", "--citizenship", "US", "--kyc", "verified", "--ip", ip)
    assert result["decision"] == "deny"
    assert [r["code"] for r in result["reasons"]] == [code]


def test_no_ip_at_all_fails_closed_on_location_and_anonymizers(capsys):
    result = explain(capsys, "--model", "fable-5", "--citizenship", "US", "--kyc", "verified")
    assert [(r["code"], r["value"]) for r in result["reasons"]] == [
        ("location_unknown", None),
        ("anonymizer_denied", "unknown"),
    ]
