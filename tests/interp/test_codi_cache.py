"""Caching CODI runs: parity with the latent loop's own hidden states, a teacher-forced forward, TransformerBridge and
nnsight; latent views; generation; store round trip; bad input.

Tolerances: the cache and the loop run the same computation on the same batch, so they agree to 1e-5 (in practice
bit for bit). An independent single forward over the whole sequence (no KV cache, no padding) and the peers'
wrappers agree to 1e-4 in float32 (other kernels and reduction orders; measured ~2e-7 on these models).
HF `hidden_states[n_layers]` is after the final norm: layer n_layers is compared as final_norm(ours) == HF last.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import torch
from helpers import stat_tree

import codi
import interp
from codi.batch import prompt_token_ids
from interp.codi_cache import codi_cache, load_codi_cache
from interp.hooks import decoder_layers
from interp.lens import final_norm
from interp.templates import Template

K = 6
PROMPTS = ["Tom has 3 bags of 4 apples. He eats 2. How many are left?", "1 + 2 = ?", "Sam has 7 coins."]
RESPONSES = ["The answer is: 10", "The answer is: 3", "The answer is: 7 coins"]


@functools.lru_cache(maxsize=None)
def _codi(base: str) -> codi.CODIModel:
    """A fresh CODI model whose LoRA B matrices are random (so the adapter really changes the base)."""
    cm = codi.CODIModel.from_config(codi.CODIConfig(base, num_latents=K, lora_r=4, lora_dropout=0.0))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in cm.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return cm.eval()


@pytest.fixture(scope="module", params=["tiny-llama", "tiny-gpt2"])
def cm(request):
    return _codi(request.param)


@pytest.fixture(scope="module")
def llama():
    """For the tests that need one architecture only (the same object as cm's tiny-llama)."""
    return _codi("tiny-llama")


@pytest.fixture(scope="module")
def forced(cm):
    recs = [
        dict(text=p, response=r, label=i % 2, group=f"g{i}")
        for i, (p, r) in enumerate(zip(PROMPTS, RESPONSES))
    ]
    return codi_cache(cm, recs, batch_size=2, progress=False)


def _max(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).max())


def test_layout_and_labels(cm, forced):
    n_q = [len(prompt_token_ids(cm.tokenizer, cm.config, p)) for p in PROMPTS]
    n_r = [len(cm.tokenizer(r, add_special_tokens=False).input_ids) for r in RESPONSES]
    assert forced.positions[: max(n_q)] == [f"q_{i}" for i in range(max(n_q))]
    assert forced.positions[max(n_q) : max(n_q) + K + 2] == ["bot", *[f"latent_{j}" for j in range(K)], "eot"]
    assert forced.positions[max(n_q) + K + 2 :] == [f"resp_{j}" for j in range(max(n_r))]
    qv = forced.valid[:, : max(n_q)].sum(1)
    rv = forced.valid[:, max(n_q) + K + 2 :].sum(1)
    assert qv.tolist() == n_q and rv.tolist() == n_r
    assert forced.layers == list(range(cm.n_layers + 1))
    assert forced.meta["codi"]["num_latents"] == K and forced.meta["codi"]["responses"] == "forced"
    assert list(forced.samples.columns[:2]) == ["id", "text"] and "response_text" in forced.samples
    assert np.all(forced.array().transpose(0, 2, 1, 3)[~forced.valid] == 0)  # cells a sample lacks are zeros


def test_positions_equal_latent_loop_hidden_states(cm, forced):
    """Cached q_*, bot, latent_*, eot, resp_* == the hidden states the loop computes with output_hidden_states."""
    with torch.inference_mode():
        run = cm.run(
            PROMPTS[:2], RESPONSES[:2], keep_hidden_states=True
        )  # first batch of the cache (batch_size=2)
    n = cm.n_layers
    norm = final_norm(cm.model)
    prompt = run.segments[0]
    for seg in run.segments:
        hs = run.hidden_states[seg.call]
        for b in range(2):
            if seg.kind == "prompt":
                n_q = int(prompt.attention_mask[b].sum()) - 1
                labels = [f"q_{i}" for i in range(n_q)] + ["bot"]
                cols = list(range(prompt.length - 1 - n_q, prompt.length))
            elif seg.kind in ("latent", "eot"):
                labels, cols = [f"latent_{seg.index}" if seg.kind == "latent" else "eot"], [seg.offset]
            else:
                m = int(seg.attention_mask[b].sum())
                labels, cols = [f"resp_{j}" for j in range(m)], [seg.offset + j for j in range(m)]
            for label, col in zip(labels, cols):
                for layer in range(n):
                    assert (
                        _max(
                            forced.sel(layer=layer, position=label, allow_missing=True)[b], hs[layer][b, col]
                        )
                        < 1e-5
                    ), (label, layer)
                last = norm(torch.from_numpy(forced.sel(layer=n, position=label, allow_missing=True)[b]))
                assert _max(last, hs[n][b, col]) < 1e-5, (label, "final norm")


