"""Model organisms: tasks with per-step truth, from-scratch bases, full fine-tuning, thought distillation, and the
shipped organisms' accuracy tables (reproduced from the shipped weights)."""

from __future__ import annotations

import json

import pytest
import torch

import codi
from codi.organisms import tasks
from codi.organisms.base import BaseSpec, teacher_accuracy, text_format, train_base
from codi.organisms.recipe import ablation_accuracy, codi_from_base
from codi.organisms.train import accuracy_table

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/codi/conftest.py


# ------------------------------------------------------------------------------------------------ tasks
@pytest.mark.parametrize("task", [tasks.pointer_chase(3), tasks.pointer_chase(5, nodes=6, names=9),
                                  tasks.modular_chain(4)])
def test_values_follow_the_chain(task):
    for p in task.make(50, seed=3):
        assert p.values[-1] == int(p.answer) and len(p.values) == task.depth
        assert p.cot.split() == [str(v) for v in p.values]
        rule, v = task.mapping(p), int(p.question.split()[-1] if task.family == "pointer" else p.question.split()[0])
        for s in range(task.depth):
            v = rule[v] if task.family == "pointer" else ((v + rule[s][1]) if rule[s][0] == "+" else
                                                           (v * rule[s][1])) % task.names
            assert v == p.values[s]


def test_split_is_by_problem_and_deterministic():
    t = tasks.pointer_chase(3)
    train = {p.question for p in t.make(3000, seed=0, split="train")}
    test = [p.question for p in t.make(300, seed=1, split="test")]
    assert not train & set(test)
    assert all(tasks.is_held_out(q) for q in test)
    assert [p.question for p in t.make(5, seed=1, split="test")] == test[:5]
    assert 0.07 < sum(tasks.is_held_out(p.question) for p in t.make(2000, seed=4)) / 2000 < 0.13


@pytest.mark.parametrize("step", [1, 2, 3])
def test_pairs_differ_in_the_step_value_and_the_answer(step):
    t = tasks.pointer_chase(3)
    clean, corrupt = t.pairs(40, seed=2, step=step)
    for c, k in zip(clean, corrupt):
        assert t.mapping(c) == t.mapping(k)
        assert c.values[step - 1] != k.values[step - 1] and c.answer != k.answer
        assert str(t.follow(k, c.values[step - 1], step)) == c.answer     # the counterfactual answer


def test_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="hops=0"):
        tasks.pointer_chase(0)
    with pytest.raises(ValueError, match="split='dev'"):
        tasks.pointer_chase(2).make(3, split="dev")
    with pytest.raises(ValueError, match="step=4"):
        codi.organisms.pairs("pointer3", 2, step=4)
    with pytest.raises(ValueError, match="name='nope': must be one of 'pointer2'"):
        codi.organisms.load("nope")


# ------------------------------------------------------------------------------------------------ training
def test_tiny_base_learns_written_steps_but_not_the_direct_answer(tmp_path):
    """CI-sized organism base (about 70 s on one thread): 3 hops over 5 nodes, 2000 steps (measured here: written
    1.00, direct 0.31, chance 0.20). Over 8 nodes the base needs about 2000 steps just to leave its plateau (too
    long for CI); shorter schedules over 5 nodes stayed in it (1000 steps: written 0.59; 1500: 0.70)."""
    task = tasks.pointer_chase(3, nodes=5, names=6)
    model, tok, rec = train_base(task, BaseSpec(steps=2000, all_steps=False), progress=lambda s: None,
                                 eval_every=2000)
    cfg = codi.CODIConfig(base_model="x", **text_format(all_steps=False))
    held = task.make(300, seed=77, split="test")
    written, direct = teacher_accuracy(model, tok, cfg, held), teacher_accuracy(model, tok, cfg, held, direct=True)
    assert written >= 0.9, rec["curve"]
    assert direct <= 2 / task.n_values, rec["curve"]          # chance 1/5
    assert written - direct >= 0.5, rec["curve"]


