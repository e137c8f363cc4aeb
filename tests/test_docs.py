"""The documentation stands on its own: no citations of files outside the repository, and every relative
link in the docs and the README reaches a file (and, for ``#anchor``, a heading) that exists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.conftest import ROOT

#: Citations of the planning files that live outside the repository (../shared/...). What a reader needs
#: from them is in docs/; cite that instead.
OUTSIDE = re.compile(r"\.\./shared|\bshared/facts\b|\bSPEC\s*§|\bSPEC\.md\b|\bARCHITECTURE\.md\b")

DOCS = sorted([*ROOT.glob("docs/*.md"), ROOT / "README.md"])

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
DOC_PATH = re.compile(r"(?<![\w./-])docs/[\w.-]+\.md\b")


def _texts(*roots: str) -> Iterator[tuple[Path, str]]:
    """Every text file under the roots (files or folders), with its text; binary files are passed over."""
    for root in roots:
        base = ROOT / root
        for path in sorted([base] if base.is_file() else base.rglob("*")):
            inside = path.relative_to(base).parts if path != base else ()
            if not path.is_file() or "__pycache__" in path.parts or any(part.startswith(".") for part in inside):
                continue  # hidden folders are a tool's own (benchmarks/.litellm-venv), not the project's text
            data = path.read_bytes()
            if b"\0" in data:
                continue
            try:
                yield path, data.decode("utf-8")
            except UnicodeDecodeError:
                continue


def _prose(text: str) -> str:
    """Markdown without its code: fenced blocks and code spans blanked, line numbers kept."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return CODE_SPAN.sub(lambda m: " " * len(m.group(0)), text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lower-cased, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text stands for the link
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings (repeats get -1, -2, ...)."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    found: set[str] = set()
    counts: dict[str, int] = {}
    for match in HEADING.finditer(text):
        base = slug(match.group(2))
        n = counts.get(base, 0)
        counts[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path: Path) -> Iterator[tuple[int, str]]:
    """The relative links of a Markdown file (outside code), with their line numbers."""
    text = _prose(path.read_text(encoding="utf-8"))
    for match in LINK.finditer(text):
        target = match.group(1)
        if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("//"):
            continue  # http:, https:, mailto: ...
        yield text.count("\n", 0, match.start()) + 1, target


def broken(path: Path, target: str) -> str | None:
    """Why a relative link from ``path`` goes nowhere, or None when it arrives."""
    file_part, _, anchor = target.partition("#")
    dest = (path.parent / unquote(file_part)).resolve() if file_part else path
    if not dest.exists():
        return "no such file"
    if not dest.is_relative_to(ROOT):
        return "outside the repository"
    if anchor and dest.suffix == ".md" and unquote(anchor).lower() not in anchors(dest):
        return f"no heading #{anchor} in {dest.relative_to(ROOT)}"
    return None


def test_nothing_cites_files_outside_the_repository():
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
        for path, text in _texts("src", "docs", "README.md")
        for number, line in enumerate(text.splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "cite the project's own docs instead:\n" + "\n".join(found)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_arrives(doc: Path):
    bad = [f"{doc.relative_to(ROOT)}:{n}: ({t}) {why}" for n, t in links(doc) if (why := broken(doc, t))]
    assert not bad, "\n".join(bad)


def test_every_docs_path_named_in_the_project_exists():
    """A doc named in prose, a docstring or a comment (``docs/gateway.md``) is a file in docs/."""
    missing = [
        f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}: {match.group(0)}"
        for path, text in _texts("src", "docs", "README.md", "tests", "benchmarks")
        for match in DOC_PATH.finditer(text)
        if not (ROOT / match.group(0)).is_file()
    ]
    assert not missing, "\n".join(missing)


def test_the_slugs_follow_github():
    assert slug("Measured (`benchmarks/audit.py`, 64 concurrent producers, ~780-byte records)") == (
        "measured-benchmarksauditpy-64-concurrent-producers-780-byte-records"
    )
    assert slug("The `signals` column (schema 2)") == "the-signals-column-schema-2"
    assert slug("Export: the regulator's view") == "export-the-regulators-view"
    assert slug("Built-in country groups") == "built-in-country-groups"
