"""A directive is taken only when it is complete and still, and the last good copy only ever holds a
directive that was enforced, and only for the file it came from."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from exportgate.errors import DirectiveError
from exportgate.gateway import DirectiveHolder

from .conftest import ADMIN, serve

#: Its first lines are a valid directive on their own, with the domestic tier's rules cut after the KYC
#: rule: a prefix of this file, read mid-write, would let a verified Chinese national in China use fable-5.
FULL = """directive: frontier-ai-access
version: "{version}"
unknown_models: deny
models:
  fable-5: {{tier: domestic}}
  sonnet-4: {{tier: open}}
tiers:
  open: {{}}
  domestic:
    require_kyc: verified
    require_us_person: true
    allow_location: [US]
    deny_anonymizers: true
"""
CUT = "    require_kyc: verified\n"


def _prefix(text: str) -> str:
    return text[: text.index(CUT) + len(CUT)]


def _settled(holder: DirectiveHolder, seconds: float = 3.0) -> str:
    """Look until the holder takes or refuses the file (or ``seconds`` pass)."""
    deadline = time.monotonic() + seconds
    outcome = "waiting"
    while outcome == "waiting" and time.monotonic() < deadline:
        time.sleep(holder.settle / 2)
        outcome = holder.reload() if holder.changed() else "ok"
    return outcome


def test_a_file_still_open_for_writing_is_never_taken(tmp_path: Path):
    path, home = tmp_path / "d.yaml", tmp_path / "home"
    path.write_text(FULL.format(version="1"))
    holder = DirectiveHolder(path, home, settle=0.1)
    new = FULL.format(version="2")
    with path.open("w") as handle:  # in place, not by rename
        handle.write(_prefix(new))
        handle.flush()
        for _ in range(15):  # 1.5 s of looks while the writer pauses with the file open
            time.sleep(0.1)
            assert holder.reload() == "waiting"
        handle.write(new[len(_prefix(new)) :])
    assert _settled(holder) == "ok"
    assert holder.current.version == "2" and holder.current.tiers["domestic"].rules["require_us_person"] is True
    assert (home / "directive.last-good.yaml").read_text() == new


def test_a_file_that_keeps_changing_is_taken_once_it_stops(tmp_path: Path):
    path, home = tmp_path / "d.yaml", tmp_path / "home"
    path.write_text(FULL.format(version="1"))
    holder = DirectiveHolder(path, home, settle=0.2)
    for n in range(2, 8):  # rewritten (and closed) every 50 ms: never still for a settle period
        path.write_text(FULL.format(version=str(n)))
        assert holder.reload() == "waiting"
        time.sleep(0.05)
    assert holder.current.version == "1"
    assert _settled(holder) == "ok" and holder.current.version == "7"


def test_a_rename_is_taken_and_an_invalid_file_refused_keeping_the_last_good(tmp_path: Path):
    path, home = tmp_path / "d.yaml", tmp_path / "home"
    path.write_text(FULL.format(version="1"))
    holder = DirectiveHolder(path, home, settle=0.1)
    staged = tmp_path / "d.yaml.tmp"
    staged.write_text(FULL.format(version="2"))
    os.utime(staged, (time.time() - 5, time.time() - 5))
    os.replace(staged, path)
    assert _settled(holder) == "ok" and holder.current.version == "2"
    path.write_text("directive: broken\ntiers: {open: {bogus_rule: 1}}\n")
    assert _settled(holder) == "refused" and holder.current.version == "2" and holder.error
    assert 'version: "2"' in (home / "directive.last-good.yaml").read_text()


def test_a_last_good_copy_serves_only_the_file_it_came_from(tmp_path: Path):
    home, mine = tmp_path / "home", tmp_path / "mine.yaml"
    mine.write_text(FULL.format(version="1"))
    DirectiveHolder(mine, home, settle=0.05)  # enforced, so kept as the last good copy of mine.yaml
    with pytest.raises(DirectiveError, match="cannot read directive"):
        DirectiveHolder(tmp_path / "typo.yaml", home, settle=0.05)  # a typo is an error, not mine.yaml's rules
    other = tmp_path / "other.yaml"
    other.write_text("directive: broken\n")
    with pytest.raises(DirectiveError):
        DirectiveHolder(other, home, settle=0.05)
    mine.unlink()  # its own file gone: the last good copy of it is enforced
    holder = DirectiveHolder(mine, home, settle=0.05)
    assert holder.current.version == "1" and holder.error and "cannot read" in holder.error


WRITER = """
import sys, time
path, prefix, rest = sys.argv[1], sys.argv[2], sys.argv[3]
with open(path, "w") as handle:
    handle.write(prefix)
    handle.flush()
    time.sleep(2.0)
    handle.write(rest)
"""


def test_a_gateway_never_enforces_a_half_written_directive(tmp_path: Path):
    path = tmp_path / "directive.yaml"
    path.write_text(FULL.format(version="1"))
    os.utime(path, (time.time() - 5, time.time() - 5))
    server = serve(tmp_path / "home", "--trusted-proxy", "127.0.0.1/32", "--directive", str(path))
    li = {"Authorization": f"Bearer {server.keys['li']}", "X-Forwarded-For": "114.114.114.114"}
    chat = {"model": "fable-5", "messages": [{"role": "user", "content": "hi"}]}
    new = FULL.format(version="2")
    try:
        assert httpx.post(server.url + "/v1/chat/completions", json=chat, headers=li).status_code == 451
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), _prefix(new), new[len(_prefix(new)) :]])
        statuses = []
        while writer.poll() is None:
            statuses.append(httpx.post(server.url + "/v1/chat/completions", json=chat, headers=li).status_code)
            time.sleep(0.1)
        assert len(statuses) > 10 and set(statuses) == {451}
        deadline = time.monotonic() + 10
        while httpx.get(server.url + "/readyz", headers=ADMIN).json()["checks"]["directive"]["version"] != "2":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert httpx.post(server.url + "/v1/chat/completions", json=chat, headers=li).status_code == 451
    finally:
        server.stop()
    assert (server.home / "directive.last-good.yaml").read_text() == new
