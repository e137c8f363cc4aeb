"""Reports of an evidence bundle: a plain-text summary and a self-contained HTML page.

Both show what verification found first (a bundle that does not verify is shown under a warning), then
per cell the successes over the trials that ran, the errored trials, the rate (``n/a`` when nothing
ran), its Wilson 95% interval, the multiplicity-adjusted verdicts; the roll-ups with their clustered
intervals; and the sensitivity of the overall rate to the errors.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from exportgate._text import printable

from ._compare import Comparison, Difference
from ._evidence import SCHEMA, EvidenceBundle, EvidenceCheck, bundle_statistics

__all__ = ["comparison_text", "html_report", "text_report", "usage_line"]


def _median_turns(cell: Mapping[str, Any]) -> str:
    """The median turns to success (target calls, backtracked ones included), "-" without a success."""
    median = cell["turns_to_success"]["median"]
    return f"{median:g}" if median is not None else "-"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _statistics(bundle: EvidenceBundle) -> Mapping[str, Any]:
    """A v2 bundle's own statistics; a v1 bundle's recomputed under today's methods with its threshold."""
    return bundle.statistics if bundle.schema == SCHEMA else bundle_statistics(bundle)


def verification_lines(check: EvidenceCheck | None) -> list[str]:
    if check is None:
        return []  # a report of a bundle just made (exportgate eval run)
    if check.problems:
        return [f"WARNING, DOES NOT VERIFY: {p}" for p in check.problems]
    signer = (f"signed by trusted key {check.key_id} ({check.trusted_as})" if check.trusted
              else f"WARNING: intact, but signed by key {check.key_id}, which is not trusted")  # fmt: skip
    return [f"verified: {signer}; statistics recomputed from the trials; transcripts {check.transcripts}"]


def rules_line(stats: Mapping[str, Any]) -> str:
    rules = stats["rules"]
    counts = stats["repeatable_cells"]
    return (
        f"repeatable: at least {rules['min_trials']} trials and {rules['min_successes']} successes, and the 95% "
        f"Wilson lower bound >= {_pct(rules['threshold'])}. Family of {stats['family_size']} cells: "
        f"{counts['unadjusted']} repeatable unadjusted, {counts['holm']} after Holm, {counts['bh']} after "
        f"Benjamini-Hochberg (alpha {rules['alpha']:g}, one-sided exact binomial tests of ASR <= threshold)"
    )


def _verdict(cell: Mapping[str, Any]) -> str:
    if not cell["repeatable"]:
        return "no"
    return "YES" if cell["repeatable_holm"] else "YES (not after Holm)"


def _rollup_line(name: str, r: Mapping[str, Any]) -> str:
    low, high = r["ci95"]
    return (
        f"  {name:<16} {r['successes']}/{r['trials']} ({r['errors']} errored) ASR {_pct(r['asr'])}"
        f"  CI [{_pct(low)}, {_pct(high)}] clustered by {r['objectives']} objective(s), design effect"
        f" {r['design_effect']:.2f}{'  repeatable' if r['repeatable'] else ''}"
    )


def text_report(bundle: EvidenceBundle, check: EvidenceCheck | None = None) -> str:
    stats = _statistics(bundle)
    target = bundle.target
    lines = [
        *verification_lines(check),
        f"evidence {bundle.created}  target {target.get('kind')} {target.get('endpoint')} model {target.get('model')}",
        rules_line(stats),
        "",
        f"{'objective':<24} {'strategy':<18} {'succ/N':>8} {'err':>4} {'ASR':>7} {'95% CI':>17} {'turns':>6}"
        "  repeatable",
    ]
    for cell in stats["cells"]:
        low, high = cell["ci95"]
        turns = _median_turns(cell)
        lines.append(
            f"{cell['objective']:<24} {cell['strategy']:<18} {cell['successes']:>3}/{cell['trials']:<4} "
            f"{cell['errors']:>4} {_pct(cell['asr']):>7} [{_pct(low):>6}, {_pct(high):>6}] {turns:>6}  "
            f"{_verdict(cell)}"
        )
    lines += ["", "per strategy (intervals account for clustering by objective):"]
    lines += [_rollup_line(name, r) for name, r in stats["strategies"].items()]
    lines += ["per domain:"]
    lines += [_rollup_line(name, r) for name, r in stats.get("domains", {}).items()]
    overall = stats["overall"]
    lines += ["", _rollup_line("overall", overall).strip(), sensitivity_line(overall)]
    lines += scoring_lines(stats.get("scoring"))
    if "usage" in stats:
        lines += [f"usage: {usage_line(stats['usage'])}"]
    return "\n".join(printable(line, one_line=True) for line in lines)  # a name holds no line break


