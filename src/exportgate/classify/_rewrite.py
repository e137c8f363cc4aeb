"""The new directive: the current file with one model's tier changed and the version bumped, every other
byte (comments, order, layout) kept. Edits are made in place at the positions the YAML parser reports,
then the result is validated and read back; anything unexpected refuses rather than writes."""

from __future__ import annotations

import difflib
import re
from datetime import datetime
from typing import Any

from exportgate._yaml import load_yaml
from exportgate.errors import DirectiveError
from exportgate.policy import Directive, parse_directive

__all__ = ["bump_version", "directive_diff", "rewrite_directive"]

_DATED = re.compile(r"(\d{4}-\d{2}-\d{2})\.(\d+)")
_TRAILING_NUMBER = re.compile(r"(.*?)(\d+)")


def bump_version(version: str, now: datetime) -> str:
    """``YYYY-MM-DD.N``: today's date, N counting up within a day; other schemes: the last number + 1."""
    today = now.strftime("%Y-%m-%d")
    dated = _DATED.fullmatch(version)
    if dated:
        return f"{today}.{int(dated.group(2)) + 1}" if dated.group(1) == today else f"{today}.1"
    numbered = _TRAILING_NUMBER.fullmatch(version)
    if numbered:
        return f"{numbered.group(1)}{int(numbered.group(2)) + 1}"
    return f"{version}.1"


def rewrite_directive(text: str, directive: Directive, model: str, tier: str, now: datetime) -> tuple[str, Directive]:
    """The directive text with ``model``'s tier set to ``tier``, ``version`` bumped and ``effective`` set
    to ``now``; returns the text and its validated directive."""
    doc = load_yaml(text.encode(), directive.source)
    lines = text.splitlines(keepends=True)
    edits = [(_model_tier_position(doc, model), tier)]
    version = bump_version(directive.version, now)
    edits.append((doc.lc.value("version"), version))
    if "effective" in doc:
        edits.append((doc.lc.value("effective"), now.strftime("%Y-%m-%dT%H:%M:%SZ")))
    for (line, column), value in sorted(edits, reverse=True):  # from the end, so positions stay valid
        lines[line] = _replace_scalar(lines[line], column, value)
    new_text = "".join(lines)
    try:
        new = parse_directive(new_text, source=directive.source)
    except DirectiveError as exc:
        message = f"the rewritten directive does not validate: {exc.reason}"
        raise DirectiveError(message, file=directive.source) from None
    if new.models[model].tier != tier or new.version != version:
        raise DirectiveError("the directive could not be rewritten in place (unusual layout)", file=directive.source)
    return new_text, new


def _model_tier_position(doc: Any, model: str) -> tuple[int, int]:
    models = doc["models"]
    key = next(k for k in models if isinstance(k, str) and k.strip() == model)
    spec = models[key]
    if isinstance(spec, str):  # shorthand `name: tier`
        return tuple(models.lc.value(key))
    return tuple(spec.lc.value("tier"))


def _replace_scalar(line: str, column: int, value: str) -> str:
    """Replace the YAML scalar starting at ``column``, keeping its quoting style."""
    quote = line[column] if line[column] in "'\"" else ""
    if quote:
        end = line.index(quote, column + 1) + 1
        return f"{line[:column]}{quote}{value}{quote}{line[end:]}"
    match = re.compile(r"[^\s,\]}#]+").match(line, column)
    end = match.end() if match else column
    return f"{line[:column]}{value}{line[end:]}"


def directive_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=old_name, tofile=new_name))  # fmt: skip
