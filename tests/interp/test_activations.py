"""interp.activations: ActivationCache selections against exact recomputation from the whole array, over one part
and over several shards; load_cache refusals (before anything is read or written)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import PROMPTS, stat_tree

import interp
from argcheck import BadArgument
from interp.activations import ActivationCache, load_cache


@pytest.fixture(scope="module")
def gpt2():
    return interp.load_model("tiny-gpt2", dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def caches(gpt2, tmp_path_factory):
    """The same labelled cache in memory (one part) and on disk in shards of 3 rows (two parts), one batch each."""
    rows = [{"text": p, "label": i % 2, "group": f"g{i // 2}"} for i, p in enumerate(PROMPTS)]
    mem = interp.cache(gpt2, rows, progress=False)
    out = tmp_path_factory.mktemp("act") / "c"
    disk = interp.cache(gpt2, rows, out=out, shard_size=3, progress=False)
    return mem, disk


def test_sel_resolves_last_and_prompt_back_per_sample_from_the_valid_mask(caches):
    for c in caches:
        whole = c.array()
        n_real = c.valid.sum(1)
        assert n_real.tolist() == [len(x) for x in interp.load_model("tiny-gpt2").tokenizer(PROMPTS)["input_ids"]]
        rows = np.arange(len(c))
        np.testing.assert_array_equal(c.sel(layer=1, position="last"), whole[rows, 1, n_real - 1])
        np.testing.assert_array_equal(c.sel(layer=2, position="prompt[-2]"), whole[rows, 2, n_real - 2])
        np.testing.assert_array_equal(c.sel(layer=0, position=3, allow_missing=True), whole[:, 0, 3] * c.valid[:, [3]])
        assert c.valid[:, 3].tolist() == [True, False, True, False]


def test_array_selection_equals_indexing_the_whole_array(caches):
    mem, disk = caches
    for c in caches:
        got = c.array(layers=[2, 0], positions=["tok_1", 0])
        np.testing.assert_array_equal(got, mem.array()[:, [2, 0]][:, :, [1, 0]])
        assert got.dtype == np.float32
    assert [p.n for p in disk.parts] == [3, 1] and len(disk) == len(mem) == len(PROMPTS)
    rows, blocks = zip(*disk.iter_parts())
    assert [r.tolist() for r in rows] == [[0, 1, 2], [3]]
    np.testing.assert_array_equal(np.concatenate(blocks), mem.array())


def test_labels_groups_and_missing_things_are_named(caches):
    mem, _ = caches
    assert mem.labels.tolist() == [0, 1, 0, 1] and mem.groups.tolist() == ["g0", "g0", "g1", "g1"]
    bare = ActivationCache(mem.layers, mem.positions, mem.samples[["id", "text"]], mem.meta, mem.parts)
    with pytest.raises(KeyError, match="no 'label' column"):
        bare.labels
    with pytest.raises(ValueError, match=r"layer 7 is not in this cache \(layers \[0, 1, 2\]\)"):
        mem.sel(layer=7, position="last")
    with pytest.raises(ValueError, match=r"'last' is not stored in this cache; it holds tok_0, tok_1, tok_2, tok_3, "
                                         r"\.\.\., tok_\d+, tok_\d+, tok_\d+\. Aliases like 'last' work only in sel"):
        mem.array(positions=["last"])
    with pytest.raises(ValueError, match=r"2 samples \(e\.g\. rows \[1, 3\]\) have no position 'tok_5'; pass "
                                         r"allow_missing=True"):
        mem.sel(layer=0, position="tok_5")


def test_summary_counts_valid_cells_and_runs_the_identity_check(caches):
    mem, disk = caches
    text = disk.summary(show=False)
    lines = text.splitlines()
    assert lines[0] == repr(disk) and "folder=" in lines[0] and "folder=" not in repr(mem)
    assert lines[1] == f"valid cells: {int(mem.valid.sum())} of {mem.valid.size}"
    assert lines[2].startswith("identity check: 2 groups with different labels")


LOADS = [("", BadArgument, "folder"), (None, BadArgument, "folder"), (7, BadArgument, "folder"),
         ("missing", BadArgument, "folder"), ("notes.txt", BadArgument, "folder"),
         ("empty", FileNotFoundError, "no meta.json")]


@pytest.mark.bad_input
@pytest.mark.parametrize("folder,err,named", LOADS, ids=[repr(x[0]) for x in LOADS])
def test_load_cache_refuses(place, folder, err, named):
    (place / "empty").mkdir()
    before = stat_tree(place)
    with pytest.raises(err, match=named):
        interp.load_cache(folder)
    assert stat_tree(place) == before


def test_load_cache_is_interp_load_cache():
    assert interp.load_cache is load_cache and interp.ActivationCache is ActivationCache
