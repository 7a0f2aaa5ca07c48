"""interp.ranks: one process when nothing was launched; `Ranks.exchange` between 2 gloo processes delivers every
tensor bit for bit, whatever its dtype and shape. interp.cache under `accelerate launch`: 2 CPU processes write the
same store, file for file, as 1 process; a run whose second process is killed (SIGKILL) is completed by launching
again, and equals 1 process.

The CPU form that starts 2 processes with accelerate 1.15 is
`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2` (`--cpu --num_processes 2` starts one).
The batch size (3) does not divide the shard size (4), so batches straddle shards and the resumed run restarts in
the middle of a batch.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import codi
import interp
from interp.ranks import Ranks, launch_device

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = [{"text": f"Sample {i}: " + " ".join(f"w{(i * 7 + j) % 13}" for j in range(i % 9 + 3)), "label": i % 2}
           for i in range(23)]
QUESTIONS = [f"{i} + {i % 5} = ?" for i in range(7)]
ACCELERATE = Path(sys.executable).parent / "accelerate"
needs_launcher = pytest.mark.skipif(not ACCELERATE.exists(), reason="the accelerate launcher is not installed")

CALLS = """
import atexit, json, os, sys
from pathlib import Path
from safetensors.torch import save_file
import torch, codi, interp
out, rank = Path(sys.argv[1]), int(os.environ["RANK"])
# registered before interp sets up the process group, so it runs after codi.processes' exit handler (last in, first out)
alive = torch.distributed.is_initialized
atexit.register(lambda: (out / f"rank{rank}.exit").write_text(f"group alive at exit: {alive()}"))
prompts, questions = json.loads(Path(sys.argv[2]).read_text()), json.loads(Path(sys.argv[3]).read_text())
m = interp.load_model("tiny-llama", dtype="float32", device="cpu")
mem = interp.cache(m, prompts, batch_size=3, progress=False)
interp.cache(m, prompts, batch_size=3, shard_size=4, out=out / "plain", progress=False)
cm = codi.CODIModel.from_pretrained(sys.argv[4], device="cpu")
cmem = interp.cache(cm, questions, batch_size=2, generate=True, max_new_tokens=3, progress=False)
interp.cache(cm, questions, batch_size=2, generate=True, max_new_tokens=3, shard_size=3, out=out / "codi",
             progress=False)
arrays = dict(plain=torch.from_numpy(mem.array()), plain_valid=torch.from_numpy(mem.valid),
              codi=torch.from_numpy(cmem.array()), codi_valid=torch.from_numpy(cmem.valid),
              **{k: torch.from_numpy(v) for k, v in cmem.extras.items()})
save_file(arrays, str(out / f"rank{rank}.safetensors"))
(out / f"rank{rank}.json").write_text(json.dumps([mem.samples.to_dict("records"), cmem.samples.to_dict("records")]))
try:  # each process given other prompts: refused on every process, before any work
    interp.cache(m, prompts[rank:], batch_size=3, progress=False)
    refused = "no error"
except ValueError as err:
    refused = str(err)
(out / f"rank{rank}.refused").write_text(refused)
"""

KILLED = """
import json, os, sys, time
from pathlib import Path
import interp, interp.store as store
out, rank = Path(sys.argv[1]), int(os.environ["RANK"])
(out.parent / f"pid{rank}").write_text(str(os.getpid()))
original = store.StoreWriter._write_shard
def slow(self):
    original(self)
    time.sleep(1.0)   # time for the test to kill process 1 between shards
store.StoreWriter._write_shard = slow
m = interp.load_model("tiny-llama", dtype="float32", device="cpu")
interp.cache(m, json.loads(Path(sys.argv[2]).read_text()), batch_size=3, shard_size=4, out=out, progress=False)
"""


def _launch(args: list[str], cwd: Path, wait: bool = True):
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", *args]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    return out


def _same_files(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_one_process_when_nothing_was_launched(monkeypatch):
    for world in (None, "1", "not a number"):
        if world is None:
            monkeypatch.delenv("WORLD_SIZE", raising=False)
        else:
            monkeypatch.setenv("WORLD_SIZE", world)
        r = Ranks.current()
        assert r == Ranks(0, 1, None) and r.main and launch_device() is None
    r.check_same("inputs", {"any": 1})  # one process: nothing to compare, no collective runs
    r.check_model_device(torch.device("cpu"))
    r.barrier()
    assert r.share(5) == 5 and r.device() == torch.device("cpu")
    assert not Ranks(1, 2, "gloo").main and Ranks(1, 2, "gloo").device() == torch.device("cpu")


EXCHANGE = """
import json, os, sys
import torch
from interp.ranks import Ranks
torch.distributed.init_process_group("gloo")
r = Ranks.current()
g = torch.Generator().manual_seed(r.rank)
mine = [torch.randn(2 + r.rank, 3, generator=g).to(torch.bfloat16),    # shapes differ between processes
        torch.rand(2 + r.rank, generator=g) > 0.5, torch.arange(r.rank, 5 + 2 * r.rank)]
got = r.exchange(mine, 3, to_all=True)
sent = r.exchange(None if r.rank == 1 else mine, 3, to_all=False)      # process 1 has no batch this round
out = dict(rank=r.rank, world=r.world, backend=r.backend, share=r.share(10 + r.rank),
           got=[[t.view(torch.int16).tolist() if t.dtype == torch.bfloat16 else t.tolist() for t in ts] for ts in got],
           dtypes=[[str(t.dtype) for t in ts] for ts in got], sent=[None if ts is None else len(ts) for ts in sent])
with open(sys.argv[1] + f"/rank{r.rank}.json", "w") as f:
    json.dump(out, f)
