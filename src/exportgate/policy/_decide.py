"""The pure decision core: ``decide(subject, context, model, directive)``.

No I/O, no clock, no globals: the same inputs always give the same
:class:`Decision`. The gateway, ``directive explain``, the monitor and the
tests all call this one function. Rule order is documented in ``_rules``.
"""

from __future__ import annotations

from typing import Literal

from exportgate._types import Decision, Reason, ReasonCode, RequestContext, Subject

from ._directive import Directive

__all__ = ["decide"]

_SUSPENDED = Reason(ReasonCode.ACCOUNT_SUSPENDED, "account", True)


def decide(subject: Subject, context: RequestContext, model: str, directive: Directive) -> Decision:
    """Decide one request. Allowed if and only if every applicable rule passes."""
    canonical = directive.resolve_model(model)
    if canonical is None:
        return _decide_unknown(subject, context, model, directive)
    tier, checks = directive.route(canonical)
    reasons: list[Reason] | None = [_SUSPENDED] if subject.suspended else None
    for check, value in checks:
        reason = check(value, subject, context)
        if reason is not None:
            if reasons is None:
                reasons = [reason]
            else:
                reasons.append(reason)
    if reasons is None:
        if model == canonical:
            return directive.allow_decision(canonical)
        return Decision("allow", model, canonical, tier, directive.id, directive.version, ())
    return Decision("deny", model, canonical, tier, directive.id, directive.version, tuple(reasons))


def _decide_unknown(subject: Subject, context: RequestContext, model: str, directive: Directive) -> Decision:
    if directive.unknown_models == "allow":
        shadowed = directive.shadowed_model(model)
        if shadowed is not None:
            decision = decide(subject, context, shadowed, directive)
            return decision._replace(requested_model=model)
        reasons: tuple[Reason, ...] = (_SUSPENDED,) if subject.suspended else ()
        verdict: Literal["allow", "deny"] = "deny" if reasons else "allow"
        return Decision(verdict, model, None, None, directive.id, directive.version, reasons)
    reasons = (Reason(ReasonCode.UNKNOWN_MODEL, "unknown_models", model),)
    if subject.suspended:
        reasons = (_SUSPENDED, *reasons)
    return Decision("deny", model, None, None, directive.id, directive.version, reasons)
