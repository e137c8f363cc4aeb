"""Every command in the tree, given bad values for every option and argument of every type, answers with
one clear line and a non-zero exit (or succeeds), never a traceback. The tree is walked, not listed, so a
new command or option is covered the day it is added."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from exportgate.cli import app, main
from tests.audit.conftest import write_records
from tests.conftest import EXAMPLE

#: Commands that serve (or start a server) until stopped: run as a process with a time limit.
SERVING = {("serve",), ("sim", "serve"), ("sim", "traffic"), ("admin", "serve")}


def _commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                yield from walk(child, (*path, name))
        else:
            yield path, command

    yield from walk(typer.main.get_command(app), ())


COMMANDS = dict(_commands())


def test_the_tree_is_the_whole_cli():
    assert len(COMMANDS) >= 40 and ("audit", "export") in COMMANDS and ("monitor", "resolve") in COMMANDS


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A home with accounts and records, an evidence bundle, labels: what required parameters name."""
    root = tmp_path_factory.mktemp("tree")
    home = root / "home"
    assert main(["accounts", "add", "ada", "--citizenship", "US", "--home", str(home)]) == 0
    write_records(None, home, 5)
    evidence = root / "evidence.json"
    assert main(["eval", "run", "--target", "sim:vulnerable", "--model", "sim-1", "--trials", "1", "--strategies",
                 "direct", "--out", str(evidence), "--home", str(home)]) == 0  # fmt: skip
    labels = root / "labels.jsonl"
    labels.write_text('{"goal": "g", "response": "r", "label": false}\n')
    key = root / "signer.pem"
    assert main(["keys", "export", "--out", str(key), "--home", str(home)]) == 0
    watch = root / "watch.csv"
    watch.write_text("id,name,type\nW-1,Somebody Listed,individual\n", encoding="utf-8")
    return {"home": str(home), "evidence": str(evidence), "labels": str(labels), "dir": str(root), "key": str(key),
            "list": str(watch)}  # fmt: skip


def _required(name: str, world: dict[str, str]) -> str:
    """A value that gets past a required parameter, so the bad value under test is the one that matters."""
    values = {
        "file": str(EXAMPLE), "directive": str(EXAMPLE), "model": "fable-5", "name": "ada", "key_id": "k1",
        "country": "DE", "starts": "2026-12-01", "ends": "2026-12-02", "addresses": "3.3.3.3",
        "before": "2000-01-01", "target": "sim:vulnerable", "evidence": world["evidence"], "judge": "sim:",
        "labels": world["labels"], "framework": "default", "out": str(Path(world["dir"]) / "new.yaml"),
        "alert": "alert-0", "record_id": "cls-0123456789abcdef", "record_file": world["evidence"],
        "key": world["key"], "by": "grace", "a": world["evidence"], "b": world["evidence"],
        "v1": "1", "v2": "1", "version": "1", "role": "viewer", "token_id": "0123456789ab",
        "files": world["list"], "account": "ada", "candidate": "internal:W-1", "reason": "not the same person",
    }  # fmt: skip
    return values[name]


def _base(path: tuple[str, ...], command: Any, world: dict[str, str]) -> list[str]:
    args = list(path)
    for param in command.params:
        if param.required and param.param_type_name == "argument":
            args.append(_required(param.name, world))
        elif param.required:
            args += [param.opts[0], _required(param.name, world)]
    if any(p.name == "home" for p in command.params):
        args += ["--home", world["home"]]
    if path == ("eval", "run"):
        args += ["--trials", "1", "--strategies", "direct", "--out", str(Path(world["dir"]) / "run.json")]
    return args


def _bad_values(param: Any, world: dict[str, str]) -> list[str]:
    kind = param.bare_type()
    if kind is bool:
        return []
    if kind is int:
        return ["x", "99999999999999999999999999", "-1"]
    if kind is float:
        return ["x", "nan", "-inf", "1e400"]
    if kind is Path:
        return ["/nonexistent/dir/x.json", world["dir"], ""]
    return ["", "\udcff", "-", "x" * 300]  # a string, an enum, a list of strings (300: past any name limit)


