"""From-scratch base models for the organisms: a small Llama (or GPT-2) trained in the CODI teacher format.

The base learns two formats of the same task, both in the text format of the organism's `CODIConfig`:
written steps `question <bot> v1 .. vk <eot> = answer <eos>` (vk is the answer; `all_steps=False` stops at v(k-1))
and the direct answer `question = answer <eos>`.
The first label of a direct row (the `=` right after the question) is not trained, so greedy decoding from the bare
question always writes steps, and `codi.evaluate`'s `no_cot` mode (question + `=`) asks for the direct answer.

    >>> from codi.organisms.tasks import pointer_chase
    >>> spec = BaseSpec(layers=1, d_model=32, heads=2)
    >>> model, tok = build_base(pointer_chase(2), spec)
    >>> sum(p.numel() for p in model.parameters()) < 50_000
    True
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from codi.batch import IGNORE, make_batch
from codi.config import CODIConfig
from codi.loop import position_ids
from codi.organisms.tasks import Task
from codi.organisms.vocab import word_tokenizer

__all__ = ["BaseSpec", "build_base", "train_base", "text_format", "teacher_accuracy"]


def text_format(all_steps: bool = True) -> dict:
    """The organisms' text format, as CODIConfig fields (teacher = question <bot> steps <eot> = answer).

    `all_steps`: the written steps end with the last one (the answer node), so a CODI student gets one thought
    per step; False writes only the intermediate values (one thought fewer; the answer is computed after <eot>).

    >>> f = text_format()
    >>> f["cot_template"], f["answer_template"], f["include_last_cot_step"]
    ('<bot> {cot} <eot>', '= {answer}', True)
    """
    return dict(prompt_template="{question}", cot_template="<bot> {cot} <eot>", answer_template="= {answer}",
                answer_marker="=", eos_separators=False, include_last_cot_step=all_steps, max_length=128)


@dataclass
class BaseSpec:
    """Architecture and training of a from-scratch base. `arch`: "llama" or "gpt2".

    >>> spec = BaseSpec(layers=1, steps=500)
    >>> spec.arch, spec.d_model, spec.to_dict()["steps"]
    ('llama', 64, 500)
    """

    arch: str = "llama"
    layers: int = 2
    d_model: int = 64
    heads: int = 4
    mlp: int = 256
    steps: int = 3000
    batch: int = 64
    lr: float = 3e-3
    warmup: int = 100
    direct_frac: float = 0.25
    seed: int = 0
    all_steps: bool = True  # written steps include the last one (see text_format)

    def to_dict(self) -> dict:
        return asdict(self)


def build_base(task: Task, spec: BaseSpec):
    """A freshly initialised HF causal LM (tied embeddings, no dropout) and the task's word tokenizer.

    >>> from codi.organisms.tasks import pointer_chase
    >>> model, tok = build_base(pointer_chase(2), BaseSpec(layers=1, d_model=32, heads=2, mlp=64))
    >>> type(model).__name__, model.config.num_hidden_layers, len(tok), model.config.vocab_size == len(tok)
    ('LlamaForCausalLM', 1, 151, True)
    """
    tok = word_tokenizer(task.words)
    common = dict(vocab_size=len(tok), tie_word_embeddings=True, pad_token_id=tok.pad_token_id,
                  eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id)
    torch.manual_seed(spec.seed)
    if spec.arch == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(hidden_size=spec.d_model, intermediate_size=spec.mlp, num_hidden_layers=spec.layers,
                          num_attention_heads=spec.heads, num_key_value_heads=spec.heads,
                          max_position_embeddings=128, rope_theta=10000.0, **common)
        model = LlamaForCausalLM(cfg)
    elif spec.arch == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        cfg = GPT2Config(n_embd=spec.d_model, n_layer=spec.layers, n_head=spec.heads, n_inner=spec.mlp,
                         n_positions=128, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **common)
        model = GPT2LMHeadModel(cfg)
    else:
        raise ValueError(f"arch={spec.arch!r}: use 'llama' or 'gpt2'.")
    return model, tok


def _rows(task: Task, tok, cfg: CODIConfig, step: int, spec: BaseSpec):
    """One training batch: fresh train-split problems, a `direct_frac` share of them without written steps."""
    probs = task.make(spec.batch, seed=10_000 * spec.seed + step, split="train")
    n_direct = int(round(spec.direct_frac * len(probs)))
    for p in probs[:n_direct]:
        p.cot = ""  # nothing written: question = answer
    b = make_batch(tok, cfg, probs)
    labels = b.teacher_labels.clone()
    first = (labels != IGNORE).float().argmax(1)
    labels[torch.arange(n_direct), first[:n_direct]] = IGNORE
    return b.teacher_ids, b.teacher_mask, labels


@torch.no_grad()
def teacher_accuracy(model, tok, cfg: CODIConfig, problems: list, direct: bool = False) -> float:
    """Greedy answer accuracy with written steps given (teacher forced) or, `direct=True`, with none.

    >>> import codi
    >>> cm, make = codi.organisms.load("pointer3")       # its base weights train with it (finetune="full")
    >>> held = make(50, seed=0)
    >>> teacher_accuracy(cm.model, cm.tokenizer, cm.config, held), round(teacher_accuracy(
    ...     cm.model, cm.tokenizer, cm.config, held, direct=True), 2)      # chance: 1/8
    (1.0, 0.12)
    """
    probs = [type(p)(**{**p.__dict__, "cot": ""}) for p in problems] if direct else problems
    b = make_batch(tok, cfg, probs)
    out = model(input_ids=b.teacher_ids, attention_mask=b.teacher_mask,
                position_ids=position_ids(b.teacher_mask, b.teacher_ids.shape[1]))
    rows = torch.arange(len(probs))
    pred = out.logits[rows, b.teacher_pos].argmax(-1)
    gold = b.teacher_ids[rows, b.teacher_pos + 1]
    return float((pred == gold).float().mean())


def train_base(task: Task, spec: BaseSpec, progress=print, eval_every: int = 250):
    """Train a base from scratch; returns (model, tokenizer, record) with the loss and accuracy curve.

    >>> from codi.organisms.tasks import pointer_chase
    >>> spec = BaseSpec(layers=1, d_model=16, heads=2, mlp=32, steps=4, batch=8)     # the shipped ones: 3000 steps
    >>> model, tok, rec = train_base(pointer_chase(2), spec, progress=lambda line: None, eval_every=2)
    >>> [row["step"] for row in rec["curve"]], sorted(rec["curve"][-1])
    ([2, 4], ['direct', 'loss', 'step', 'wall_s', 'written'])
    """
    model, tok = build_base(task, spec)
    cfg = CODIConfig(base_model="(organism base)", **text_format(spec.all_steps))
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.01, betas=(0.9, 0.98))
    held = task.make(200, seed=999_983, split="test")
    record = dict(spec=spec.to_dict(), task=task.name, curve=[])
    t0 = time.time()
    model.train()
    for step in range(spec.steps):
        lr = spec.lr * min(1.0, (step + 1) / spec.warmup) * 0.5 * (1 + math.cos(math.pi * step / spec.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        ids, mask, labels = _rows(task, tok, cfg, step, spec)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask, ids.shape[1])).logits
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                               ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % eval_every == 0 or step + 1 == spec.steps:
            model.eval()
            row = dict(step=step + 1, loss=round(loss.item(), 4), written=teacher_accuracy(model, tok, cfg, held),
                       direct=teacher_accuracy(model, tok, cfg, held, direct=True), wall_s=round(time.time() - t0, 1))
            model.train()
            record["curve"].append(row)
            progress(f"base {task.name} step {row['step']}/{spec.steps} loss {row['loss']:.3f} "
                     f"written {row['written']:.3f} direct {row['direct']:.3f} ({row['wall_s']:.0f} s)")
    model.eval()
    record["wall_s"] = round(time.time() - t0, 1)
    return model, tok, record