def test_latent_views_are_the_loops(cm, forced):
    with torch.inference_mode():
        run = cm.run(PROMPTS, RESPONSES)
    pre, post = forced.extras["latent_pre_prj"], forced.extras["latent_post_prj"]
    assert pre.shape == post.shape == (3, K, cm.d_model)
    assert _max(pre, run.latents) < 1e-5 and _max(post, run.latent_inputs) < 1e-5
    # the thought fed back is the input of position latent_j: layer 0 there (GPT-2 adds its position embedding)
    for j in range(K):
        layer0 = forced.sel(layer=0, position=f"latent_{j}")
        if cm.config.base_model == "tiny-llama":
            assert _max(layer0, post[:, j]) < 1e-6
        else:
            assert _max(layer0, post[:, j]) > 1e-3
    # pre_prj of thought j is the final-normed last layer at the position before latent_j
    norm = final_norm(cm.model)
    before = ["bot"] + [f"latent_{j}" for j in range(K - 1)]
    for j, p in enumerate(before):
        assert _max(norm(torch.from_numpy(forced.sel(layer=cm.n_layers, position=p))), pre[:, j]) < 1e-5


def _full_forward(model, embeds: torch.Tensor):
    """One forward over a whole sequence of input embeddings (no KV cache, no padding)."""
    with torch.inference_mode():
        return model(inputs_embeds=embeds[None], output_hidden_states=True, use_cache=False).hidden_states


def _sequence(cm, b: int, latent_inputs: np.ndarray, response_ids: list[int]) -> torch.Tensor:
    emb = cm.model.get_input_embeddings()
    q = torch.tensor(prompt_token_ids(cm.tokenizer, cm.config, PROMPTS[b]))
    with torch.inference_mode():
        return torch.cat(
            [
                emb(q),
                cm.bot_embeds[None],
                torch.from_numpy(latent_inputs[b]),
                cm.eot_embeds[None],
                emb(torch.tensor(response_ids, dtype=torch.long)).reshape(-1, cm.d_model),
            ]
        )


def test_response_positions_equal_teacher_forced_forward(cm, forced):
    norm = final_norm(cm.model)
    for b in range(3):
        r = cm.tokenizer(RESPONSES[b], add_special_tokens=False).input_ids
        hs = _full_forward(cm.model, _sequence(cm, b, forced.extras["latent_post_prj"], r))
        labels = [p for p, v in zip(forced.positions, forced.valid[b]) if v]
        assert len(labels) == hs[0].shape[1]
        ours = forced.array()[b][:, forced.valid[b]]  # [layer, real positions, d]
        for layer in range(cm.n_layers):
            assert _max(ours[layer], hs[layer][0]) < 1e-4, layer
        assert _max(norm(torch.from_numpy(ours[cm.n_layers])), hs[cm.n_layers][0]) < 1e-4


def test_batch_size_does_not_change_the_cache(llama):
    cm = llama
    recs = [
        dict(text=p, response=r, label=i % 2, group=f"g{i}")
        for i, (p, r) in enumerate(zip(PROMPTS, RESPONSES))
    ]
    one = codi_cache(cm, recs, batch_size=1, progress=False)
    three = codi_cache(cm, recs, batch_size=3, progress=False)
    assert (one.valid == three.valid).all()
    assert _max(one.array(), three.array()) < 1e-5


def test_generate_stores_text_and_matches_teacher_forcing(llama):
    cm = llama
    c = codi_cache(cm, PROMPTS, generate=True, max_new_tokens=5, progress=False)
    out = cm.generate(PROMPTS, max_new_tokens=5)
    assert c.samples["generated_text"].tolist() == out.texts
    assert c.meta["codi"]["responses"] == "generated"
    assert [p for p in c.positions if p.startswith("resp_")] == [
        f"resp_{j}" for j in range(4)
    ]  # last token not fed
    ids, mask = c.extras["response_ids"], c.extras["response_mask"].astype(bool)
    for b in range(3):
        fed = [t for t, m in zip(ids[b, :4].tolist(), mask[b, :4]) if m]
        hs = _full_forward(cm.model, _sequence(cm, b, c.extras["latent_post_prj"], fed))
        ours = c.array()[b][:, c.valid[b]]
        assert ours.shape[1] == hs[0].shape[1]
        assert _max(ours[1], hs[1][0]) < 1e-4


