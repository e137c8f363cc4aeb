"""`make run` until the gateway lands: the decision core at work on the example directive.

Checks the bundled example directive, then explains the decision for a few
sample people through the same CLI a user would run.
"""

from __future__ import annotations

import sys

from exportgate.cli import main

DIRECTIVE = "examples/directive.yaml"

PEOPLE = [
    (
        "US citizen, verified KYC, at home in the US",
        ["--model", "fable-5", "--citizenship", "US", "--kyc", "verified", "--ip", "3.3.3.3"],
    ),
    (
        "Chinese citizen in China (SPEC example)",
        ["--model", "fable-5", "--citizenship", "CN", "--ip", "114.114.114.114"],
    ),
    ("US citizen on Tor", ["--model", "FABLE-5", "--citizenship", "US", "--kyc", "verified", "--ip", "185.220.101.1"]),
    (
        "German citizen with a US green card, in the US",
        [
            "--model",
            "vendor/fable-5",
            "--citizenship",
            "DE",
            "--residence",
            "US",
            "--kyc",
            "verified",
            "--ip",
            "3.3.3.3",
        ],
    ),
    ("Anyone, open model", ["--model", "sonnet-4", "--citizenship", "CN", "--ip", "114.114.114.114"]),
    ("Unknown model", ["--model", "gpt-unknown", "--citizenship", "US", "--kyc", "verified", "--ip", "3.3.3.3"]),
]


def run() -> int:
    print(f"$ exportgate directive check {DIRECTIVE}", flush=True)
    status = main(["directive", "check", DIRECTIVE])
    for title, args in PEOPLE:
        print(f"\n# {title}\n$ exportgate directive explain {DIRECTIVE} {' '.join(args)}", flush=True)
        status |= main(["directive", "explain", DIRECTIVE, *args])
    return status


if __name__ == "__main__":
    sys.exit(run())
