"""Child process for the SIGKILL test: appends strictly from several threads and
prints every acknowledged (request id, seq) as soon as ``append`` returns."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from exportgate.audit import AuditWriter, open_store
from exportgate.signing import home_signer
from tests.audit.conftest import entry


def main() -> None:
    url, home = sys.argv[1], Path(sys.argv[2])
    writer = AuditWriter(open_store(url, home), home_signer(home), home=home, checkpoint_every=40).start()
    lock = threading.Lock()

    def work(worker: int) -> None:
        i = 0
        while True:
            made = entry(worker * 1_000_000 + i)
            seq = writer.append(made)
            with lock:
                sys.stdout.write(f"{made.request_id} {seq}\n")
                sys.stdout.flush()
            i += 1

    threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(8)]
    for thread in threads:
        thread.start()
    threads[0].join()


if __name__ == "__main__":
    main()
