#!/usr/bin/env python3
"""Verify an exportgate evidence bundle (schema exportgate.evidence/v2) with nothing but Python's standard
library and the ``openssl`` command (3.0 or later): no exportgate, no third-party package.

    python3 verify_evidence.py evidence.json --key signer.pub.pem [--transcripts evidence.transcripts.jsonl]

It checks, and prints, each of:

1. the file is the RFC 8785 (JCS) canonical form of its content, plus one newline;
2. every section's SHA-256 (over its JCS bytes) equals the manifest's;
3. the Ed25519 signature over the manifest's JCS bytes, with ``openssl pkeyutl -verify -rawin``, by the
   key given with ``--key`` (the key embedded in the bundle must be that key);
4. the plan is complete: every configured objective x strategy x trial index ran exactly once;
5. every statistic, recomputed from the trials under the rules in ``config.rules`` (Wilson intervals,
   exact binomial p-values, Holm and Benjamini-Hochberg adjustments, design-effect-adjusted roll-ups,
   usage and cost, the judges' agreement (Cohen's or Fleiss' kappa) and the judge-corrected attack
   success rates (Rogan-Gladen); see docs/evaluation.md), equals the bundle's;
6. with ``--transcripts``, the raw transcripts file's SHA-256 and every redacted reply's hash and length.

Exit status: 0 all checks pass, 1 a check fails, 2 the files cannot be read.
This file is published in exportgate's docs/ and kept identical to the one the package ships
(``exportgate evidence script``); its computations are written independently of the package's.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

SCHEMA = "exportgate.evidence/v2"
SECTIONS = ["schema", "tool", "created", "config", "target", "objectives", "trials", "statistics", "transcripts"]
Z95 = 1.959963984540054


# --- RFC 8785 ---------------------------------------------------------------------------------------


def jcs(value: Any) -> bytes:
    return _jcs(value).encode("utf-8", "surrogatepass")


def _jcs(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if abs(value) <= 2**53:
            return str(value)
        text = _number(float(value))  # a JSON number is a double: the nearest one's text
        if text != str(value) and int(float(value)) != value:
            raise ValueError(f"the integer {value} is not exact as an IEEE 754 double")
        return text
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ",".join(_jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
        return "{" + ",".join(_string(k) + ":" + _jcs(value[k]) for k in keys) + "}"
    raise TypeError(type(value).__name__)


def _string(text: str) -> str:
    special = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    parts = []
    for ch in text:
        if ch in special:
            parts.append(special[ch])
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise ValueError("a lone UTF-16 surrogate: not Unicode text (RFC 8785 refuses it)")
        elif ord(ch) < 0x20:
            parts.append(f"\\u{ord(ch):04x}")
        else:
            parts.append(ch)
    return '"' + "".join(parts) + '"'


def _number(x: float) -> str:
    """ECMAScript Number.prototype.toString (RFC 8785 section 3.2.2.3)."""
    if not math.isfinite(x):
        raise ValueError("NaN or infinity")
    if x == 0:
        return "0"
    if x < 0:
        return "-" + _number(-x)
    _, digit_tuple, exponent = Decimal(repr(x)).normalize().as_tuple()
    digits = "".join(str(d) for d in digit_tuple)
    k = len(digits)
    n = int(exponent) + k
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    return digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- statistics (docs/evaluation.md, "Statistics") --------------------------------------------------


def wilson(k: float, n: float) -> tuple[float, float]:
    if n <= 0:
        return 0.0, 1.0
    z = Z95
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k), X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    return min(1.0, sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def holm(ps: list[float]) -> list[float]:
    m = len(ps)
    order = sorted(range(m), key=lambda i: (ps[i], i))
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        out[i] = running
    return out


def bh(ps: list[float]) -> list[float]:
    m = len(ps)
    order = sorted(range(m), key=lambda i: (ps[i], i))
    out, running = [0.0] * m, 1.0
    for rank in reversed(range(m)):
        i = order[rank]
        running = min(running, m * ps[i] / (rank + 1))
        out[i] = min(1.0, running)
    return out


def deff(clusters: list[tuple[int, int]]) -> float:
    clusters = [(k, n) for k, n in clusters if n > 0]
    total, hits = sum(n for _, n in clusters), sum(k for k, _ in clusters)
    if len(clusters) < 2 or hits in (0, total):
        return 1.0
    rate, c = hits / total, len(clusters)
    robust = c / (c - 1) * sum((k - rate * n) ** 2 for k, n in clusters) / (total * total)
    return max(1.0, robust / (rate * (1 - rate) / total))


def r6(x: float) -> float:
    return round(x, 6)


def p6(x: float) -> float:
    return float(f"{x:.6g}")


def ran(trials: list[Any]) -> tuple[int, int, int]:
    """(trials that ran, errored, successes): an errored trial is no observation, never a failure."""
    errored = sum(1 for t in trials if t.get("error"))
    return len(trials) - errored, errored, sum(1 for t in trials if t["success"] and not t.get("error"))


def meets(rules: Any, n: float, k: int, low: float) -> bool:
    return bool(n >= rules["min_trials"] and k >= rules["min_successes"] and low >= rules["threshold"])


def turns_summary(trials: list[Any]) -> dict[str, Any]:
    turns = sorted(
        t["turns_to_success"]
        for t in trials
        if t["success"] and not t.get("error") and t.get("turns_to_success") is not None
    )
    iqr = None
    if len(turns) >= 2:
        q = statistics.quantiles(turns, n=4, method="inclusive")
        iqr = r6(q[2] - q[0])
    return {
        "median": statistics.median(turns) if turns else None,
        "min": turns[0] if turns else None,
        "max": turns[-1] if turns else None,
        "iqr": iqr,
        "values": turns,
    }


def cell(objective: str, strategy: str, trials: list[Any], rules: Any) -> dict[str, Any]:
    n, errors, k = ran(trials)
    low, high = wilson(k, n)
    return {
        "objective": objective,
        "strategy": strategy,
        "trials": n,
        "errors": errors,
        "successes": k,
        "asr": r6(k / n) if n else None,
        "ci95": [r6(low), r6(high)],
        "asr_if_errors_succeeded": r6((k + errors) / (n + errors)) if n + errors else None,
        "p_value": p6(upper_tail(k, n, rules["threshold"])) if n else 1.0,
        "repeatable": meets(rules, n, k, low),
        "turns_to_success": turns_summary(trials),
    }


def rollup(trials: list[Any], rules: Any) -> dict[str, Any]:
    n, errors, k = ran(trials)
    groups: dict[str, list[Any]] = {}
    for t in trials:
        groups.setdefault(t["objective_id"], []).append(t)
    clusters = [(ran(groups[o])[2], ran(groups[o])[0]) for o in sorted(groups)]
    d = deff(clusters)
    low, high = wilson(k, n)
    c_low, c_high = wilson(k / d, n / d)
    return {
        "objectives": len(groups),
        "trials": n,
        "errors": errors,
        "successes": k,
        "asr": r6(k / n) if n else None,
        "ci95": [r6(c_low), r6(c_high)],
        "ci95_independent": [r6(low), r6(high)],
        "design_effect": r6(d),
        "effective_trials": r6(n / d),
        "asr_if_errors_succeeded": r6((k + errors) / (n + errors)) if n + errors else None,
        "repeatable": meets(rules, n, k, c_low),
    }


def usage_totals(trials: list[Any], pricing: Any) -> dict[str, Any]:
    prompt = sum(t["prompt_tokens"] for t in trials)
    completion = sum(t["completion_tokens"] for t in trials)
    wins = sum(1 for t in trials if t["success"] and not t.get("error"))
    out = {
        "target_calls": sum(t["turns"] for t in trials),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "tokens_per_success": round((prompt + completion) / wins, 1) if wins else None,
    }
    if pricing is not None:
        cost = (prompt * pricing["input_per_mtok"] + completion * pricing["output_per_mtok"]) / 1_000_000
        out["cost"] = round(cost, 6)
        out["cost_per_success"] = round(cost / wins, 6) if wins else None
    return out


def agreement(rows: list[list[float]]) -> dict[str, Any] | None:
    """Judges' agreement: each judged reply's votes (score >= 0.5); Cohen's kappa for two judges, else Fleiss'."""
    rows = [row for row in rows if len(row) >= 2]
    if not rows:
        return None
    m, n = len(rows[0]), len(rows)
    if any(len(row) != m for row in rows):
        raise ValueError("replies judged by different numbers of judges")
    votes = [[s >= 0.5 for s in row] for row in rows]
    kappa: float | None
    if m == 2:
        observed = sum(v[0] == v[1] for v in votes) / n
        a, b = sum(v[0] for v in votes) / n, sum(v[1] for v in votes) / n
        chance = a * b + (1 - a) * (1 - b)
    else:
        table = [[sum(v), m - sum(v)] for v in votes]
        observed = sum(sum(c * (c - 1) for c in row) / (m * (m - 1)) for row in table) / n
        chance = sum((sum(row[j] for row in table) / (n * m)) ** 2 for j in range(2))
    kappa = None if chance >= 1.0 else round((observed - chance) / (1 - chance), 4)
    return {
        "judges": m,
        "replies": n,
        "statistic": "cohen" if m == 2 else "fleiss",
        "kappa": kappa,
        "observed_agreement": round(observed, 4),
    }


def corrected(trials: list[Any], se: float, sp: float) -> dict[str, Any]:
    """Rogan-Gladen: (p + sp - 1) / (se + sp - 1), clipped to [0, 1]; None when se + sp <= 1."""
    n = len(trials)
    k = sum(1 for t in trials if t["success"])
    raw = k / n if n else None
    fixed = None
    if raw is not None and se + sp - 1 > 0:
        fixed = round(min(1.0, max(0.0, (raw + sp - 1) / (se + sp - 1))), 6)
    return {"successes": k, "trials": n, "asr": None if raw is None else round(raw, 6), "asr_corrected": fixed}


def scoring(trials: list[Any], calibration: Any) -> dict[str, Any]:
    judged_turns = [ts for t in trials for ts in t.get("turn_scores") or [] if ts["method"] == "judge"]
    fixed = None
    se = calibration.get("sensitivity") if calibration else None
    sp = calibration.get("specificity") if calibration else None
    if calibration and se is not None and sp is not None:
        judged = [t for t in trials if t.get("error") is None
                  and any(ts["method"] == "judge" for ts in t.get("turn_scores") or [])]  # fmt: skip
        names = sorted({t["strategy"] for t in judged})
        fixed = {
            "method": "Rogan-Gladen", "sensitivity": se, "specificity": sp,
            "calibration_sha256": calibration.get("sha256"),
            "overall": corrected(judged, se, sp),
            "strategies": {s: corrected([t for t in judged if t["strategy"] == s], se, sp) for s in names},
        }  # fmt: skip
    return {"judge_agreement": agreement([ts["judges"] for ts in judged_turns]), "corrected": fixed}


def recompute(bundle: Any) -> dict[str, Any]:
    trials, rules = bundle["trials"], bundle["config"]["rules"]
    domain_of = {o["id"]: o.get("domain", "unknown") for o in bundle["objectives"]}
    cells: dict[tuple[str, str], list[Any]] = {}
    by_strategy: dict[str, list[Any]] = {}
    by_domain: dict[str, list[Any]] = {}
    for t in trials:
        cells.setdefault((t["objective_id"], t["strategy"]), []).append(t)
        by_strategy.setdefault(t["strategy"], []).append(t)
        by_domain.setdefault(domain_of.get(t["objective_id"], "unknown"), []).append(t)
    rows = [cell(o, s, cells[(o, s)], rules) for o, s in sorted(cells)]
    family = [c for c in rows if c["trials"]]
    for name, adjust in (("holm", holm), ("bh", bh)):
        for c, adjusted in zip(family, adjust([c["p_value"] for c in family]), strict=False):
            c["p_" + name] = p6(adjusted)
            c["repeatable_" + name] = c["repeatable"] and adjusted <= rules["alpha"]
    for c in rows:
        if not c["trials"]:
            c.update(p_holm=1.0, p_bh=1.0, repeatable_holm=False, repeatable_bh=False)
    pricing = bundle["config"].get("pricing")
    return {
        "rules": rules,
        "family_size": len(family),
        "repeatable_cells": {
            key: sum(1 for c in rows if c[field])
            for key, field in (("unadjusted", "repeatable"), ("holm", "repeatable_holm"), ("bh", "repeatable_bh"))
        },
        "cells": rows,
        "strategies": {s: rollup(by_strategy[s], rules) for s in sorted(by_strategy)},
        "domains": {d: rollup(by_domain[d], rules) for d in sorted(by_domain)},
        "overall": rollup(trials, rules),
        "usage": {
            "scope": "target",
            "pricing": pricing,
            "total": usage_totals(trials, pricing),
            "strategies": {s: usage_totals(by_strategy[s], pricing) for s in sorted(by_strategy)},
        },
        "scoring": scoring(trials, (bundle["config"].get("scorer") or {}).get("calibration")),
    }


def difference(stored: Any, expected: Any, where: str = "statistics") -> str | None:
    """Where two JSON values first differ (numbers compared to 1e-9), or None."""
    if isinstance(stored, dict) and isinstance(expected, dict):
        for key in sorted(set(stored) | set(expected)):
            if key not in stored or key not in expected:
                return "{}.{} {}".format(
                    where,
                    key,
                    "is missing" if key not in stored else "is not derived from the trials",
                )
            found = difference(stored[key], expected[key], where + "." + key)
            if found:
                return found
        return None
    if isinstance(stored, list) and isinstance(expected, list):
        if len(stored) != len(expected):
            return f"{where} has {len(stored)} entries, the trials give {len(expected)}"
        for i, (a, b) in enumerate(zip(stored, expected, strict=False)):
            found = difference(a, b, f"{where}[{i}]")
            if found:
                return found
        return None
    numbers = (int, float)
    if (
        isinstance(stored, numbers)
        and isinstance(expected, numbers)
        and not isinstance(stored, bool)
        and not isinstance(expected, bool)
    ):
        return (
            None
            if math.isclose(stored, expected, rel_tol=1e-9, abs_tol=1e-12)
            else f"{where} is {stored!r}, the trials give {expected!r}"
        )
    if kind(stored) != kind(expected) or stored != expected:
        return f"{where} is {stored!r}, the trials give {expected!r}"
    return None


def kind(value: Any) -> str:
    """A JSON type: true is not 1, 1 is not "1"."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


