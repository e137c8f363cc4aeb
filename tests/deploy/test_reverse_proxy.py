"""The deployment recipe of docs/deployment.md, run: its nginx configuration (taken from the document,
only addresses and paths replaced) terminates TLS in front of two replicas on one PostgreSQL.

What it shows: TLS works with a real certificate chain check; requests are spread over both replicas; the
client's own X-Forwarded-For is dropped by the proxy (the gateway's --trusted-proxy believes only what
nginx wrote); a suspension made once applies behind the proxy whichever replica answers; the admin API is
not reachable through the public proxy.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import ROOT
from tests.gateway.conftest import free_port
from tests.state.test_replicas import Replica, cli, start_replica

DOC = ROOT / "docs" / "deployment.md"
CHAT = {"model": "fable-5", "messages": [{"role": "user", "content": "hello"}]}


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        pytest.fail("nginx is not installed (Debian package nginx-light; .ci/run installs it)")
    return found


def the_documented_config() -> str:
    blocks = re.findall(r"```nginx\n(.*?)```", DOC.read_text("utf-8"), re.S)
    assert len(blocks) == 1, "docs/deployment.md has one nginx block, the one this test runs"
    return str(blocks[0])


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "exportgate test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))  # fmt: skip
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


@pytest.fixture
def deployment(tmp_path: Path, state_url: str) -> Iterator[tuple[str, Path, list[Replica], str]]:
    binary = nginx_binary()
    replicas = [start_replica(name, tmp_path, state_url) for name in ("a", "b")]
    cert, key = certificate(tmp_path)
    port = free_port()
    site = the_documented_config()
    for placeholder, value in (("10.0.0.11:8080", replicas[0].url.removeprefix("http://")),
                               ("10.0.0.12:8080", replicas[1].url.removeprefix("http://")),
                               ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
                               ("/etc/exportgate/tls/fullchain.pem", str(cert)),
                               ("/etc/exportgate/tls/privkey.pem", str(key))):  # fmt: skip
        assert placeholder in site, placeholder
        site = site.replace(placeholder, value)
    site = re.sub(r"\n\s*server 10\.0\.0\.\d+:8080[^\n]*", "", site)  # the third replica of the example
    temp = tmp_path / "nginx"
    temp.mkdir()
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"{user}daemon off;\npid {temp}/nginx.pid;\nerror_log {temp}/error.log;\nevents {{}}\n"
                    f"http {{\naccess_log off;\nclient_body_temp_path {temp}/body;\nproxy_temp_path {temp}/proxy;\n"
                    f"fastcgi_temp_path {temp}/fastcgi;\nuwsgi_temp_path {temp}/uwsgi;\nscgi_temp_path {temp}/scgi;\n"
                    f"{site}\n}}\n")  # fmt: skip
    checked = subprocess.run([binary, "-t", "-c", str(conf), "-e", str(temp / "error.log")], capture_output=True,
                             text=True, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    proxy = subprocess.Popen([binary, "-c", str(conf), "-e", str(temp / "error.log")], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(url + "/healthz", verify=trusting(cert), timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert proxy.poll() is None and time.monotonic() < deadline, (temp / "error.log").read_text()
                time.sleep(0.1)
        yield url, cert, replicas, state_url
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
        for replica in replicas:
            replica.kill()


def test_the_documented_nginx_recipe(deployment: tuple[str, Path, list[Replica], str], tmp_path: Path):
    url, cert, replicas, state_url = deployment
    with pytest.raises(httpx.ConnectError):  # a certificate nobody trusts is refused
        httpx.get(url + "/healthz", timeout=5)
    client = httpx.Client(base_url=url, verify=trusting(cert), timeout=10)
    made = cli("accounts", "add", "ada", "--citizenship", "US", "--kyc", "verified", "--home", str(replicas[0].home),
               env={"EXPORTGATE_DATABASE_URL": state_url})  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    spoofed = {"Authorization": f"Bearer {key}", "X-Forwarded-For": "3.3.3.3"}
    answers = [client.post("/v1/chat/completions", json=CHAT, headers=spoofed) for _ in range(8)]
    # nginx replaced the client's header with the address it saw (loopback: no country): the claim of
    # 3.3.3.3 (a US address) was never believed.
    assert {a.status_code for a in answers} == {451}
    assert {a.json()["error"]["code"] for a in answers} == {"location_unknown"}
    exported = cli("audit", "export", "--audit-url", state_url, "--home", str(replicas[0].home))
    decisions = [json.loads(line) for line in exported.stdout.splitlines() if '"decision"' in line]
    decisions = [d for d in decisions if d.get("event") == "decision"]
    assert {d["client_ip"] for d in decisions} == {"127.0.0.1"}
    assert len({d["writer"] for d in decisions}) == 2  # both replicas answered
    suspended = cli("accounts", "suspend", "ada", "--note", "behind the proxy", "--home", str(replicas[1].home),
                    env={"EXPORTGATE_DATABASE_URL": state_url})  # fmt: skip
    assert suspended.returncode == 0, suspended.stderr
    time.sleep(1.0)
    for _ in range(4):
        reasons = client.post("/v1/chat/completions", json=CHAT, headers=spoofed).json()["error"]["reasons"]
        assert "account_suspended" in {r["code"] for r in reasons}
    assert client.get("/admin/v1/openapi.json").status_code == 404
    client.close()
