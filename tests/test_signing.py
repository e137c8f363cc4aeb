"""exportgate.signing: RFC 8785 canonical JSON, one signing identity per home (adopted from earlier homes,
optionally passphrase-protected, rotated without breaking what was signed), and the keys a verifier trusts.
The `keys` commands over it."""

from __future__ import annotations

import json
import math
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exportgate.cli import main
from exportgate.errors import ConfigError
from exportgate.signing import (
    KEY_FILE,
    KEYS_DIR,
    PUBLIC_FILE,
    Signer,
    canonical,
    es_number,
    home_public_key,
    home_signer,
    rotate_signer,
    trust_key,
    trusted_keys,
)

# -- RFC 8785 -------------------------------------------------------------------------------------------

# RFC 8785 section 3.2.2.3 and Appendix B (IEEE 754 value -> ECMAScript text), plus the 3e-6.
NUMBERS = [
    (0.0, "0"), (-0.0, "0"), (1.0, "1"), (-1.5, "-1.5"), (4.5, "4.5"), (2e-3, "0.002"),
    (1e21, "1e+21"), (1e20, "100000000000000000000"), (1e-7, "1e-7"), (1e-6, "0.000001"),
    (3e-6, "0.000003"), (1e-27, "1e-27"), (1e30, "1e+30"), (333333333.33333329, "333333333.3333333"),
    (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
    (9007199254740992.0, "9007199254740992"), (295147905179352830000.0, "295147905179352830000"),
    (-1.7976931348623157e308, "-1.7976931348623157e+308"), (0.1 + 0.2, "0.30000000000000004"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "text"), NUMBERS, ids=[t for _, t in NUMBERS])
def test_numbers_are_written_as_ecmascript_does(value: float, text: str):
    assert es_number(value) == text
    assert canonical(value) == text.encode()


def test_the_rfc_8785_example_object():
    source = (
        '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],'
        '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical(json.loads(source)).decode() == expected


def test_member_names_sort_by_utf16_code_units():
    names = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    value = {name: i for i, name in enumerate(names)}
    order = list(json.loads(canonical(value)))
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]  # 😀 (D83D) before FB33


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 2**53 + 1, {1: "x"}, {"a": object()}])
def test_what_json_cannot_hold_exactly_is_refused(bad: Any):
    with pytest.raises((ValueError, TypeError)):
        canonical(bad)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_double_round_trips_through_its_text(x: float):
    assert float(es_number(x)) == x
    assert es_number(x) == es_number(float(es_number(x)))


SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


@given(st.text())
def test_strings_round_trip_and_escape_only_what_rfc_8785_escapes(text: str):
    encoded = canonical(text).decode("utf-8", "surrogatepass")
    assert json.loads(encoded) == text
    expected = "".join(SHORT.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 else c) for c in text)
    assert encoded == f'"{expected}"'  # the short escapes, lowercase \u00xx for other controls, the rest literal


# -- one identity per home -------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_home_has_one_owner_only_key_with_its_public_half_beside_it(tmp_path: Path):
    signer = home_signer(tmp_path)
    keys = tmp_path / KEYS_DIR
    assert _mode(keys / KEY_FILE) == 0o600 and _mode(keys) == 0o700
    assert home_signer(tmp_path).key_id == signer.key_id  # the same on every use
    public = home_public_key(tmp_path)
    assert public is not None and Signer.load_or_create(keys).key_id == signer.key_id
    assert (keys / PUBLIC_FILE).read_text() == signer.public_pem()
    assert signer.key_id in trusted_keys(tmp_path)


def test_an_earlier_home_keeps_its_audit_key_and_retires_the_others(tmp_path: Path):
    audit = Signer.load_or_create(tmp_path / "audit")
    evidence = Signer.load_or_create(tmp_path / "evidence")
    classify = Signer.load_or_create(tmp_path / "classify")
    assert home_public_key(tmp_path) is not None  # read-only look at an earlier home: its audit key
    signer = home_signer(tmp_path)
    assert signer.key_id == audit.key_id  # its audit chains keep verifying
    assert not (tmp_path / "evidence" / KEY_FILE).exists() and not (tmp_path / "classify" / KEY_FILE).exists()
    trusted = trusted_keys(tmp_path)
    assert {audit.key_id, evidence.key_id, classify.key_id} <= set(trusted.ids())  # what they signed verifies


def test_a_passphrase_encrypts_a_new_key_and_is_then_needed(tmp_path: Path):
    signer = home_signer(tmp_path, "correct horse")
    pem = (tmp_path / KEYS_DIR / KEY_FILE).read_bytes()
    assert b"ENCRYPTED" in pem
    with pytest.raises(ConfigError, match="encrypted: set signing_key_passphrase"):
        home_signer(tmp_path)
    with pytest.raises(ConfigError, match="cannot read the signing key"):
        home_signer(tmp_path, "wrong")
    assert home_signer(tmp_path, "correct horse").key_id == signer.key_id
    assert home_public_key(tmp_path) is not None  # verifying never needs it


