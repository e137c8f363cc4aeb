"""Request ids come from the kernel's CSPRNG in blocks (no system call per request): they keep their
form, never repeat, and a forked worker never hands out its parent's."""

from __future__ import annotations

import gc
import os
import re

from exportgate.gateway._app import GC_THRESHOLD, settle_garbage_collector
from exportgate.gateway._ids import BLOCK, request_id


def test_ids_keep_their_form_and_never_repeat_across_blocks():
    ids = [request_id() for _ in range(3 * BLOCK + 7)]
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_worker_draws_its_own_block():
    request_id()  # the parent holds a partly used block
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        os.write(write, " ".join(request_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = set(os.read(read, 1 << 16).decode().split())
    os.close(read)
    parent = {request_id() for _ in range(50)}
    assert len(child) == 50 and not child & parent


def test_serving_freezes_what_start_up_built_and_collects_the_young_less_often():
    before = gc.get_threshold()
    try:
        settle_garbage_collector()
        assert gc.get_threshold() == GC_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