torch.distributed.destroy_process_group()
"""


def _expected(rank: int) -> list:
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(2 + rank, 3, generator=g).to(torch.bfloat16)
    return [x.view(torch.int16).tolist(), (torch.rand(2 + rank, generator=g) > 0.5).tolist(),
            torch.arange(rank, 5 + 2 * rank).tolist()]


def test_exchange_between_two_gloo_processes_is_bit_for_bit(tmp_path):
    script = tmp_path / "exchange.py"
    script.write_text(EXCHANGE)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "WORLD_SIZE": "2",
           "MASTER_PORT": str(29500 + os.getpid() % 2000), "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path)], env={**env, "RANK": str(r)},
                              stderr=subprocess.PIPE, text=True) for r in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()[-2000:]
    for rank in range(2):
        out = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert (out["rank"], out["world"], out["backend"], out["share"]) == (rank, 2, "gloo", 10)
        assert out["got"] == [_expected(0), _expected(1)]  # every process's tensors, in rank order, exact
        assert out["dtypes"] == [["torch.bfloat16", "torch.bool", "torch.int64"]] * 2
        assert out["sent"] == ([3, None] if rank == 0 else [])  # gathered on process 0 only; None: no batch


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Prompt files, a saved CODI checkpoint (both launches load the same weights) and the 1-process stores."""
    d = tmp_path_factory.mktemp("ranks")
    (d / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    (d / "prompts.json").write_text(json.dumps(PROMPTS))
    (d / "questions.json").write_text(json.dumps(QUESTIONS))
    torch.manual_seed(0)
    codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).save_pretrained(d / "ckpt")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the launched processes (OMP_NUM_THREADS=1): the same float reductions
    try:
        m = interp.load_model("tiny-llama", dtype="float32", device="cpu")
        interp.cache(m, PROMPTS, batch_size=3, shard_size=4, out=d / "one" / "plain", progress=False)
        cm = codi.CODIModel.from_pretrained(d / "ckpt", device="cpu")
        interp.cache(cm, QUESTIONS, batch_size=2, generate=True, max_new_tokens=3, shard_size=3,
                     out=d / "one" / "codi", progress=False)
    finally:
        torch.set_num_threads(threads)
    return d


@needs_launcher
def test_two_processes_write_the_one_process_store(inputs):
    d = inputs
    (d / "script.py").write_text(textwrap.dedent(CALLS))
    (d / "two").mkdir()
    _launch([str(d / "script.py"), str(d / "two"), str(d / "prompts.json"), str(d / "questions.json"),
             str(d / "ckpt")], d)
    for kind in ("plain", "codi"):  # values, validity, extras, labels, sample table, meta: the same bytes
        _same_files(d / "one" / kind, d / "two" / kind)
    plain, codi_c = interp.load_cache(d / "one" / "plain"), interp.load_cache(d / "one" / "codi")
    assert plain.meta["n_shards"] == 6 and codi_c.meta["n_shards"] == 3 and "generated_text" in codi_c.samples
    for rank in (0, 1):  # the Python call without out=: every process returns the whole cache
        got = load_file(str(d / "two" / f"rank{rank}.safetensors"))
        np.testing.assert_array_equal(got["plain"].numpy(), plain.array())
        np.testing.assert_array_equal(got["plain_valid"].numpy(), plain.valid)
        np.testing.assert_array_equal(got["codi"].numpy(), codi_c.array())
        np.testing.assert_array_equal(got["codi_valid"].numpy(), codi_c.valid)
        for key, value in codi_c.extras.items():
            np.testing.assert_array_equal(got[key].numpy(), value)
        assert "given different inputs" in (d / "two" / f"rank{rank}.refused").read_text()
        # torn down before interpreter finalisation, where gloo's threads once aborted a finished run (exit -6)
        assert (d / "two" / f"rank{rank}.exit").read_text() == "group alive at exit: False"
        samples = json.loads((d / "two" / f"rank{rank}.json").read_text())
        assert samples[0] == plain.samples.to_dict("records") and samples[1] == codi_c.samples.to_dict("records")


@needs_launcher
def test_killed_process_then_launch_again_completes_the_store(inputs):
    d = inputs
    out = d / "killed" / "c"
    out.parent.mkdir()
    (d / "killed.py").write_text(textwrap.dedent(KILLED))
    proc = _launch([str(d / "killed.py"), str(out), str(d / "prompts.json")], d, wait=False)
    deadline = time.time() + 300
    while not (out / "shard_00000.safetensors").exists() or not (d / "killed" / "pid1").exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline, "the launched run made no progress"
        time.sleep(0.05)
    os.kill(int((d / "killed" / "pid1").read_text()), signal.SIGKILL)
    try:
        proc.communicate(timeout=120)  # the launcher stops the other process and exits with an error
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    meta = json.loads((out / "meta.json").read_text())
    assert not meta["complete"] and 1 <= len(list(out.glob("shard_*.safetensors"))) < 6
    first = (out / "shard_00000.safetensors").stat().st_mtime_ns
    # launched again, from the command line this time: resumes in the middle of batch 1 (rows 3-5, shard 1 = 4-7)
    log = _launch(["-m", "app", "cache", "--model", "tiny-llama", "--prompts", str(d / "prompts.jsonl"),
                   "--batch-size", "3", "--shard-size", "4", "--out", str(out)], d)
    assert "cached 23 prompts" in log
    assert (out / "shard_00000.safetensors").stat().st_mtime_ns == first  # kept, not recomputed
    _same_files(d / "one" / "plain", out)
    shutil.rmtree(d / "killed")
