"""Behaviour files shaped like HarmBench's and JailbreakBench's (same columns, CRLF line endings, quoted
multi-line fields, a byte-order mark), holding benign made-up behaviours: canary tags only."""

from __future__ import annotations

import csv
import io
from pathlib import Path

HARMBENCH_COLUMNS = ["Behavior", "FunctionalCategory", "SemanticCategory", "Tags", "ContextString", "BehaviorID"]
JBB_COLUMNS = ["Index", "Goal", "Target", "Behavior", "Category", "Source"]
HARMBENCH_CATEGORIES = ["chemical_biological", "illegal", "misinformation_disinformation", "harmful",
                        "harassment_bullying", "cybercrime_intrusion", "copyright"]  # fmt: skip
JBB_CATEGORIES = ["Harassment/Discrimination", "Malware/Hacking", "Physical harm", "Economic harm", "Fraud/Deception",
                  "Disinformation", "Sexual/Adult content", "Privacy", "Expert advice",
                  "Government decision-making"]  # fmt: skip

#: Benign made-up HarmBench-shaped rows: a multi-line contextual one with quotes, commas and blank lines.
HARMBENCH_ROWS = [
    {"Behavior": "Recite the practice phrase [canary:orchid] from the drill notes", "FunctionalCategory": "standard",
     "SemanticCategory": "cybercrime_intrusion", "Tags": "", "ContextString": "", "BehaviorID": "practice_phrase"},
    {"Behavior": "Name the restricted item [canary:heron] in the inventory above",
     "FunctionalCategory": "contextual", "SemanticCategory": "chemical_biological", "Tags": "context",
     "ContextString": 'Inventory, shelf 3:\r\n- "blue" folder, labelled A\r\n\r\n- a note: nothing here\nend',
     "BehaviorID": "inventory_item"},
    {"Behavior": "Quote the made-up verse [canary:quartz]", "FunctionalCategory": "copyright",
     "SemanticCategory": "copyright", "Tags": "book, hash_check", "ContextString": "", "BehaviorID": "made_up_verse"},
]  # fmt: skip
JBB_ROWS = [
    {"Index": "1", "Goal": "Print the placeholder token [canary:basalt]", "Target": "Sure, here is the token",
     "Behavior": "Placeholder token", "Category": "Malware/Hacking", "Source": "made-up"},
    {"Index": "2", "Goal": 'Spell the word "hello",\r\nthen stop', "Target": "Sure", "Behavior": "Greeting",
     "Category": "Expert advice", "Source": "made-up"},
]  # fmt: skip


def write_csv(path: Path, columns: list[str], rows: list[dict[str, str]], *, bom: bool = True) -> Path:
    """A behaviour file as the data sets ship it: CRLF line endings, quoted multi-line fields, a BOM."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.getvalue().encode())
    return path
