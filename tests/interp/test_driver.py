"""interp.driver: the one cache driver, on a hand-made batch source (every value known) and on interp.cache: the
fixed batch grid, memory and store alike, extras and sample columns, resume in the middle of a batch, the config
hash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import MANY

import interp
from interp.driver import Batch, ToHost, config_hash, run


class Counting:
    """n samples, layers [0, 1], positions [a, b], d_model 3: the value of (row, layer, position, k) is
    row * 100 + layer * 10 + position + k / 10, and position b is missing on odd rows. Records the batches asked for."""

    name, layers, labels, extra_keys = "counting", [0, 1], ["a", "b"], ("row",)
    device, dtype = torch.device("cpu"), torch.float32

    def __init__(self, n: int):
        self.samples = pd.DataFrame({"id": [str(i) for i in range(n)], "text": [f"t{i}" for i in range(n)]})
        self.meta = dict(model="counting", n_layers=1, d_model=3, config_hash="0", padding_side="left", codi=None)
        self.asked: list[tuple[int, int]] = []

    @staticmethod
    def expected(n: int) -> tuple[np.ndarray, np.ndarray]:
        r, la, p, k = np.meshgrid(np.arange(n), [0, 1], [0, 1], np.arange(3), indexing="ij")
        valid = np.stack([np.ones(n, bool), np.arange(n) % 2 == 0], 1)
        x = (r * 100 + la * 10 + p + k / 10).astype(np.float32)
        return np.where(valid[:, None, :, None], x, 0), valid

    def batch(self, lo: int, hi: int) -> Batch:
        self.asked.append((lo, hi))
        x, valid = self.expected(hi)
        return Batch(torch.from_numpy(x[lo:hi]), torch.from_numpy(valid[lo:hi]),
                     {"row": torch.arange(lo, hi)})

    def sample_columns(self, extras) -> dict[str, list]:
        return {"row_squared": (extras()["row"] ** 2).tolist()}


def test_memory_and_store_hold_the_sources_values_on_a_fixed_batch_grid(tmp_path):
    want, valid = Counting.expected(7)
    src = Counting(7)
    mem = run(src, batch_size=3, progress=False)
    assert src.asked == [(0, 3), (3, 6), (6, 7)]
    disk = run(Counting(7), batch_size=3, shard_size=2, out=tmp_path / "c", progress=False)
    for c in (mem, disk):
        np.testing.assert_array_equal(c.array(), want)
        np.testing.assert_array_equal(c.valid, valid)
        assert c.extras["row"].tolist() == list(range(7))
        assert c.samples["row_squared"].tolist() == [i * i for i in range(7)]
        assert c.layers == [0, 1] and c.positions == ["a", "b"] and c.meta["dtype"] == "float32"
    assert disk.meta["n_shards"] == 4 and interp.load_cache(tmp_path / "c").samples["row_squared"].tolist()[-1] == 36
    half = run(Counting(7), batch_size=3, dtype="float16", progress=False)
    assert half.meta["dtype"] == "float16" and np.abs(half.array() - want).max() < 0.3  # fp16 rounding of ~600


def test_resume_recomputes_only_the_batches_that_are_not_stored(tmp_path):
    run(Counting(7), batch_size=2, shard_size=4, out=tmp_path / "c", progress=False)
    meta = json.loads((tmp_path / "c" / "meta.json").read_text())
    first = {k: v for k, v in meta["checksums"].items() if k.endswith("00000.safetensors")}
    meta.update(complete=False, n_shards=None, checksums=first)
    (tmp_path / "c" / "meta.json").write_text(json.dumps(meta))  # as if killed after the first shard (rows 0-3)
    src = Counting(7)
    c = run(src, batch_size=2, shard_size=4, out=tmp_path / "c", progress=False)
    assert src.asked == [(4, 6), (6, 7)]
    np.testing.assert_array_equal(c.array(), Counting.expected(7)[0])
    again = Counting(7)
    run(again, batch_size=2, shard_size=4, out=tmp_path / "c", progress=False)  # complete: reopened, nothing run
    assert again.asked == []


def test_config_hash_ignores_run_time_switches_only():
    m = interp.load_model("tiny-llama")
    h = config_hash(m.model)
    m.model.config.output_hidden_states = not m.model.config.output_hidden_states
    m.model.config.use_cache = not m.model.config.use_cache
    assert config_hash(m.model) == h
    other = interp.load_model("tiny-llama")
    other.model.config.rope_theta = 1234.0
    assert config_hash(other.model) != h and config_hash(interp.load_model("tiny-gpt2").model) != h


def test_to_host_on_cpu_passes_each_batch_through_at_once():
    host = ToHost(torch.device("cpu"))
    x = torch.ones(2, 3)
    got = host.push(x, "valid", {"e": 1})
    assert len(got) == 1 and got[0][0] is x and got[0][1:] == ("valid", {"e": 1}) and host.flush() == []


@pytest.fixture(scope="module")
def llama():
    return interp.load_model("tiny-llama", dtype="float32", device="cpu")


SELF_KILLED = """
import os, signal, sys
import interp, interp.store as store
original = store.StoreWriter._write_shard
def write_then_die(self):
    original(self)
    if self._next_shard == 2:  # kill -9 right after the second shard (rows 0-7; batch 2 holds rows 6-8)
        os.kill(os.getpid(), signal.SIGKILL)
store.StoreWriter._write_shard = write_then_die
interp.cache(interp.load_model("tiny-llama", dtype="float32", device="cpu"), {prompts!r}, batch_size=3,
             shard_size=4, out=sys.argv[1], progress=False)
"""


def test_resume_is_exact_when_the_shard_size_is_not_a_multiple_of_the_batch_size(llama, tmp_path):
    """batch 3, shards of 4: the writer dies (SIGKILL) after rows 0-7, in the middle of batch 2. The driver keeps the
    batch grid of an uninterrupted run (it recomputes batch 2 whole and drops rows 6-7), so every row comes from the
    same batch as before and the resumed store equals an uninterrupted one, byte for byte."""
    out = tmp_path / "killed"
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(SELF_KILLED.format(prompts=MANY)))
    proc = subprocess.run([sys.executable, str(script), str(out)], env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    meta = json.loads((out / "meta.json").read_text())
    assert not meta["complete"] and sorted(meta["checksums"]) == ["shard_00000.safetensors",
                                                                   "shard_00001.safetensors"]
    resumed = interp.cache(llama, MANY, batch_size=3, shard_size=4, out=out, progress=False)
    whole = interp.cache(llama, MANY, batch_size=3, shard_size=4, out=tmp_path / "whole", progress=False)
    np.testing.assert_array_equal(resumed.array(), whole.array())
    np.testing.assert_array_equal(resumed.valid, whole.valid)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "whole").iterdir())
    for name in names:
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