def _cases(world_keys: list[str]) -> Iterator[Any]:
    for path, command in COMMANDS.items():
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                yield pytest.param(path, param.name, id=f"{' '.join(path)} {param.opts[0]}")
            elif param.param_type_name == "argument":
                yield pytest.param(path, param.name, id=f"{' '.join(path)} <{param.name}>")


def _with_bad(base: list[str], command: Any, name: str, value: str) -> list[str]:
    param = next(p for p in command.params if p.name == name)
    if param.param_type_name == "argument":
        args, position = list(base), 0
        for p in command.params:  # replace this argument's value in the base
            if p.param_type_name == "argument":
                if p.name == name:
                    if p.required:
                        args[len(_path_of(command)) + position] = value
                    else:
                        args.append(value)
                    return args
                position += 1 if p.required else 0
        return args
    return [*base, param.opts[0], value]


def _path_of(command: Any) -> tuple[str, ...]:
    return next(path for path, c in COMMANDS.items() if c is command)


def _check(code: int, err: str, args: list[str]) -> None:
    args = [a[:40] for a in args]
    assert code in (0, 1, 2, 130), f"{args[:6]}: exit {code}"
    if code != 0:
        lines = err.strip().splitlines()
        assert lines and lines[0].startswith("exportgate: error: "), f"{args[:6]}: {err[-1500:]}"
        assert len(lines) == 1, f"{args[:6]}: {err[:200]}"
    assert "Traceback" not in err


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory of the test's own: ``--home ""`` or ``--home -`` means one there, never in the
    repository."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("path", "name"), list(_cases([])))
def test_bad_values_for_every_parameter_are_one_line(world, capsys, elsewhere, path, name):
    command = COMMANDS[path]
    param = next(p for p in command.params if p.name == name)
    base = _base(path, command, world)
    every = [_with_bad(base, command, name, value) for value in _bad_values(param, world)]
    if path in SERVING:
        _check_served(every, elsewhere)
        return
    for args in every:
        code = main(args)
        _check(code, capsys.readouterr().err, args)


def _check_served(every: list[list[str]], cwd: Path) -> None:
    """Serving commands as processes, all at once (each on a port of its own): a bad value must end one
    with one line; a value it accepts leaves it serving, which is stopped after a few seconds (no
    traceback either way)."""
    started = []
    for port, args in enumerate(every, start=8971):
        if "\udcff" in "".join(args):
            continue  # cannot be passed through this test's UTF-8 argv; main() is covered in-process above
        serving = args[:1] == ["serve"] or args[:2] in (["sim", "serve"], ["admin", "serve"])
        extra = ["--port", str(port)] if serving else []
        if args[:2] == ["sim", "traffic"]:
            extra = ["--hours", "1", "--time-scale", "1000000", "--per-population", "1"]
        process = subprocess.Popen([sys.executable, "-m", "exportgate.cli", *args, *extra], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, cwd=cwd)  # fmt: skip
        started.append((args, process))
    deadline = time.monotonic() + 4
    try:
        for args, process in started:
            try:
                _, err = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.terminate()
                _, err = process.communicate(timeout=60)
                assert "Traceback" not in err, err[-1500:]
                continue
            _check(process.returncode, err, args)
    finally:  # whatever failed, no process of this test outlives it
        for _, process in started:
            if process.poll() is None:
                process.kill()
            process.communicate()


def test_the_version_flag(capsys):
    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("exportgate ")


def test_a_negative_count_is_refused(world, capsys):
    code = main(["audit", "tail", "-n", "-5", "--home", world["home"]])
    assert code == 2 and "'-n'" in capsys.readouterr().err


def test_no_flag_reads_no_no(capsys):
    for command in COMMANDS.values():
        for param in command.params:
            assert not any(o.startswith("--no-no-") for o in [*param.opts, *getattr(param, "secondary_opts", [])])
