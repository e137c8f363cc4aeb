"""`make run`: the gateway on the embedded defaults, ready to call.

SQLite audit trail and account store in ./.exportgate, bundled geo data, the
bundled example directive, the built-in simulator as the upstream. Creates
two sample accounts (a US person and a Chinese national) on first run,
prints how to call the gateway as each, then serves until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

from exportgate._asgi import check_listen
from exportgate._files import private_dir, private_file
from exportgate._types import KycLevel
from exportgate.cli import main
from exportgate.errors import ConflictError, ExportgateError
from exportgate.identity import AccountStore

HOME = Path(os.environ.get("EXPORTGATE_HOME", ".exportgate"))
PORT = int(os.environ.get("EXPORTGATE_PORT", "8080"))
SAMPLES = {"ada": (["US"], KycLevel.VERIFIED), "li": (["CN"], KycLevel.VERIFIED)}


def sample_keys() -> dict[str, str]:
    """The sample accounts' keys and an admin token, created once and kept in HOME/demo-keys.json (0600)."""
    saved = HOME / "demo-keys.json"
    if saved.exists():
        kept = dict(json.loads(saved.read_text()))
        if "admin" in kept:
            return kept
    store = AccountStore(HOME / "accounts.db")
    keys = {}
    for name, (citizenships, kyc) in SAMPLES.items():
        try:
            keys[name] = store.add_account(name, citizenships=citizenships, kyc=kyc)[1].secret
        except ConflictError:  # the account exists from an earlier run: give it a fresh key
            keys[name] = store.create_key(name).secret
    store.close()
    keys["admin"] = "demo-admin-" + secrets.token_hex(16)
    with private_file(saved) as handle:
        handle.write(json.dumps(keys))
    return keys


def run() -> int:
    check_listen("127.0.0.1", PORT)  # a port in use is one line, before anything is printed or made
    private_dir(HOME)
    keys = sample_keys()
    url = f"http://127.0.0.1:{PORT}"
    body = '{"model":"fable-5","messages":[{"role":"user","content":"Hello"}]}'
    print(f"""
exportgate gateway: {url}  (home {HOME}, example directive, simulator upstream)

A US person at home (allowed):
  curl -s {url}/v1/chat/completions -H 'Authorization: Bearer {keys["ada"]}' \\
       -H 'X-Forwarded-For: 3.3.3.3' -H 'Content-Type: application/json' -d '{body}'

A Chinese national in China (451, reasons us_person_required, location_not_allowed):
  curl -si {url}/v1/chat/completions -H 'Authorization: Bearer {keys["li"]}' \\
       -H 'X-Forwarded-For: 114.114.114.114' -H 'Content-Type: application/json' -d '{body}'

With the OpenAI SDK:
  OpenAI(base_url="{url}/v1", api_key="{keys["ada"]}",
         default_headers={{"X-Forwarded-For": "3.3.3.3"}}).chat.completions.create(model="fable-5", ...)

(X-Forwarded-For is believed here because loopback is a trusted proxy in this demo.)
Then: .venv/bin/exportgate audit tail --home {HOME}   |   .venv/bin/exportgate audit verify --home {HOME}
Ready: {url}/readyz   Metrics and detail (admin token):
  curl -s {url}/metrics -H 'Authorization: Bearer {keys["admin"]}'
Ctrl-C stops.
""", flush=True)
    os.environ["EXPORTGATE_DEMO_ADMIN_TOKEN"] = keys["admin"]
    os.environ.setdefault("EXPORTGATE_ADMIN_TOKEN", "$env:EXPORTGATE_DEMO_ADMIN_TOKEN")
    return main(["serve", "--home", str(HOME), "--port", str(PORT), "--trusted-proxy", "127.0.0.1/32"])


if __name__ == "__main__":
    try:
        sys.exit(run())
    except ExportgateError as exc:
        sys.exit(f"exportgate: error: {exc} (EXPORTGATE_PORT=18080 make run picks another port)")
