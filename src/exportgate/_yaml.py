"""YAML read with line numbers (ruamel round-trip), shared by the directive and framework loaders."""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

from exportgate.errors import DirectiveError

__all__ = ["line_of", "load_yaml"]


def load_yaml(raw: bytes, source: str, error: type[DirectiveError] = DirectiveError) -> Any:
    """Parse YAML, keeping line information; any problem is one ``error`` naming the file and line."""
    try:
        text = raw.decode("utf-8")
        _refuse_aliases(text, source, error)
        return YAML(typ="rt").load(text)
    except UnicodeDecodeError:
        raise error("not UTF-8 text", file=source) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(filter(None, (exc.context, exc.problem))) or "invalid YAML"
        raise error(f"invalid YAML: {problem}", file=source, line=line) from None
    except YAMLError as exc:
        raise error(f"invalid YAML: {exc}", file=source) from None
    except RecursionError:
        raise error("invalid YAML: nested too deeply", file=source) from None


def _refuse_aliases(text: str, source: str, error: type[DirectiveError]) -> None:
    """Aliases (``*name``, also in ``<<: *name``) are refused before anything is built: a few hundred bytes
    of nested aliases expand to billions of nodes ("billion laughs"), and a directive needs none."""
    for event in YAML(typ="rt").parse(text):
        if isinstance(event, AliasEvent):
            raise error("YAML aliases (*name) are not allowed; write the value out", file=source,
                        line=event.start_mark.line + 1)  # fmt: skip


def line_of(node: Any, key: Any = None, default: int | None = None) -> int | None:
    """1-based line of a mapping key / sequence item, or of the node itself."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return default
    try:
        if key is None:
            return int(lc.line) + 1
        if isinstance(node, list):
            return int(lc.item(key)[0]) + 1
        return int(lc.key(key)[0]) + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return default
