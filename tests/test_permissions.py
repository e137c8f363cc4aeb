"""Files holding personal data or keys are owner-only: a home is 0700 with every directory 0700 and every
file 0600 after a whole working session, whatever the umask; so are the evaluation's checkpoint and
transcripts (raw, unredacted), and what an export writes; homes from before are tightened."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from exportgate._files import private_dir
from exportgate.cli import main
from tests.gateway.conftest import serve


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what most systems use: files 0644 and directories 0755 unless made otherwise
    yield
    os.umask(old)


def _loose(root: Path) -> list[str]:
    """Everything under ``root`` (itself included) that group or others may read, write or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            found.append(f"{path.relative_to(root.parent)} {oct(mode)}")
    return found


def test_a_home_after_a_working_session_is_owner_only(tmp_path: Path):
    home = tmp_path / "home"
    server = serve(home, "--trusted-proxy", "127.0.0.1/32", "--workers", "2", "--monitor")
    try:
        for who, ip in (("ada", "3.3.3.3"), ("li", "114.114.114.114")):
            httpx.post(server.url + "/v1/chat/completions", json={"model": "fable-5", "messages": []},
                       headers={"Authorization": f"Bearer {server.keys[who]}", "X-Forwarded-For": ip})  # fmt: skip
        assert main(["accounts", "add", "bo", "--citizenship", "DE", "--home", str(home)]) == 0
        assert main(["monitor", "--since", "1h", "--home", str(home)]) == 0
        assert main(["accounts", "trips", "add", "bo", "--country", "FR", "--from", "2026-12-01", "--until",
                     "2026-12-02", "--home", str(home)]) == 0  # fmt: skip
    finally:
        server.stop()
    assert main(["audit", "export", "--format", "csv", "--home", str(home), "--out", str(home / "out.csv")]) == 0
    assert {p.name for p in home.iterdir()} >= {"accounts.db", "audit.db", "audit", "alerts.db", "out.csv"}
    assert _loose(home) == []


def test_the_evaluation_checkpoint_and_transcripts_are_owner_only(tmp_path: Path):
    out = tmp_path / "runs" / "evidence.json"
    out.parent.mkdir()
    assert main(["eval", "run", "--target", "sim:vulnerable", "--model", "sim-1", "--trials", "2",
                 "--out", str(out), "--home", str(tmp_path / "home")]) == 0  # fmt: skip
    private = [p for p in out.parent.iterdir() if "checkpoint" in p.name or "transcripts" in p.name]
    assert private and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in private)
    assert _loose(tmp_path / "home") == []


def test_a_home_from_before_is_tightened_when_opened(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    assert main(["accounts", "add", "ada", "--citizenship", "US", "--home", str(home)]) == 0
    os.chmod(home, 0o755)
    os.chmod(home / "accounts.db", 0o644)
    assert main(["accounts", "add", "bo", "--citizenship", "US", "--home", str(home)]) == 0
    assert _loose(home) == []


def test_a_directory_the_user_chose_is_never_closed_to_others(tmp_path: Path):
    """An evaluation's --out may be in a shared directory: its checkpoint is owner-only, the directory is
    left as it was (as root, tightening /tmp or /dev would break the machine)."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    out = shared / "ev.json"
    assert main(["eval", "run", "--target", "sim:typical", "--model", "sim-1", "--trials", "1", "--strategies",
                 "direct", "--out", str(out), "--home", str(tmp_path / "home")]) == 0  # fmt: skip
    assert stat.S_IMODE(shared.stat().st_mode) == 0o777
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    private_dir(sticky)
    assert stat.S_IMODE(sticky.stat().st_mode) == 0o1777


def test_an_owner_only_file_is_never_a_device_or_a_fifo(tmp_path: Path):
    """Files written owner-only (records, exports, checkpoints) are tightened when they exist; a device or a
    FIFO given as the place to write is refused instead (as root, /dev/null would become 0600)."""
    from exportgate._files import private_file, private_sqlite
    from exportgate.errors import ConfigError

    device = tmp_path / "null"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a null device of the test's own
    device.chmod(0o666)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o666)
    for path in (device, fifo):
        with pytest.raises((ConfigError, OSError)):
            private_file(path).close()
        with pytest.raises((ConfigError, OSError)):
            private_sqlite(path, own_directory=False)
    assert stat.S_IMODE(device.stat().st_mode) == 0o666 and stat.S_IMODE(fifo.stat().st_mode) & 0o066
    regular = tmp_path / "record.json"
    with private_file(regular) as handle:
        handle.write("x")
    assert stat.S_IMODE(regular.stat().st_mode) == 0o600