def test_rotation_retires_the_key_but_keeps_trusting_it(tmp_path: Path):
    old = home_signer(tmp_path)
    retired, new = rotate_signer(tmp_path)
    assert retired == old.key_id and new.key_id != old.key_id
    trusted = trusted_keys(tmp_path)
    assert {old.key_id, new.key_id} <= set(trusted.ids())
    assert trusted.verify(old.key_id, b"m", old.sign(b"m"))
    assert home_signer(tmp_path).key_id == new.key_id


def test_a_trusted_key_is_copied_in_by_its_id(tmp_path: Path):
    other = Signer.load_or_create(tmp_path / "elsewhere")
    (tmp_path / "other.pem").write_text(other.public_pem())
    home = tmp_path / "home"
    assert trust_key(home, tmp_path / "other.pem") == other.key_id
    assert other.key_id in trusted_keys(home)
    assert home_public_key(home) is None  # trusting a key makes no identity
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(ConfigError):
        trust_key(home, tmp_path / "junk.pem")


# -- the keys commands ---------------------------------------------------------------------------------


def test_keys_show_export_trust_rotate(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    home = tmp_path / "home"
    home.mkdir()
    assert main(["keys", "show", "--home", str(home)]) == 0
    assert "no signing key yet" in capsys.readouterr().out and list(home.iterdir()) == []  # showing made nothing
    assert main(["keys", "create", "--home", str(home)]) == 0
    key_id = capsys.readouterr().out.split()[-1]
    assert main(["keys", "export", "--home", str(home)]) == 0
    assert capsys.readouterr().out == (home / KEYS_DIR / PUBLIC_FILE).read_text()
    other = Signer.load_or_create(tmp_path / "red-team")
    (tmp_path / "red.pem").write_text(other.public_pem())
    assert main(["keys", "trust", str(tmp_path / "red.pem"), "--home", str(home)]) == 0
    assert main(["keys", "show", "--home", str(home), "--format", "json"]) == 0
    capsys.readouterr()
    assert main(["keys", "show", "--home", str(home), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["signing_key"] == key_id
    assert {(k["key_id"], k["role"]) for k in shown["keys"]} == {(key_id, "signs"), (other.key_id, "trusted")}
    assert main(["keys", "rotate", "--home", str(home)]) == 0  # without --yes: says what it would do
    assert "add --yes" in capsys.readouterr().out and home_signer(home).key_id == key_id
    assert main(["keys", "rotate", "--yes", "--home", str(home)]) == 0
    assert f"retired {key_id}" in capsys.readouterr().out
    assert home_signer(home).key_id != key_id and key_id in trusted_keys(home)


def test_a_plaintext_passphrase_setting_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    home = tmp_path / "home"
    monkeypatch.setenv("EXPORTGATE_SIGNING_KEY_PASSPHRASE", "hunter2")
    assert main(["keys", "create", "--home", str(home)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "$env:NAME" in err and "hunter2" not in err
    monkeypatch.setenv("EXPORTGATE_SIGNING_KEY_PASSPHRASE", "$env:MY_PASS")
    monkeypatch.setenv("MY_PASS", "hunter2")
    assert main(["keys", "create", "--home", str(home)]) == 0
    assert b"ENCRYPTED" in (home / KEYS_DIR / KEY_FILE).read_bytes()
    monkeypatch.delenv("MY_PASS")
    assert main(["keys", "create", "--home", str(home)]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_only_who_can_unlock_the_key_rotates_it_and_an_empty_passphrase_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    home = tmp_path / "home"
    signer = home_signer(home, "s3cret")
    with pytest.raises(ConfigError, match="encrypted"):
        rotate_signer(home)  # no passphrase: the encrypted key is not retired for an unencrypted one
    assert home_signer(home, "s3cret").key_id == signer.key_id
    retired, _ = rotate_signer(home, "s3cret")
    assert retired == signer.key_id and b"ENCRYPTED" in (home / KEYS_DIR / KEY_FILE).read_bytes()
    monkeypatch.setenv("EXPORTGATE_SIGNING_KEY_PASSPHRASE", "$env:EMPTY_PASS")
    monkeypatch.setenv("EMPTY_PASS", "")
    assert main(["keys", "create", "--home", str(tmp_path / "other")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "empty" in err and not (tmp_path / "other" / KEYS_DIR).exists()


def test_eval_run_unlocks_the_key_before_the_campaign(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    home = tmp_path / "home"
    home_signer(home, "s3cret")
    out = tmp_path / "ev.json"
    args = ["eval", "run", "--target", "sim:typical", "--model", "sim-1", "--trials", "2", "--out", str(out),
            "--home", str(home)]  # fmt: skip
    assert main(args) == 1
    assert "encrypted" in capsys.readouterr().err
    assert not out.exists() and not out.with_suffix(".checkpoint.db").exists()  # nothing ran