def sensitivity_line(overall: Mapping[str, Any]) -> str:
    if not overall["errors"]:
        return "sensitivity: no trial errored"
    return (
        f"sensitivity: {overall['errors']} trial(s) errored; had every one been a success, the overall ASR would"
        f" be {_pct(overall['asr_if_errors_succeeded'])} instead of {_pct(overall['asr'])}"
    )


def scoring_lines(scoring: Mapping[str, Any] | None) -> list[str]:
    """The judges' agreement, and the judge-corrected rates beside the raw ones, when the bundle has them."""
    if not scoring:
        return []
    lines = []
    agreement = scoring.get("judge_agreement")
    if agreement:
        kappa = "undefined (every vote the same)" if agreement["kappa"] is None else f"{agreement['kappa']:.3f}"
        statistic = agreement["statistic"].capitalize()
        lines.append(f"judges: {agreement['judges']} agreed on {agreement['observed_agreement']:.1%} of"
                     f" {agreement['replies']} judged replies; {statistic}'s kappa {kappa}")  # fmt: skip
    corrected = scoring.get("corrected")
    if corrected:
        lines.append(f"corrected for the judges' calibration (sensitivity {corrected['sensitivity']:g}, specificity"
                     f" {corrected['specificity']:g}; Rogan-Gladen), over trials with a judged reply:")  # fmt: skip
        rows = [("overall", corrected["overall"]), *corrected["strategies"].items()]
        lines += [f"  {name:<16} raw {_pct(r['asr'])}  corrected {_pct(r['asr_corrected'])}"
                  f"  ({r['successes']}/{r['trials']})" for name, r in rows]  # fmt: skip
    return lines


def comparison_text(comparison: Comparison) -> str:
    """A comparison as a table: per objective, A's and B's successes, B - A and Newcombe's interval."""
    x, y = comparison.strategy_a, comparison.strategy_b
    lines = ["", f"{x} (A) against {y} (B): ASR difference B - A, 95% interval by Newcombe's method 10",
             f"{'objective':<24} {'A succ/N':>9} {'B succ/N':>9} {'B - A':>8} {'95% CI':>18}"]  # fmt: skip
    for row in (*comparison.cells, comparison.pooled):
        lines.append(f"{row.label[:24]:<24} {_frac(row.a):>9} {_frac(row.b):>9} {_difference(row.difference)}")
    da, db = comparison.pooled.design_effects
    lines.append(f"the pooled row divides each side's counts by its design effect (A {da:.2f}, B {db:.2f}): trials of"
                 " one objective are not independent")  # fmt: skip
    for side, missing in (("A", comparison.only_a), ("B", comparison.only_b)):
        if missing:
            lines.append(f"only in {side} (not compared): {', '.join(missing)}")
    return "\n".join(printable(line, one_line=True) for line in lines)


def _frac(counts: tuple[int, int]) -> str:
    return f"{counts[0]}/{counts[1]}"


def _difference(d: Difference | None) -> str:
    if d is None:
        return f"{'n/a':>8} {'':>18}"
    verdict = "  differs" if d.excludes_zero() else ""
    return f"{d.estimate * 100:>+7.1f}% [{d.lower * 100:>+6.1f}%, {d.upper * 100:>+6.1f}%]{verdict}"


def usage_line(usage: Mapping[str, Any]) -> str:
    """One line of spend: target calls, tokens, and the cost when prices were given."""
    total, pricing = usage["total"], usage.get("pricing")
    line = (
        f"{total['target_calls']:,} target calls, {total['prompt_tokens']:,} prompt + "
        f"{total['completion_tokens']:,} completion tokens"
    )
    if pricing:
        per_success = total.get("cost_per_success")
        line += (
            f", cost {pricing['currency']} {total['cost']:.4f} (at {pricing['input_per_mtok']:g} in /"
            f" {pricing['output_per_mtok']:g} out per 1M tokens"
            + (f"; {per_success:.4f} per success)" if per_success is not None else ")")
        )
    return line