def test_store_round_trip_keeps_latent_views_and_generated_text(tmp_path):
    cm = _codi("tiny-llama")
    mem = codi_cache(cm, PROMPTS, generate=True, max_new_tokens=4, batch_size=2, progress=False)
    disk = codi_cache(
        cm, PROMPTS, generate=True, max_new_tokens=4, out=tmp_path / "c", batch_size=2, progress=False
    )
    again = load_codi_cache(tmp_path / "c")
    for c in (disk, again):
        assert c.positions == mem.positions and (c.valid == mem.valid).all()
        assert _max(c.array(), mem.array()) == 0
        for key in ("latent_pre_prj", "latent_post_prj", "response_ids"):
            assert _max(c.extras[key], mem.extras[key]) == 0
        assert c.samples["generated_text"].tolist() == mem.samples["generated_text"].tolist()
    assert sorted(p.name for p in (tmp_path / "c").glob("extras_*")) == ["extras_00000.safetensors"]


def _bridge_rows(merged, c, b: int) -> torch.Tensor:
    return torch.cat(
        [merged.special[0:1], torch.from_numpy(c.extras["latent_post_prj"][b]), merged.special[1:2]]
    ).detach()


def _ids(cm, b: int) -> tuple[torch.Tensor, int]:
    q = prompt_token_ids(cm.tokenizer, cm.config, PROMPTS[b])
    r = cm.tokenizer(RESPONSES[b], add_special_tokens=False).input_ids
    return torch.tensor([q + [0] * (K + 2) + r]), len(q)


def test_merged_model_through_transformer_bridge(cm):
    """Cache of the merged model == TransformerBridge `blocks.{l}.hook_resid_post` on the same sequence (the
    placeholder embeddings of <bot>, the thoughts and <eot> swapped in at `hook_embed`)."""
    merged = cm.merge()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bridge = interp.to_transformer_lens(
            merged.model, merged.tokenizer
        )  # switches the module to eager attention
    c = codi_cache(merged, [dict(text=p, response=r) for p, r in zip(PROMPTS, RESPONSES)], progress=False)
    names = [f"blocks.{layer}.hook_resid_post" for layer in range(cm.n_layers)]
    for b in range(3):
        ids, start = _ids(cm, b)
        rows = _bridge_rows(merged, c, b)

        def swap(x, hook, rows=rows, start=start):
            x = x.clone()
            x[0, start : start + len(rows)] = rows.to(x.dtype)
            return x

        with torch.inference_mode(), bridge.hooks(fwd_hooks=[("hook_embed", swap)]):
            _, tl = bridge.run_with_cache(ids, names_filter=lambda n: n in names)
        ours = c.array()[b][:, c.valid[b]]
        for layer in range(1, cm.n_layers + 1):
            assert _max(ours[layer], tl[names[layer - 1]][0]) < 1e-4, layer


def _envoy(lm, model, target):
    name = next(n for n, m in model.named_modules() if m is target)
    e = lm
    for part in name.split("."):
        e = e[int(part)] if part.isdigit() else getattr(e, part)
    return e


def test_merged_model_through_nnsight(cm):
    """Cache of the merged model == nnsight's saved decoder-block outputs (embeddings edited inside the trace)."""
    merged = cm.merge()
    lm = interp.to_nnsight(merged.model, merged.tokenizer)
    c = codi_cache(merged, [dict(text=p, response=r) for p, r in zip(PROMPTS, RESPONSES)], progress=False)
    emb = _envoy(lm, merged.model, merged.model.get_input_embeddings())
    blocks = [_envoy(lm, merged.model, blk) for blk in decoder_layers(merged.model)]
    for b in range(3):
        ids, start = _ids(cm, b)
        rows = _bridge_rows(merged, c, b)
        saved = {}
        with torch.inference_mode(), lm.trace(ids):
            emb.output[0, start : start + len(rows)] = rows
            for layer, blk in enumerate(blocks):
                out = blk.output
                saved[layer + 1] = (out[0] if isinstance(out, tuple) else out).save()
        ours = c.array()[b][:, c.valid[b]]
        for layer in range(1, cm.n_layers + 1):
            assert _max(ours[layer], saved[layer][0]) < 1e-4, layer


def test_merged_and_unmerged_caches_agree(cm, forced):
    merged = cm.merge()
    recs = [
        dict(text=p, response=r, label=i % 2, group=f"g{i}")
        for i, (p, r) in enumerate(zip(PROMPTS, RESPONSES))
    ]
    c = codi_cache(merged, recs, batch_size=2, progress=False)
    assert c.meta["codi"]["merged"] and not forced.meta["codi"]["merged"]
    assert _max(c.array(), forced.array()) < 1e-4


