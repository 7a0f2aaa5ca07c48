"""codi.processes: a process that set up a (1-process gloo) group and called `end_group_at_exit` ends with the group
torn down by its exit handlers, before interpreter finalisation, once although it was called twice."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import atexit, sys
from pathlib import Path
import torch, torch.distributed as dist
from codi.processes import end_group_at_exit
out = Path(sys.argv[1])
# registered first, so it runs last (atexit is last in, first out): after the teardown
atexit.register(lambda: out.write_text(f"alive at exit: {dist.is_initialized()}"))
dist.init_process_group("gloo", init_method="file://" + sys.argv[2], rank=0, world_size=1)
calls = []
original = dist.destroy_process_group
dist.destroy_process_group = lambda *a, **k: (calls.append(1), original(*a, **k))
atexit.register(lambda: print("teardowns:", len(calls)))   # runs after the teardown too
end_group_at_exit()
end_group_at_exit()
t = torch.ones(2)
dist.all_reduce(t)
print("reduced:", t.tolist())
"""


def test_the_group_is_torn_down_once_at_exit(tmp_path):
    (tmp_path / "s.py").write_text(textwrap.dedent(SCRIPT))
    res = subprocess.run([sys.executable, str(tmp_path / "s.py"), str(tmp_path / "exit.txt"), str(tmp_path / "rdv")],
                         capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    assert "reduced: [1.0, 1.0]" in res.stdout
    assert "teardowns: 1" in res.stdout
    assert (tmp_path / "exit.txt").read_text() == "alive at exit: False"
