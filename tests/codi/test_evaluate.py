"""Tests for codi.evaluate: the scoring counts exactly the problems whose generated number equals the reference."""

import dataclasses

import pytest
import torch

import codi
from codi import data
from codi.batch import extract_answer
from codi.evaluate import evaluate


@pytest.fixture(scope="module")
def cm():
    torch.manual_seed(0)
    return codi.CODIModel.from_config(codi.CODIConfig(base_model="tiny-llama", num_latents=2, lora_r=4)).eval()


def test_accuracy_counts_exact_matches(cm):
    probs = data.arithmetic(6, seed=2)
    first = evaluate(cm, probs, batch_size=3, max_new_tokens=6, cot_max_new_tokens=8, progress=False)
    assert set(first) == {"codi", "no_cot", "cot"}
    # codi mode is exactly CODIModel.generate + extract_answer
    texts = cm.generate([p.question for p in probs], max_new_tokens=6).texts
    assert first["codi"]["predictions"] == [extract_answer(t, cm.config.answer_marker) for t in texts]
    # make the reference equal the model's own prediction on even problems: accuracy must be exactly that share
    for mode in ("codi", "no_cot", "cot"):
        preds = first[mode]["predictions"]
        fixed = [dataclasses.replace(p, answer=preds[i] if i % 2 == 0 and preds[i] else "123456789")
                 for i, p in enumerate(probs)]
        expect = sum(1 for i in range(len(probs)) if i % 2 == 0 and preds[i])
        res = evaluate(cm, fixed, batch_size=3, modes=(mode,), max_new_tokens=6, cot_max_new_tokens=8,
                       progress=False)
        assert res[mode]["correct"] == expect and res[mode]["accuracy"] == expect / len(probs), mode
    assert first["no_cot"]["examples"][0]["text"].startswith(cm.config.answer_marker)


def test_bad_mode_and_empty_input(cm):
    with pytest.raises(ValueError, match="modes='latent': must be one of 'codi', 'no_cot', 'cot'"):
        evaluate(cm, data.arithmetic(2), modes=("latent",))
    with pytest.raises(ValueError, match=r"problems=\[\]: must be a non-empty list"):
        evaluate(cm, [])
