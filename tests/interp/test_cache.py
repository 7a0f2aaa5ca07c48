"""interp.cache: parity with Hugging Face hidden_states, position labels, dtype, early stop, bad input.

Layer convention checked here: cached layers 0..n_layers-1 equal HF `hidden_states[l]` exactly (same model, same
kernel); HF's last entry is after the final norm, so for layer n_layers we check final_norm(ours) == HF last.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import PARITY_MODELS, PROMPTS, TOL, final_norm, padded_batch, real_rows, stat_tree

import interp
from argcheck import BadArgument


class _Models(dict):
    """Registry models loaded on first use (a run without the slow tests never loads smollm2-135m)."""

    def __missing__(self, name: str):
        self[name] = interp.load_model(name, dtype="float32", device="cpu")
        return self[name]


@pytest.fixture(scope="module")
def models():
    return _Models()


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("name", PARITY_MODELS)
def test_parity_with_hf_hidden_states(models, name, side):
    m = models[name]
    c = interp.cache(m, PROMPTS, padding_side=side, progress=False)
    got = c.array()
    assert got.dtype == np.float32 and got.shape[:2] == (len(PROMPTS), m.n_layers + 1)
    ids, mask, pos_ids, lengths = padded_batch(m.tokenizer, PROMPTS, side)
    assert c.valid.sum(1).tolist() == lengths
    with torch.inference_mode():
        hs = m.model(
            input_ids=ids, attention_mask=mask, position_ids=pos_ids, output_hidden_states=True
        ).hidden_states
        norm = final_norm(m.model)
        for layer in range(m.n_layers + 1):
            for b, ref in enumerate(real_rows(hs[layer], lengths, side)):
                ours = torch.from_numpy(got[b, layer, : lengths[b]])
                if layer == m.n_layers:
                    ours = norm(ours)
                assert (ours - ref).abs().max().item() < TOL, (name, side, layer, b)
        # padding never shifts a sample: each prompt run alone, unpadded, gives the same cells (up to float32
        # reordering in another batch shape/attention kernel: 1e-5 of the layer's largest value, which reaches
        # ~1e3 in smollm2's deep layers; measured max 1.0e-3 there)
        for b, p in enumerate(PROMPTS):
            alone = m.model(**m.tokenizer([p], return_tensors="pt"), output_hidden_states=True).hidden_states
            for layer in range(m.n_layers):
                ref = alone[layer][0].numpy()
                assert np.abs(got[b, layer, : lengths[b]] - ref).max() <= 1e-5 * np.abs(ref).max() + TOL
    assert np.all(got.transpose(0, 2, 1, 3)[~c.valid] == 0)  # cells a sample does not have are zeros


def test_position_labels_and_aliases_match_full_cache(models):
    m = models["tiny-llama"]
    full = interp.cache(m, PROMPTS, progress=False)
    lengths = full.valid.sum(1)
    part = interp.cache(
        m,
        PROMPTS,
        layers=[1, 2],
        positions=["last", "tok_0", "prompt[-2]", 3],
        padding_side="left",
        progress=False,
    )
    assert part.positions == ["last", "tok_0", "prompt[-2]", "tok_3"]
    rows = np.arange(len(PROMPTS))
    np.testing.assert_allclose(
        part.sel(layer=2, position="last"), full.array()[rows, 2, lengths - 1], atol=TOL
    )
    np.testing.assert_allclose(
        part.sel(layer=1, position="prompt[-2]"), full.array()[rows, 1, lengths - 2], atol=TOL
    )
    np.testing.assert_allclose(full.sel(layer=1, position="last"), full.array()[rows, 1, lengths - 1], atol=0)
    assert part.valid[:, 3].tolist() == (lengths > 3).tolist()
    with pytest.raises(ValueError, match="no position 'tok_3'"):
        part.sel(layer=1, position="tok_3")
    short = part.sel(layer=1, position="tok_3", allow_missing=True)
    assert np.all(short[lengths <= 3] == 0) and np.all(np.abs(short[lengths > 3]).sum(1) > 0)


@pytest.mark.slow
def test_early_stop_skips_lm_head_and_later_blocks(models):
    m = models["smollm2-135m"]
    calls = {"lm_head": 0, "block_4": 0, "block_5": 0}  # layer 5 = output of block 4: block 5 must not run

    def counter(key):
        return lambda *a: calls.__setitem__(key, calls[key] + 1)

    handles = [
        m.model.lm_head.register_forward_pre_hook(counter("lm_head")),
        m.model.model.layers[4].register_forward_pre_hook(counter("block_4")),
        m.model.model.layers[5].register_forward_pre_hook(counter("block_5")),
    ]
    try:
        c = interp.cache(m, PROMPTS[:2], layers=[2, 5], positions=["last"], progress=False)
    finally:
        for h in handles:
            h.remove()
    assert calls == {"lm_head": 0, "block_4": 1, "block_5": 0}
    full = interp.cache(m, PROMPTS[:2], layers=[5], positions=["last"], progress=False)
    np.testing.assert_array_equal(c.sel(layer=5, position="last"), full.sel(layer=5, position="last"))


def test_bf16_model_gives_float32_numpy_everywhere(tmp_path):
    m = interp.load_model("tiny-llama", dtype="bfloat16", device="cpu")
    c = interp.cache(m, PROMPTS, progress=False)
    assert c.meta["dtype"] == "bfloat16" and c.array().dtype == np.float32
    ref = m.model(**m.tokenizer(PROMPTS[:1], return_tensors="pt"), output_hidden_states=True).hidden_states[1]
    np.testing.assert_array_equal(c.array()[0, 1, : ref.shape[1]], ref[0].float().detach().numpy())
    d = interp.cache(m, PROMPTS, out=tmp_path / "bf", progress=False)
    assert d.array().dtype == np.float32 and d.sel(layer=2, position="last").dtype == np.float32
    np.testing.assert_array_equal(d.array(), c.array())


def test_raw_hf_model_with_tokenizer(models):
    m = models["tiny-gpt2"]
    a = interp.cache(m.model, PROMPTS, tokenizer=m.tokenizer, positions=["last"], progress=False)
    b = interp.cache(m, PROMPTS, positions=["last"], progress=False)
    np.testing.assert_array_equal(a.array(), b.array())
    with pytest.raises(ValueError, match="needs its tokenizer"):
        interp.cache(m.model, PROMPTS)


def test_samples_table_from_dicts(models):
    rows = [
        {"text": p, "label": i % 2, "group": f"g{i // 2}", "extra": i * 10} for i, p in enumerate(PROMPTS)
    ]
    c = interp.cache(models["tiny-gpt2"], rows, positions=["last"], progress=False)
    assert list(c.samples.columns) == ["id", "text", "label", "group", "extra"]
    assert c.labels.tolist() == [0, 1, 0, 1] and c.groups.tolist() == ["g0", "g0", "g1", "g1"]


# ---- bad input: each raises a clear error and writes nothing -------------------------------------------------

BAD = [
    (dict(prompts=[]), ValueError, "prompt list is empty"),
    (dict(prompts=["ok", 3]), TypeError, "prompt 1 is a int"),
    (dict(prompts=["a " * 600]), ValueError, "has 601 tokens but tiny-gpt2 takes at most 512"),
    (dict(layers=[0, 3]), ValueError, "this model has 2 layers, so valid layers are 0..2"),
    (dict(layers=[-1]), ValueError, "out of range"),
    (dict(positions=["first"]), ValueError, "unknown position label 'first'"),
    (dict(positions=["prompt[-0]"]), ValueError, "unknown position label"),
]


@pytest.mark.bad_input
@pytest.mark.parametrize("kwargs,err,msg", BAD, ids=[b[2][:20] for b in BAD])
def test_bad_input_raises_before_writing(models, tmp_path, kwargs, err, msg):
    kwargs = dict(kwargs)
    prompts = kwargs.pop("prompts", PROMPTS)
    out = tmp_path / "out"
    with pytest.raises(err, match=msg):
        interp.cache(models["tiny-gpt2"], prompts, out=out, progress=False, **kwargs)
    assert not out.exists()


def test_unknown_model_name_lists_known_ones(tmp_path):
    with pytest.raises(KeyError, match="tiny-llama"):
        interp.cache("no-such-model", PROMPTS, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---- every argument of the plain path is refused before any work, naming it; nothing is written -----------------

BAD_PROMPTS = ["The capital of France is", "Hi", "a b c"]


@pytest.fixture(scope="module")
def gpt2():
    return interp.load_model("tiny-gpt2", dtype="float32", device="cpu")


PLAIN = [  # (kwargs, error type, the argument the message names)
    (dict(layers="10"), BadArgument, "layers"),           # was read character by character: layers 1 and 0
    (dict(layers=[]), BadArgument, "layers"),
    (dict(layers=[0, 3]), BadArgument, "layers"),
    (dict(layers=[-1]), BadArgument, "layers"),
    (dict(layers=1.5), BadArgument, "layers"),
    (dict(layers=["1"]), BadArgument, "layers"),
    (dict(layers=True), BadArgument, "layers"),
    (dict(batch_size=0), BadArgument, "batch_size"),
    (dict(batch_size=-1), BadArgument, "batch_size"),     # was: meta.json marked complete with zero shards
    (dict(batch_size=True), BadArgument, "batch_size"),
    (dict(batch_size=2.5), BadArgument, "batch_size"),
    (dict(batch_size="8"), BadArgument, "batch_size"),
    (dict(out=""), BadArgument, "out"),
    (dict(out="notes.txt"), BadArgument, "out"),
    (dict(out="notes.txt/c"), BadArgument, "out"),
    (dict(prompts=None), BadArgument, "prompts"),
    (dict(prompts=[]), BadArgument, "prompts"),
    (dict(prompts=["ok", 3]), BadArgument, "prompts"),
    (dict(prompts=[{"label": 1}]), BadArgument, "prompts"),
    (dict(prompts=5), BadArgument, "prompts"),
    (dict(prompts=pd.DataFrame({"question": ["x"]})), BadArgument, "prompts"),
    (dict(prompts=["a " * 600]), BadArgument, "prompts"),
    (dict(positions=["first"]), BadArgument, "positions"),
    (dict(positions=["prompt[-0]"]), BadArgument, "positions"),
    (dict(positions=[]), BadArgument, "positions"),
    (dict(positions=None), BadArgument, "positions"),
    (dict(positions=2.5), BadArgument, "positions"),
    (dict(positions=["last", "last"]), BadArgument, "positions"),
    (dict(positions=-1), BadArgument, "positions"),
    (dict(positions=[["tok_0"]]), BadArgument, "positions"),
    (dict(dtype="float33"), BadArgument, "dtype"),         # was an AttributeError from torch
    (dict(dtype="int8"), BadArgument, "dtype"),
    (dict(dtype=torch.int32), BadArgument, "dtype"),
    (dict(shard_size=0), BadArgument, "shard_size"),      # was silently the default size
    (dict(shard_size=-5), BadArgument, "shard_size"),
    (dict(shard_size=2.0), BadArgument, "shard_size"),
    (dict(padding_side="middle"), BadArgument, "padding_side"),
    (dict(responses=["x", "y", "z"]), ValueError, "responses"),
]


@pytest.mark.bad_input
@pytest.mark.parametrize("kwargs,err,name", PLAIN, ids=[f"{k}={v!r}"[:40] for k, v in (next(iter(c[0].items()))
                                                                                      for c in PLAIN)])
def test_plain_cache_refuses_before_writing(gpt2, place, kwargs, err, name):
    kwargs = dict(kwargs)
    prompts = kwargs.pop("prompts", BAD_PROMPTS)
    kwargs.setdefault("out", "out")
    before = stat_tree(place)
    with pytest.raises(err) as info:
        interp.cache(gpt2, prompts, progress=False, **kwargs)
    assert name in str(info.value), str(info.value)
    assert stat_tree(place) == before
