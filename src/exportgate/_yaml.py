"""YAML read with line numbers (ruamel round-trip), shared by the directive and framework loaders."""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

from exportgate.errors import DirectiveError

__all__ = ["line_of", "load_yaml"]


def load_yaml(raw: bytes, source: str, error: type[DirectiveError] = DirectiveError) -> Any:
    """Parse YAML, keeping line information; any problem is one ``error`` naming the file and line."""
    try:
        yaml = YAML(typ="rt")
        yaml.Composer = _NoAliases
        return yaml.load(raw.decode("utf-8"))
    except _AliasFound as found:
        raise error("YAML aliases (*name) are not allowed; write the value out", file=source,
                    line=found.line) from None
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


class _AliasFound(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _NoAliases(Composer):
    """The composer, refusing an alias (``*name``, also in ``<<: *name``) where it meets one: a few hundred
    bytes of nested aliases expand to billions of nodes ("billion laughs"), and a directive needs none.
    Refused while composing, in the one pass that builds the document (a separate event pass costs time
    quadratic in the nesting of flow collections)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.parser.check_event(AliasEvent):
            raise _AliasFound(self.parser.peek_event().start_mark.line + 1)
        return super().compose_node(parent, index)


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
