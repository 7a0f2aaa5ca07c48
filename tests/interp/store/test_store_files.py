"""interp.store.files: file names, the sample table (written and read back exactly), meta.json (garbled or foreign
files refused, naming the file) and check_folder (another model's or other settings' cache refused before anything
is written). Named test_store_files.py, not test_files.py: probes/tasks/files.py has a module of the same name, and
pytest imports test files by basename."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import PROMPTS

import interp
from interp.store import files


def test_names_and_indices():
    assert [files.shard_name(i) for i in (0, 12)] == ["shard_00000.safetensors", "shard_00012.safetensors"]
    assert files.extras_name(7) == "extras_00007.safetensors"
    assert [files.file_index(Path(files.shard_name(i))) for i in (0, 3, 123)] == [0, 3, 123]
    assert files.shard_rows(5, 10, 4) == 5  # given: kept
    assert files.shard_rows(None, files.SHARD_BYTES // 100, 16) == 96  # ~SHARD_BYTES in whole batches
    assert files.shard_rows(None, files.SHARD_BYTES * 2, 16) == 16  # never less than one batch


def test_sample_table_round_trip_is_exact(tmp_path):
    table = pd.DataFrame({"id": ["0", "1", "2"], "text": ["a", "é b", "c"], "label": [1, 0, 1],
                          "score": [0.5, np.nan, 2.0], "group": ["g0", "g0", None]})
    files.write_samples(tmp_path, table)
    lines = (tmp_path / files.SAMPLES).read_text(encoding="utf-8").splitlines()
    assert [json.loads(x) for x in lines] == [
        {"id": "0", "text": "a", "label": 1, "score": 0.5, "group": "g0"},
        {"id": "1", "text": "é b", "label": 0, "score": None, "group": "g0"},
        {"id": "2", "text": "c", "label": 1, "score": 2.0, "group": None},
    ]
    back = files.read_samples(tmp_path)
    assert back["text"].tolist() == ["a", "é b", "c"] and back["label"].tolist() == [1, 0, 1]
    assert files.samples_hash(back) == files.samples_hash(table)  # NaN and None both read back as null
    assert files.samples_hash(table.iloc[:2]) != files.samples_hash(table)


def test_foreign_meta_and_shards_without_meta_are_refused(tmp_path):
    (tmp_path / files.META).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match=r"is not a codi-lens activation cache \(format='something-else'\)"):
        files.read_meta(tmp_path)
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / files.shard_name(0)).write_bytes(b"")
    with pytest.raises(ValueError, match="holds shards but no meta.json"):
        files.check_folder(lone, {})
    with pytest.raises(ValueError, match="is a file, not a folder"):
        files.check_folder(lone / files.shard_name(0), {})


def test_garbled_meta_names_the_file(store):
    (store / "meta.json").write_text('{"format": "codi-lens-activation-cache", ')
    with pytest.raises(ValueError, match=r"meta\.json is not valid JSON"):
        interp.load_cache(store)


def test_out_folder_of_another_model_is_refused(tmp_path):
    models = {name: interp.load_model(name, dtype="float32", device="cpu") for name in ("tiny-gpt2", "tiny-llama")}
    out = tmp_path / "c"
    interp.cache(models["tiny-gpt2"], PROMPTS, positions=["last"], out=out, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(ValueError, match="another model"):
        interp.cache(models["tiny-llama"], PROMPTS, positions=["last"], out=out, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        interp.cache(models["tiny-gpt2"], PROMPTS[:2], positions=["last"], out=out, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