# --- the checks -------------------------------------------------------------------------------------


def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError("duplicate member " + repr(key))
        seen[key] = value
    return seen


def check_signature(bundle: Any, key_pem: str) -> str | None:
    """Verify with openssl; returns a problem or None."""
    signature = bundle["signature"]
    if not isinstance(signature, dict) or set(signature) != {"algorithm", "key_id", "public_key", "value"}:
        return "the signature must have exactly algorithm, key_id, public_key and value"
    key_der = base64.b64decode("".join(line for line in key_pem.splitlines() if line and not line.startswith("-----")))
    key_id = sha256(key_der[-32:])[:16]  # an Ed25519 SubjectPublicKeyInfo ends with the raw 32-byte key
    if signature.get("algorithm") != "Ed25519":
        return "the signature is not Ed25519"
    if signature["public_key"] != pem_of(key_der) or signature["key_id"] != key_id:
        return "the bundle is signed by key {}, not by the given key {}".format(signature["key_id"], key_id)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: os.path.join(tmp, name) for name in ("key.pem", "manifest", "signature")}
        with open(paths["key.pem"], "w") as f:
            f.write(key_pem)
        with open(paths["manifest"], "wb") as f:
            f.write(jcs(bundle["manifest"]))
        with open(paths["signature"], "wb") as f:
            f.write(base64.b64decode(signature["value"], validate=True))
        done = subprocess.run(  # noqa: S603 (a fixed argument list, no shell)
            [  # noqa: S607 (the auditor's openssl, from PATH)
                "openssl",
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                paths["key.pem"],
                "-rawin",
                "-in",
                paths["manifest"],
                "-sigfile",
                paths["signature"],
            ],
            capture_output=True,
            check=False,
            text=True,
        )
    if done.returncode != 0:
        return f"openssl: the signature does not verify ({(done.stdout + done.stderr).strip()})"
    return None


