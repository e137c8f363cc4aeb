"""Reports of an evidence bundle: a plain-text summary and a self-contained HTML page."""

from __future__ import annotations

import html
from typing import Any

__all__ = ["html_report", "text_report", "usage_line"]


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def text_report(bundle: dict[str, Any]) -> str:
    stats = bundle["statistics"]
    target = bundle["target"]
    lines = [
        f"evidence {bundle['created']}  target {target.get('kind')} {target.get('endpoint')}"
        f" model {target.get('model')}",
        f"repeatable when the 95% interval's lower bound >= {_pct(stats['threshold'])}",
        "",
        f"{'objective':<24} {'strategy':<14} {'succ/N':>8} {'ASR':>7} {'95% CI':>17} {'turns':>6}  repeatable",
    ]
    for cell in stats["cells"]:
        low, high = cell["ci95"]
        median = cell["turns_to_success"]["median"]
        turns = f"{median:g}" if median is not None else "-"
        lines.append(
            f"{cell['objective']:<24} {cell['strategy']:<14} {cell['successes']:>3}/{cell['trials']:<4} "
            f"{_pct(cell['asr']):>7} [{_pct(low):>6}, {_pct(high):>6}] {turns:>6}  "
            f"{'YES' if cell['repeatable'] else 'no'}"
        )
    lines += ["", "per strategy:"]
    for name, cell in stats["strategies"].items():
        low, high = cell["ci95"]
        lines.append(f"  {name:<14} {cell['successes']}/{cell['trials']}  ASR {_pct(cell['asr'])}"
                     f"  CI [{_pct(low)}, {_pct(high)}]  {'repeatable' if cell['repeatable'] else ''}")  # fmt: skip
    lines += ["per domain:"]
    for name, cell in stats.get("domains", {}).items():
        lines.append(f"  {name:<14} {cell['successes']}/{cell['trials']}  ASR {_pct(cell['asr'])}")
    if "usage" in stats:
        lines += ["", f"usage: {usage_line(stats['usage'])}"]
    return "\n".join(lines)


def usage_line(usage: dict[str, Any]) -> str:
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


def _bar(low: float, high: float, asr: float) -> str:
    return (
        '<svg width="220" height="14"><rect x="0" y="5" width="220" height="4" fill="#eee"/>'
        f'<rect x="{low * 220:.1f}" y="3" width="{max(1.0, (high - low) * 220):.1f}" height="8" fill="#9bc"/>'
        f'<rect x="{asr * 220 - 1:.1f}" y="0" width="2" height="14" fill="#024"/></svg>'
    )


def html_report(bundle: dict[str, Any], examples: int = 3) -> str:
    stats, target = bundle["statistics"], bundle["target"]
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(c['objective'])}</td><td>{esc(c['strategy'])}</td><td>{c['successes']}/{c['trials']}</td>"
        f"<td>{_pct(c['asr'])}</td><td>{_bar(c['ci95'][0], c['ci95'][1], c['asr'])} "
        f"[{_pct(c['ci95'][0])}, {_pct(c['ci95'][1])}]</td>"
        f"<td>{esc(str(c['turns_to_success']['values']))}</td><td>{'YES' if c['repeatable'] else 'no'}</td></tr>"
        for c in stats["cells"]
    )
    strategies = "".join(
        f"<tr><td>{esc(n)}</td><td>{c['successes']}/{c['trials']}</td><td>{_bar(c['ci95'][0], c['ci95'][1], c['asr'])}"
        f" {_pct(c['asr'])}</td><td>{'YES' if c['repeatable'] else 'no'}</td></tr>"
        for n, c in stats["strategies"].items()
    )
    shown = [t for t in bundle["trials"] if t["success"]][:examples]
    transcripts = "".join(
        f"<h3>{esc(t['objective_id'])} / {esc(t['strategy'])} / trial {t['trial']} (success at turn "
        f"{t['turns_to_success']})</h3><ol>"
        + "".join(
            f"<li><b>{esc(m['role'])}</b>: "
            + (esc(m["text"]) if "text" in m else f"<i>redacted, {m['length']} chars, sha256 {m['sha256'][:16]}…</i>")
            + "</li>"
            for m in t["transcript"]
        )
        + "</ol>"
        for t in shown
        if t["transcript"]
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>exportgate evidence report</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#123}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}}</style></head><body>
<h1>Evaluation evidence</h1>
<p>Target: {esc(str(target.get("kind")))} {esc(str(target.get("endpoint")))}, model {esc(str(target.get("model")))};
created {esc(bundle["created"])}; exportgate {esc(bundle["tool"]["version"])}. Repeatable means the 95% Wilson
interval's lower bound is at least {_pct(stats["threshold"])}.</p>
{f"<p>Usage: {esc(usage_line(stats['usage']))}.</p>" if "usage" in stats else ""}
<h2>Per strategy</h2><table><tr><th>strategy</th><th>successes</th><th>attack success (95% CI)</th>
<th>repeatable</th></tr>{strategies}</table>
<h2>Per objective and strategy</h2><table><tr><th>objective</th><th>strategy</th><th>succ/N</th><th>ASR</th>
<th>95% CI</th><th>turns to success</th><th>repeatable</th></tr>{rows}</table>
<h2>Successful trials (redacted)</h2>{transcripts or "<p>none</p>"}
</body></html>
"""
