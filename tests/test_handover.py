"""The claim file through which a uWSGI master's workers share out its records (`_handover`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Eight children forked at once claim what they all inherited; then one forked later, after the
# parent queued 50 more on one stream, claims again. Each prints what it was given.
CHILDREN = r"""
import json, os, sys
from aws_cloudwatch_logs_handler._handover import Handover

handover = Handover()
inherited = {"0/a": 1000, "0/b": 7}
read, write = os.pipe()
go_read, go_write = os.pipe()
children = []
for _ in range(8):
    pid = os.fork()
    if pid == 0:
        os.read(go_read, 1)  # all eight claim at the same moment
        os.write(write, (json.dumps(handover.claim(inherited)) + "\n").encode())
        os._exit(0)
    children.append(pid)
os.write(go_write, b"x" * 8)
for pid in children:
    os.waitpid(pid, 0)
inherited["0/a"] += 50
pid = os.fork()
if pid == 0:
    os.write(write, (json.dumps(handover.claim(inherited)) + "\n").encode())
    os._exit(0)
os.waitpid(pid, 0)
os.close(write)
sys.stdout.write(os.fdopen(read).read())
"""


def test_each_inherited_record_is_claimed_by_exactly_one_child() -> None:
    """Of eight children claiming at once, one gets each stream's records and the others none;
    a child forked after the parent queued 50 more gets exactly those 50. Five rounds: without
    the lock, a round shares the records out twice about every other time."""
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", CHILDREN],
            env={"PYTHONPATH": str(ROOT / "handler")},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        *at_once, later = [json.loads(line) for line in out.splitlines()]
        assert len(at_once) == 8
        assert sorted(claim["0/a"] for claim in at_once) == [0] * 7 + [1000]
        assert sorted(claim["0/b"] for claim in at_once) == [0] * 7 + [7]
        assert later == {"0/a": 50, "0/b": 0}