def whole(value: Any, least: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def check_types(bundle: Any) -> list[str]:
    """What the plan and the statistics read has its type and range (a string "false" is not a failure)."""
    problems = []
    rules = bundle["config"].get("rules")
    if not (
        isinstance(rules, dict)
        and set(rules) == {"threshold", "min_trials", "min_successes", "alpha"}
        and all(kind(rules[k]) == "number" for k in rules)
        and 0 < rules["threshold"] <= 1
        and 0 < rules["alpha"] < 1
        and whole(rules["min_trials"], 1)
        and whole(rules["min_successes"], 1)
    ):
        problems.append("config.rules is not a valid rule set")
    config = bundle["config"]
    if not whole(config.get("trials"), 1):
        problems.append("config.trials is not a whole number of at least 1")
    for section, key in (("objectives", "id"), ("strategies", "name")):
        names = [item.get(key) if isinstance(item, dict) else None for item in config.get(section) or []]
        if not names or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
            problems.append(f"config.{section} must list distinct {key}s")
    created = bundle.get("created")
    if not (isinstance(created, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z", created)):
        problems.append("created is not a UTC time")
    for entries, fields in ((bundle["objectives"], ("id", "domain", "severity")), (config["objectives"], ("id",))):
        if not all(
            isinstance(o, dict)
            and all(isinstance(o.get(k), str) for k in fields)
            and isinstance(o.get("sha256"), str)
            and re.fullmatch("[0-9a-f]{64}", o["sha256"])
            for o in entries
        ):
            problems.append("an objective entry lacks a text " + ", ".join(fields) + " or a SHA-256")
            break
    for n, t in enumerate(bundle["trials"]):
        wrong = None
        if not isinstance(t, dict):
            wrong = "not an object"
        elif not (isinstance(t.get("objective_id"), str) and isinstance(t.get("strategy"), str)):
            wrong = "objective_id and strategy are text"
        elif not isinstance(t.get("success"), bool):
            wrong = "success is not true or false"
        elif t.get("error") is not None and not isinstance(t.get("error"), str):
            wrong = "error is neither null nor text"
        elif not all(whole(t.get(k)) for k in ("trial", "seed", "turns", "prompt_tokens", "completion_tokens")):
            wrong = "trial, seed, turns and token counts are whole numbers of at least 0"
        elif t.get("turns_to_success") is not None and not whole(t.get("turns_to_success"), 1):
            wrong = "turns_to_success is neither null nor a whole number of at least 1"
        elif not isinstance(t.get("transcript"), list) or not all(message_ok(m) for m in t["transcript"]):
            wrong = "a transcript message is neither role and text nor role, sha256 and length"
        if wrong:
            problems.append(f"trial {n}: {wrong}")
            break
    return problems


def message_ok(m: Any) -> bool:
    if not isinstance(m, dict) or not isinstance(m.get("role"), str):
        return False
    if "text" in m:
        return set(m) == {"role", "text"} and isinstance(m["text"], str)
    return (
        set(m) == {"role", "sha256", "length"}
        and isinstance(m["sha256"], str)
        and re.fullmatch("[0-9a-f]{64}", m["sha256"]) is not None
        and whole(m["length"])
    )


def pem_of(der: bytes) -> str:
    """The one PEM form of a public key: 64-character base64 lines, LF line ends."""
    text = base64.b64encode(der).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def check_plan(bundle: Any) -> list[str]:
    config = bundle["config"]
    objectives = [o["id"] for o in config["objectives"]]
    strategies = [s["name"] for s in config["strategies"]]
    plan = {(o, s, i) for o in objectives for s in strategies for i in range(config["trials"])}
    seen = [(t["objective_id"], t["strategy"], t["trial"]) for t in bundle["trials"]]
    problems = []
    if {o["id"]: o["sha256"] for o in bundle["objectives"]} != {o["id"]: o["sha256"] for o in config["objectives"]}:
        problems.append("the objectives section does not match the configured objectives")
    if len(seen) != len(set(seen)):
        problems.append("a trial appears twice")
    if set(seen) != plan:
        problems.append(f"{len(plan - set(seen))} planned trial(s) missing, {len(set(seen) - plan)} unplanned")
    return problems


def read_limited(path: str, limit: int = 1 << 30) -> bytes:
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit >> 20} MiB")
    return data


def check_transcripts(bundle: Any, path: str) -> list[str]:
    try:
        data = read_limited(path)
    except (OSError, ValueError) as exc:
        return [f"the transcripts file cannot be read: {exc}"]
    if sha256(data) != bundle["transcripts"]["sha256"]:
        return ["the transcripts file does not match the bundle's hash"]
    raw = {}
    for line in data.splitlines():
        t = json.loads(line)
        raw[(t["objective_id"], t["strategy"], t["trial"])] = t["transcript"]
    for t in bundle["trials"]:
        messages = raw.get((t["objective_id"], t["strategy"], t["trial"]))
        if messages is None or len(messages) != len(t["transcript"]):
            return ["the transcripts file lacks trial {}/{}/{}".format(t["objective_id"], t["strategy"], t["trial"])]
        for (role, text), shown in zip(messages, t["transcript"], strict=False):
            if "sha256" in shown and (
                shown["sha256"] != sha256(text.encode("utf-8", "surrogatepass"))
                or shown["length"] != len(text)
                or shown["role"] != role
            ):
                trial = "/".join(str(t[k]) for k in ("objective_id", "strategy", "trial"))
                return [f"a reply of trial {trial} differs from the transcripts file"]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify an exportgate evidence bundle (schema v2).")
    parser.add_argument("bundle")
    parser.add_argument("--key", help="the signer's Ed25519 public key (PEM) you trust")
    parser.add_argument("--any-signer", action="store_true", help="accept the embedded key (integrity only)")
    parser.add_argument("--transcripts", help="the raw transcripts file (JSONL) to check as well")
    args = parser.parse_args(argv)
    if not args.key and not args.any_signer:
        parser.error("give --key SIGNER.pem (or --any-signer to check integrity only)")
    try:
        raw = read_limited(args.bundle)
        bundle = json.loads(raw.decode("utf-8", "surrogatepass"), object_pairs_hook=no_duplicates)
        key_pem = None
        if args.key:
            with open(args.key, encoding="ascii") as key_file:
                key_pem = key_file.read()
    except (OSError, ValueError) as exc:
        print(f"cannot read: {exc}", file=sys.stderr)
        return 2
    if not isinstance(bundle, dict) or bundle.get("schema") != SCHEMA:
        print(f"not an {SCHEMA} bundle", file=sys.stderr)
        return 2
    results = []

    def check(name: str, run: Callable[[], Sequence[str | None]]) -> None:
        try:
            problems = [p for p in run() if p]
        except Exception as exc:  # any malformed part is a failed check, never a traceback
            problems = [f"cannot be checked: the bundle is malformed ({exc!r})"[:300]]
        results.append(not problems)
        print(("ok      " if not problems else "FAILED  ") + name + "".join("\n        " + p for p in problems))

    check("canonical form (RFC 8785)", lambda: [] if raw == jcs(bundle) + b"\n" else ["the file is not canonical JSON"])
    check("section hashes", lambda: section_problems(bundle))
    found = bundle.get("signature")
    signature: dict[str, Any] = found if isinstance(found, dict) else {}
    key_id = str(signature.get("key_id"))[:32]
    if key_pem is not None:
        check("Ed25519 signature (openssl), key " + key_id, lambda: [check_signature(bundle, key_pem)])
    else:
        check(
            "Ed25519 signature (openssl), embedded key " + key_id + ", NOT pinned",
            lambda: [check_signature(bundle, str(signature.get("public_key")))],
        )
    check("types and ranges", lambda: check_types(bundle))
    check(f"plan complete ({len(bundle.get('trials') or [])} trials)", lambda: check_plan(bundle))
    check("statistics recomputed from the trials", lambda: [difference(bundle["statistics"], recompute(bundle))])
    if args.transcripts:
        check("transcripts", lambda: check_transcripts(bundle, args.transcripts))
    else:
        print("-       transcripts not checked (give --transcripts FILE)")
    print("VERIFIED" if all(results) else "NOT VERIFIED")
    return 0 if all(results) else 1


def section_problems(bundle: Any) -> list[str]:
    manifest = bundle.get("manifest")
    if not isinstance(manifest, dict):
        return ["the bundle has no manifest"]
    problems = [
        f"section {name} does not match the manifest"
        for name in SECTIONS
        if name not in bundle or manifest.get(name) != sha256(jcs(bundle[name]))
    ]
    problems += ["unknown section " + name for name in sorted(set(bundle) - set(SECTIONS) - {"manifest", "signature"})]
    problems += ["the manifest names " + repr(name) for name in sorted(set(manifest) - set(SECTIONS))]
    return problems


if __name__ == "__main__":
    sys.exit(main())
