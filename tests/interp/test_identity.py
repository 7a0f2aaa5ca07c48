"""The identity check: reproduces the seed study's broken design (label only in text after the probed positions) and
shows the warning; with the instruction before the latents the cells differ and nothing is flagged there."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import codi
import interp
import probes.tasks
from interp.codi_cache import codi_cache
from interp.identity import IdentityWarning, check_cache, compress, identity_check, summary_text
from interp.templates import Template

INSTRUCTIONS = {0: "Answer the question honestly.", 1: "Lie: give a wrong answer."}


def _pairs(n: int = 4) -> list[dict]:
    """deception-arith style samples: each problem twice (honest label 0, deceptive label 1), group = problem id."""
    out = []
    for p in codi.data.arithmetic(n, steps=2, seed=0):
        for label in (0, 1):
            answer = p.answer if label == 0 else str(int(p.answer) + 3)
            out.append(
                dict(
                    id=f"{p.id}-{label}",
                    question=p.question,
                    text=p.question,
                    label=label,
                    group=p.id,
                    instruction=INSTRUCTIONS[label],
                    response=f"The answer is: {answer}",
                )
            )
    return out


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


@pytest.fixture(scope="module")
def cm():
    cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=6, lora_r=4))
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in cm.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return cm


def test_counts_on_a_small_array():
    acts = np.random.default_rng(0).normal(size=(6, 2, 3, 4)).astype(np.float32)
    acts[1, :, :2] = acts[0, :, :2]  # group a: positions 0, 1 identical across labels
    acts[3, :, 0] = acts[2, :, 0]  # group b: only position 0
    acts[3, 1, 1] = acts[2, 1, 1] * (1 + 1e-6)  # within rtol: counts as identical at layer 1
    rep = identity_check(
        acts,
        labels=[0, 1, 0, 1, 0, 0],
        groups=["a", "a", "b", "b", "c", "c"],
        positions=["q_0", "q_1", "bot"],
        layers=[0, 1],
    )
    assert rep.n_groups == 2  # group c has one label only
    assert rep.identical.tolist() == [[2, 1, 0], [2, 2, 0]]
    assert rep.blind_positions == ["q_0"] and rep.n_blind_cells == 3
    assert "q_0" in rep.warning_text() and "AUROC 0.5" in rep.warning_text()
    assert (
        compress(["q_0", "q_1", "q_2", "bot", "latent_0", "latent_1", "eot"])
        == "q_0..q_2, bot, latent_0..latent_1, eot"
    )


def test_label_only_in_the_response_warns(cm):
    """The study's mistake, with the real task: deception-arith placement="response" keeps the instruction only in
    the teacher-forced response, so q_*, bot, every latent and eot are identical across labels, and the check says
    so, loudly."""
    task = probes.tasks.load("deception-arith", n=8, seed=0, placement="response")
    with pytest.warns(IdentityWarning, match="IDENTICAL ACTIVATIONS ACROSS LABELS"):
        c = codi_cache(cm, task, batch_size=4, progress=False)  # teacher forces each sample's `response`
    rep = check_cache(c)
    before = [p for p in c.positions if not p.startswith("resp_")]
    assert set(before) <= set(rep.blind_positions)
    assert rep.identical[:, [c.positions.index(f"latent_{j}") for j in range(6)]].min() == 4  # all 4 groups
    # response positions are blind only while the two responses of every group still share their tokens
    tok = cm.tokenizer
    recs = task.records()
    shared = min(
        _common_prefix(tok(a["response"]).input_ids, tok(b["response"]).input_ids)
        for a, b in zip(recs[::2], recs[1::2])
    )
    assert [p for p in rep.blind_positions if p.startswith("resp_")] == [f"resp_{j}" for j in range(shared)]
    lat = c.sel(layer=2, position="latent_3")
    assert np.array_equal(lat[c.labels == 0], lat[c.labels == 1])  # a probe there can only score chance
    text = summary_text(c)
    assert "WARNING" in text and "latent_0..latent_5" in text and "placement='before'" in text


def test_instruction_before_the_question_makes_latents_differ(cm):
    task = probes.tasks.load("deception-arith", n=8, seed=0, placement="before")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = codi_cache(cm, task, batch_size=4, progress=False)
    rep = check_cache(c)
    lat = [c.positions.index(f"latent_{j}") for j in range(6)]
    assert rep.identical[:, lat].max() == 0 and rep.compared[lat].tolist() == [4] * 6
    # only the question tokens the honest and lying instructions share ("Answer the following question ...")
    assert rep.blind_positions and all(p.startswith("q_") for p in rep.blind_positions)
    assert [str(w.message).split(" (")[1].split(")")[0] for w in caught if w.category is IdentityWarning] == [
        compress(rep.blind_positions)
    ]


def test_seed_study_plain_forward_warns():
    """The study's literal extraction: the last 6 positions of a plain forward over 'Q: {question}\\nA:'."""
    m = interp.load_model("tiny-gpt2")
    recs = [dict(text=f"Q: {r['question']}\nA:", label=r["label"], group=r["group"]) for r in _pairs(3)]
    c = interp.cache(m, recs, positions=[f"prompt[-{k}]" for k in range(6, 0, -1)], progress=False)
    rep = check_cache(c)
    assert rep.blind_positions == c.positions and rep.n_blind_cells == len(c.layers) * 6


def test_instruction_template_before_the_latents_makes_cells_differ(cm):
    t = Template(system="{instruction}", user="{question}", response="{response}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentityWarning)  # would raise if any position were label-blind
        c = codi_cache(cm, _pairs(), template=t, batch_size=4, progress=False)
    rep = check_cache(c)
    assert rep.blind_positions == []
    # only layer 0 (the token embedding alone) can match, where both texts happen to hold the same token there
    assert rep.blind_cells[1:].sum() == 0
    lat = [c.positions.index(f"latent_{j}") for j in range(6)]
    assert rep.identical[:, lat].max() == 0 and rep.compared[lat].tolist() == [4] * 6
    assert "WARNING" not in summary_text(c)
