"""Each package's public API is exactly its ``__all__`` (httpx-style check)."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "exportgate",
    "exportgate._types",
    "exportgate.errors",
    "exportgate.config",
    "exportgate.policy",
    "exportgate.geo",
    "exportgate.identity",
    "exportgate.audit",
    "exportgate.eval",
    "exportgate.classify",
    "exportgate.sim",
    "exportgate._yaml",
    "exportgate.signing",
    "exportgate.monitor",
    "exportgate.state",
    "exportgate.actions",
    "exportgate.admin",
]
#: Packages whose ``__all__`` is kept sorted, isort-style: constants, classes, then functions (the second
#: wave's packages).
SORTED = ["exportgate.state", "exportgate.actions", "exportgate.admin"]


def _isort(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("name", SORTED)
def test_all_is_sorted(name):
    names = list(importlib.import_module(name).__all__)
    assert names == sorted(names, key=_isort)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_every_public_member_defined_here(name):
    module = importlib.import_module(name)
    exported = set(module.__all__)
    own = {
        member
        for member, value in vars(module).items()
        if not member.startswith("_")
        and not isinstance(value, type(importlib))
        and str(getattr(value, "__module__", "")).startswith(name)
    }
    assert own <= exported, f"{name}: public but not in __all__: {sorted(own - exported)}"
    assert all(hasattr(module, member) for member in exported)
    assert not {m for m in exported if m.startswith("_") and m != "__version__"}


def test_errors_share_one_root():
    from exportgate import errors

    for member in errors.__all__:
        assert issubclass(getattr(errors, member), errors.ExportgateError)