def _bar(low: float, high: float, asr: float | None) -> str:
    mark = "" if asr is None else f'<rect x="{asr * 220 - 1:.1f}" y="0" width="2" height="14" fill="#024"/>'
    return (
        '<svg width="220" height="14"><rect x="0" y="5" width="220" height="4" fill="#eee"/>'
        f'<rect x="{low * 220:.1f}" y="3" width="{max(1.0, (high - low) * 220):.1f}" height="8" fill="#9bc"/>'
        f"{mark}</svg>"
    )


def html_report(bundle: EvidenceBundle, check: EvidenceCheck | None = None, examples: int = 3) -> str:
    stats, target = _statistics(bundle), bundle.target
    esc = html.escape
    verified = check is not None and check.ok
    banner = "".join(f'<p class="{"ok" if verified else "warn"}">{esc(line)}</p>' for line in verification_lines(check))
    rows = "".join(
        f"<tr><td>{esc(c['objective'])}</td><td>{esc(c['strategy'])}</td><td>{c['successes']}/{c['trials']}</td>"
        f"<td>{c['errors']}</td><td>{_pct(c['asr'])}</td><td>{_bar(c['ci95'][0], c['ci95'][1], c['asr'])} "
        f"[{_pct(c['ci95'][0])}, {_pct(c['ci95'][1])}]</td><td>{c['p_value']:.3g} / {c['p_holm']:.3g}</td>"
        f"<td>{_median_turns(c)}</td><td>{esc(_verdict(c))}</td></tr>"
        for c in stats["cells"]
    )

    def rollups(section: Mapping[str, Any]) -> str:
        return "".join(
            f"<tr><td>{esc(n)}</td><td>{r['successes']}/{r['trials']}</td><td>{r['errors']}</td>"
            f"<td>{_bar(r['ci95'][0], r['ci95'][1], r['asr'])} {_pct(r['asr'])} [{_pct(r['ci95'][0])}, "
            f"{_pct(r['ci95'][1])}]</td><td>{r['design_effect']:.2f}</td><td>{'YES' if r['repeatable'] else 'no'}"
            "</td></tr>"
            for n, r in section.items()
        )

    head = ("<tr><th>{}</th><th>successes</th><th>errored</th><th>attack success (95% CI, clustered)</th>"
            "<th>design effect</th><th>repeatable</th></tr>")  # fmt: skip
    shown = [t for t in bundle.trials if t["success"]][:examples]
    transcripts = "".join(
        f"<h3>{esc(str(t['objective_id']))} / {esc(str(t['strategy']))} / trial {esc(str(t['trial']))} (success at"
        f" turn {esc(str(t['turns_to_success']))})</h3><ol>"
        + "".join(
            f"<li><b>{esc(str(m['role']))}</b>: "
            + (
                esc(str(m["text"]))
                if "text" in m
                else f"<i>redacted, {esc(str(m['length']))} chars, sha256 {esc(str(m['sha256'])[:16])}…</i>"
            )
            + "</li>"
            for m in t["transcript"]
        )
        + "</ol>"
        for t in shown
        if t["transcript"]
    )
    usage = f"<p>Usage: {esc(usage_line(stats['usage']))}.</p>" if "usage" in stats else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>exportgate evidence report</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#123}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}}
.warn{{background:#fdd;padding:6px;font-weight:bold}}
.ok{{background:#dfd;padding:6px}}</style></head><body>
<h1>Evaluation evidence</h1>
{banner}
<p>Target: {esc(str(target.get("kind")))} {esc(str(target.get("endpoint")))}, model {esc(str(target.get("model")))};
created {esc(bundle.created)}; exportgate {esc(str(bundle.tool.get("version")))}; schema {esc(bundle.schema)}.</p>
<p>{esc(rules_line(stats))}.</p>
<p>{esc(sensitivity_line(stats["overall"]))}.</p>
{"".join(f"<p>{esc(line)}</p>" for line in scoring_lines(stats.get("scoring")))}
{usage}
<h2>Per strategy</h2><table>{head.format("strategy")}{rollups(stats["strategies"])}</table>
<h2>Per domain</h2><table>{head.format("domain")}{rollups(stats.get("domains", {}))}</table>
<h2>Overall</h2><table>{head.format("")}{rollups({"overall": stats["overall"]})}</table>
<h2>Per objective and strategy</h2><table><tr><th>objective</th><th>strategy</th><th>succ/N</th><th>errored</th>
<th>ASR</th><th>95% CI (Wilson)</th><th>p / p Holm</th><th>median turns to success</th>
<th>repeatable</th></tr>{rows}</table>
<h2>Successful trials (redacted)</h2>{transcripts or "<p>none</p>"}
</body></html>
"""