def test_full_finetune_checkpoint_round_trip_and_latent_distill(tmp_path):
    """finetune="full" saves the whole base (no adapter) and reloads to the same outputs; the thought-distillation
    term equals its definition and refuses CoTs that do not line up with the thoughts."""
    task = tasks.pointer_chase(2, nodes=4, names=5)
    model, tok, _ = train_base(task, BaseSpec(layers=1, d_model=32, heads=2, mlp=64, steps=2), progress=lambda s: None,
                               eval_every=10)
    model.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    cm = codi_from_base(task, tmp_path / "base")
    assert cm.config.finetune == "full" and cm.config.latent_distill_weight == 1.0
    assert all(p.requires_grad for p in cm.model.parameters())
    probs = task.make(8, seed=0)
    batch = cm.make_batch(probs)
    parts = cm.loss(batch)
    teacher = cm.teacher_forward(batch)
    run = cm.run_ids(batch.prompt_ids, batch.prompt_mask, batch.response_ids, batch.response_mask,
                     keep_hidden_states=True)
    rows = torch.arange(len(batch))
    ref = []
    assert cm.config.num_latents == 2                     # one thought per hop, the last one included
    for j in range(2):
        for layer in cm.config.layers_to_distill(cm.n_layers):
            t = teacher.hidden_states[layer][rows, batch.teacher_cot[:, 0] + 1 + j]
            ref.append(torch.nn.functional.smooth_l1_loss(run.hidden_states[1 + j][layer][:, 0], t) / t.std())
    torch.testing.assert_close(parts["latent_distill"], torch.stack(ref).mean(), atol=1e-5, rtol=1e-5)
    total = parts["teacher_ce"] + parts["student_ce"] + parts["distill"] + parts["latent_distill"]
    torch.testing.assert_close(parts["total"].detach(), total, atol=1e-5, rtol=1e-5)

    folder = cm.save_pretrained(tmp_path / "codi")
    assert (folder / "model").is_dir() and not (folder / "adapter").exists()
    back = codi.CODIModel.from_pretrained(folder)
    a = cm.generate([p.question for p in probs], max_new_tokens=2, return_latents=True)
    b = back.generate([p.question for p in probs], max_new_tokens=2, return_latents=True)
    assert a.answers == b.answers
    torch.testing.assert_close(a.latent_inputs, b.latent_inputs)

    three = codi_from_base(task, tmp_path / "base", num_latents=3)
    with pytest.raises(ValueError, match="num_latents \\+ 2 = 5 tokens .* has 4"):
        three.loss(three.make_batch(probs))


# ------------------------------------------------------------------------------------------------ shipped
def test_shipped_organisms_are_listed_small_and_loadable():
    names = codi.organisms.available()
    assert {"pointer3", "pointer4"} <= set(names) and len(names) >= 3
    for name in names:
        folder = codi.organisms.folder(name)
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        assert size < 10 * 2**20, (name, size)
        meta = json.loads((folder / "organism.json").read_text())
        assert meta["task"]["depth"] == codi.organisms.task_of(name).depth
        cm, make = codi.organisms.load(name)
        depth = meta["task"]["depth"]
        assert cm.config.num_latents == (depth if meta["spec"]["base"].get("all_steps") else depth - 1)
        assert all(p.id and p.values for p in make(3, seed=0))


@pytest.mark.parametrize("name", ["pointer2", "pointer3", "pointer4"])
def test_shipped_accuracy_table_reproduces(name):
    if name not in codi.organisms.available():
        pytest.fail(f"organism {name} is not shipped")
    meta = json.loads((codi.organisms.folder(name) / "organism.json").read_text())
    cm, _ = codi.organisms.load(name)
    table = accuracy_table(cm, codi.organisms.task_of(name), n=meta["accuracy"]["n"])
    for key, want in meta["accuracy"].items():
        got = table[key]
        if isinstance(want, list):
            assert got == pytest.approx(want, abs=0.005), key
        else:
            assert got == pytest.approx(want, abs=0.005), key


def test_demo_organism_thinks_in_its_latents():
    """The issue's bar for the demo organism (pointer3), read from the shipped table (reproduced above)."""
    acc = json.loads((codi.organisms.folder("pointer3") / "organism.json").read_text())["accuracy"]
    assert acc["n"] >= 500
    assert acc["direct"] <= 2 * acc["chance"] and acc["codi_zero"] <= 2 * acc["chance"]
    assert acc["written"] >= 0.95 and acc["codi"] >= 0.90


def test_ablation_kinds_are_checked():
    cm, make = codi.organisms.load("pointer3")
    with pytest.raises(ValueError, match="kind='half'"):
        ablation_accuracy(cm, make(4), "half")
