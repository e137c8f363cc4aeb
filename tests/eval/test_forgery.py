"""Bundles an insider re-signs with the trusted key after an edit the format does not allow, and files a
verifier must refuse cleanly (a red-team pass over issue 16): the library verifier and the stand-alone
script agree on every one, and neither prints a traceback."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from exportgate.cli import main
from exportgate.eval import verify_evidence
from exportgate.signing import Signer, canonical, home_signer, trusted_keys

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "verify_evidence.py"
SECTIONS = ("schema", "tool", "created", "config", "target", "objectives", "trials", "statistics", "transcripts")


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("forgery")
    out = tmp / "ev.json"
    assert main(["eval", "run", "--target", "sim:typical", "--model", "sim-1", "--trials", "3", "--strategies",
                 "direct,crescendo", "--out", str(out), "--home", str(tmp / "home")]) == 0  # fmt: skip
    assert main(["keys", "export", "--home", str(tmp / "home"), "--out", str(tmp / "signer.pem")]) == 0
    return out


def _sign(data: dict[str, Any], signer: Signer, extra_manifest: dict[str, str] | None = None) -> bytes:
    """What an insider with the key writes: the edited sections hashed and signed as the format says."""
    manifest = {name: hashlib.sha256(canonical(data[name])).hexdigest() for name in SECTIONS}
    manifest.update(extra_manifest or {})
    data = {**data, "manifest": manifest}
    data["signature"] = {"algorithm": "Ed25519", "key_id": signer.key_id, "public_key": signer.public_pem(),
                         "value": signer.sign(canonical(manifest))}  # fmt: skip
    return canonical(data) + b"\n"


def _cell(data: dict[str, Any]) -> dict[str, Any]:
    return data["statistics"]["cells"][0]  # type: ignore[no-any-return]


def _trial(data: dict[str, Any]) -> dict[str, Any]:
    return data["trials"][0]  # type: ignore[no-any-return]


EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "repeatable 1 for true": lambda d: _cell(d).update(repeatable=int(_cell(d)["repeatable"])),
    "success as text": lambda d: _trial(d).update(success="false"),
    "negative tokens": lambda d: _trial(d).update(prompt_tokens=-5),
    "trial index as text": lambda d: _trial(d).update(trial=str(_trial(d)["trial"])),
    "fractional turns": lambda d: _trial(d).update(turns=1.5),
    "threshold 0": lambda d: d["config"]["rules"].update(threshold=0),
    "min_trials 0": lambda d: d["config"]["rules"].update(min_trials=0),
    "threshold as text": lambda d: d["config"]["rules"].update(threshold="0.2"),
    "trials as true": lambda d: d["config"].update(trials=True),
    "a strategy twice": lambda d: d["config"]["strategies"].append(dict(d["config"]["strategies"][0])),
    "objectives without their hash": lambda d: [o.pop("sha256") for o in d["objectives"] + d["config"]["objectives"]],
    "a domain that is not text": lambda d: d["objectives"][0].update(domain=None),
    "a created time without a zone": lambda d: d.update(created=d["created"].rstrip("Z")),
    "a redacted length holding markup": lambda d: _redacted(d).update(length="<script>alert(1)</script>"),
    "a transcript message of another shape": lambda d: _trial(d)["transcript"].append("sha256"),
    "a seed as text": lambda d: _trial(d).update(seed="1"),
}  # fmt: skip


def _redacted(data: dict[str, Any]) -> dict[str, Any]:
    return next(m for t in data["trials"] for m in t["transcript"] if "sha256" in m)  # type: ignore[no-any-return]


def _both(path: Path, key: Path, tmp_path: Path) -> tuple[bool, str, bool, str]:
    check = verify_evidence(path, trusted_keys(key.parent / "home"))
    room = tmp_path / "room"
    room.mkdir(exist_ok=True)
    shutil.copy(SCRIPT, room / "v.py")
    done = subprocess.run([sys.executable, "-I", str(room / "v.py"), str(path), "--key", str(key)],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return check.ok, "; ".join(check.problems), done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", sorted(EDITS))
def test_an_edit_the_format_forbids_is_refused_by_both_verifiers_even_re_signed(
    genuine: Path, tmp_path: Path, name: str
):
    data = orjson.loads(genuine.read_bytes())
    EDITS[name](data)
    path = tmp_path / "forged.json"
    path.write_bytes(_sign(data, home_signer(genuine.parent / "home")))
    library_ok, problems, script_ok, shown = _both(path, genuine.parent / "signer.pem", tmp_path)
    assert not library_ok and problems, name
    assert not script_ok and "NOT VERIFIED" in shown, name


def test_the_signature_object_and_the_manifest_hold_nothing_else(genuine: Path, tmp_path: Path):
    signer = home_signer(genuine.parent / "home")
    key = genuine.parent / "signer.pem"
    data = orjson.loads(genuine.read_bytes())
    sections = {k: v for k, v in data.items() if k in SECTIONS}
    variants = {
        "extra manifest key": _sign(sections, signer, {"note": "0" * 64}),
        "extra signature member": canonical({**orjson.loads(genuine.read_bytes()),
                                              "signature": {**data["signature"], "countersigned_by": "Regulator"}})
        + b"\n",
        "PEM with CRLF": canonical({**data, "signature": {**data["signature"],
                                    "public_key": data["signature"]["public_key"].replace("\n", "\r\n")}}) + b"\n",
        "PEM after other text": canonical({**data, "signature": {**data["signature"],
                                           "public_key": "trust me\n" + data["signature"]["public_key"]}}) + b"\n",
        "PEM with a trailing space": canonical({**data, "signature": {**data["signature"],
                                                "public_key": data["signature"]["public_key"] + " "}}) + b"\n",
    }  # fmt: skip
    for name, raw in variants.items():
        path = tmp_path / "variant.json"
        path.write_bytes(raw)
        library_ok, _, script_ok, _ = _both(path, key, tmp_path)
        assert not library_ok and not script_ok, name


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw.replace(b'"trials":[{', b'"trials":[{"big":9007199254740993,', 1),  # not an exact double
        lambda raw: raw.replace(b'"signature":{', b'"signaturx":{', 1),
        lambda raw: raw.replace(b'"value":"', b'"value":"!!', 1),
        lambda raw: raw.replace(b'"config":{', b'"config":{"x":NaN,', 1),
    ],
    ids=["integer beyond 2^53", "no signature", "bad base64", "NaN"],
)
def test_a_damaged_bundle_is_one_clear_line_never_a_traceback(
    genuine: Path, tmp_path: Path, damage: Callable[[bytes], bytes], capsys: pytest.CaptureFixture[str]
):
    path = tmp_path / "damaged.json"
    path.write_bytes(damage(genuine.read_bytes()))
    home = str(genuine.parent / "home")
    for args in (["evidence", "verify", str(path)], ["eval", "report", str(path)],
                 ["eval", "compare", str(genuine), str(path)]):  # fmt: skip
        capsys.readouterr()
        code = main([*args, "--home", home])
        err = capsys.readouterr().err
        assert code in (1, 2) and err.count("\n") == 1 and err.startswith("exportgate: error: "), (args, err)
    library_ok, _, script_ok, _ = _both(path, genuine.parent / "signer.pem", tmp_path)
    assert not library_ok and not script_ok


def test_a_special_file_is_read_no_further_than_a_bundle_can_be(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from exportgate.eval import _evidence

    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(_evidence.MAX_BUNDLE_BYTES + 1)  # sparse: no disk used
    assert main(["evidence", "verify", str(big)]) == 1
    assert "larger than" in capsys.readouterr().err


def test_the_html_report_escapes_what_a_bundle_holds(genuine: Path, tmp_path: Path):
    data = orjson.loads(genuine.read_bytes())
    for trial in data["trials"]:
        trial["success"] = True  # so that every trial is shown
    _redacted(data).update(length="<script>alert(1)</script>", sha256="<img src=x onerror=alert(1)>")
    path = tmp_path / "markup.json"
    path.write_bytes(_sign(data, home_signer(genuine.parent / "home")))
    page = tmp_path / "r.html"
    assert main(["eval", "report", str(path), "--html", str(page), "--home", str(genuine.parent / "home")]) == 1
    html = page.read_text()
    assert "<script>" not in html and "<img" not in html and "does not verify" in html.lower()