# ------------------------------------------------------------------------------------------------ bad input
def test_latent_label_that_does_not_exist(llama):
    cm = llama
    with pytest.raises(ValueError, match=r"'latent_7' does not exist .* 6 latents \(latent_0..latent_5\)"):
        codi_cache(cm, PROMPTS, positions=["latent_7"], progress=False)
    with pytest.raises(ValueError, match="Plain-model labels"):
        codi_cache(cm, PROMPTS, positions=["last"], progress=False)


def test_prompts_missing_template_fields(llama, tmp_path):
    cm = llama
    t = Template(system="{instruction}", user="{question}")
    with pytest.raises(ValueError, match=r"'instruction' \(missing in 1 of 2 samples, e\.g\. ids \['1'\]\)"):
        codi_cache(
            cm,
            [dict(question="1+1?", instruction="Be honest."), dict(question="2+2?")],
            template=t,
            out=tmp_path / "never",
            progress=False,
        )
    assert not (tmp_path / "never").exists()  # nothing written


def test_codi_path_honours_the_plain_paths_arguments(llama, tmp_path):
    """interp.cache(codi_model, ...) takes shard_size, tokenizer, padding_side and one string as the plain path does
    (they were silently dropped, and one string raised) and writes the same store layout (plus its extras files)."""
    plain_model = interp.load_model("tiny-llama")
    plain = interp.cache(plain_model, PROMPTS, layers=[1], out=tmp_path / "plain", shard_size=2, progress=False,
                         tokenizer=plain_model.tokenizer, padding_side="left")
    c = interp.cache(llama, PROMPTS, layers=[1], out=tmp_path / "codi", shard_size=2, progress=False,
                     tokenizer=llama.tokenizer, padding_side="left")
    assert plain.meta["shard_size"] == c.meta["shard_size"] == 2 and c.meta["n_shards"] == 2
    files = {p.name for p in (tmp_path / "codi").iterdir()}
    assert files - {"extras_00000.safetensors", "extras_00001.safetensors"} == {p.name for p in
                                                                               (tmp_path / "plain").iterdir()}
    whole = interp.cache(llama, PROMPTS, layers=[1], progress=False)
    assert np.array_equal(c.array(), whole.array()) and np.array_equal(c.extras["latent_post_prj"],
                                                                       whole.extras["latent_post_prj"])
    one = interp.cache(llama, PROMPTS[0], layers=[1], progress=False)
    assert len(one) == 1 and _max(one.sel(layer=1, position="latent_2"), whole.sel(layer=1, position="latent_2")[:1]) \
        < 1e-5
    with pytest.raises(ValueError, match="left-pads every CODI prompt"):
        interp.cache(llama, PROMPTS, padding_side="right", progress=False)
    with pytest.raises(ValueError, match="its own tokenizer"):
        interp.cache(llama, PROMPTS, tokenizer=plain_model.tokenizer, progress=False)


# ---- every argument of the CODI path is refused before any work, naming it; nothing is written ------------------

BAD_PROMPTS = ["The capital of France is", "Hi", "a b c"]


@pytest.fixture(scope="module")
def small_cm():
    torch.manual_seed(0)
    return codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()


CODI = [
    (dict(layers="10"), "layers"),
    (dict(layers=[0, 9]), "layers"),
    (dict(batch_size=0), "batch_size"),
    (dict(positions=["latent_9"]), "positions"),
    (dict(positions=["last"]), "positions"),
    (dict(positions=[]), "positions"),
    (dict(padding_side="middle"), "padding_side"),
    (dict(padding_side="right"), "padding_side"),
    (dict(dtype="float33"), "dtype"),
    (dict(shard_size=0), "shard_size"),
    (dict(out=""), "out"),
    (dict(prompts=None), "prompts"),
    (dict(prompts=[3]), "prompts"),
    (dict(generate=True, max_new_tokens=1), "max_new_tokens"),
]


@pytest.mark.bad_input
@pytest.mark.parametrize("kwargs,name", CODI, ids=[f"{k}={v!r}"[:40] for k, v in (next(iter(c[0].items()))
                                                                                for c in CODI)])
def test_codi_cache_refuses_before_writing(small_cm, place, kwargs, name):
    kwargs = dict(kwargs)
    prompts = kwargs.pop("prompts", BAD_PROMPTS)
    kwargs.setdefault("out", "out")
    before = stat_tree(place)
    with pytest.raises(ValueError) as info:
        interp.cache(small_cm, prompts, progress=False, **kwargs)
    assert name in str(info.value), str(info.value)
    assert stat_tree(place) == before
