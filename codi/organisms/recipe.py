"""Turn a from-scratch base into a CODI organism with the ordinary `codi.train`, and measure its thoughts.

Recipe (what made the thoughts necessary here, see `docs/organisms.md`): the base is trained in the exact teacher
format `question <bot> v1 .. vk <eot> = answer`, so the student `question [bot] t1 .. tk [eot] = answer` puts its
k thoughts where the teacher writes its k step values, at the same positions. The CODI rows
<bot>/<eot> start as the base's own `<bot>`/`<eot>` embeddings, every base weight trains (`finetune="full"`), and
the usual CODI loss (teacher CE + student CE + distillation at the token before the answer) gets one more term:
`latent_distill_weight=1`, the same distillation at every thought against the teacher's hidden states at the
written value in that place. Without it (plain CODI, same base, 600 steps) the thoughts stayed unused: CODI 7%,
zeroed 8%, chance 12.5% on pointer3; with it, 1500 steps at lr 1e-3 gave CODI 94.5%, zeroed 7.5% (200 held-out).

    >>> from codi.organisms.tasks import pointer_chase
    >>> task = pointer_chase(3)
    >>> cfg = organism_config(task, "my-base")
    >>> cfg.num_latents, cfg.finetune, cfg.answer_marker
    (3, 'full', '=')
"""

from __future__ import annotations

import torch

from codi.batch import same_answer
from codi.config import CODIConfig
from codi.model import CODIModel
from codi.organisms.base import text_format
from codi.organisms.tasks import Task

__all__ = ["organism_config", "codi_from_base", "ablation_accuracy", "ABLATIONS"]

ABLATIONS = ("none", "zero", "mean", "random", "swap")


def organism_config(task: Task, base_model: str, all_steps: bool = True, **over) -> CODIConfig:
    """The organism's CODIConfig: one thought per written step, full fine-tuning, the task format.

    >>> from codi.organisms.tasks import pointer_chase
    >>> cfg = organism_config(pointer_chase(4), "my-base", all_steps=False, lora_r=8)
    >>> cfg.num_latents, cfg.latent_distill_weight, cfg.cot_template, cfg.lora_r
    (3, 1.0, '<bot> {cot} <eot>', 8)
    """
    k = task.depth if all_steps else max(1, task.depth - 1)
    kw = dict(base_model=base_model, num_latents=k, finetune="full", prj_layer_norm=False,
              prj_dropout=0.0, distill_weight=1.0, latent_distill_weight=1.0, **text_format(all_steps))
    kw.update(over)
    return CODIConfig(**kw)


def codi_from_base(task: Task, base_folder, all_steps: bool = True, **over) -> CODIModel:
    """A fresh CODIModel on the base in `base_folder`, <bot>/<eot> rows copied from the base's own tokens.

    >>> import tempfile
    >>> from codi.organisms.base import BaseSpec, build_base
    >>> from codi.organisms.tasks import pointer_chase
    >>> task = pointer_chase(2); base, tok = build_base(task, BaseSpec(layers=1, d_model=32, heads=2, mlp=64))
    >>> folder = tempfile.mkdtemp(); base.save_pretrained(folder); _ = tok.save_pretrained(folder)
    >>> cm = codi_from_base(task, folder)
    >>> cm.config.base_model, cm.config.num_latents, cm.config.finetune
    ('organism-base:pointer2', 2, 'full')
    >>> torch.equal(cm.bot_embeds, cm.model.get_input_embeddings().weight[tok.convert_tokens_to_ids("<bot>")])
    True
    """
    cfg = organism_config(task, f"organism-base:{task.name}", all_steps, **over)
    cm = CODIModel.from_config(cfg, weights=base_folder)
    tok = cm.tokenizer
    emb = cm.model.get_input_embeddings().weight
    with torch.no_grad():
        for row, word in enumerate(("<bot>", "<eot>")):
            cm.special[row].copy_(emb[tok.convert_tokens_to_ids(word)])
    return cm


@torch.no_grad()
def ablation_accuracy(cm: CODIModel, problems: list, kind: str = "none", num_latents: int | None = None,
                      seed: int = 0, batch_size: int = 256) -> float:
    """CODI accuracy with every thought replaced: "zero", "mean" (over these problems), "random" (a Gaussian of
    each thought's own norm), "swap" (the thoughts of another problem, rolled by one); `num_latents=j` runs only
    the first j thoughts.

        >>> import codi
        >>> cm, make = codi.organisms.load("pointer3")
        >>> problems = make(50, seed=0)                          # chance: 1/8
        >>> [round(ablation_accuracy(cm, problems, kind), 2) for kind in ("none", "zero", "swap")]
        [0.88, 0.06, 0.06]
        >>> ablation_accuracy(cm, problems, num_latents=2)       # without its last thought: below chance
        0.02
    """
    if kind not in ABLATIONS:
        raise ValueError(f"kind={kind!r}; choose one of {ABLATIONS}.")
    qs = [p.question for p in problems]
    gen = torch.Generator().manual_seed(seed)
    correct = 0
    for i in range(0, len(qs), batch_size):
        chunk, gold = qs[i:i + batch_size], problems[i:i + batch_size]
        fn = None
        if kind != "none":
            clean = mean = None
            if kind in ("mean", "swap"):  # these need this chunk's own thoughts first
                clean = cm.generate(chunk, max_new_tokens=3, return_latents=True,
                                    num_latents=num_latents).latent_inputs
                mean = clean.mean(0)

            def fn(j, thought, clean=clean, mean=mean):
                if kind == "zero":
                    return torch.zeros_like(thought)
                if kind == "mean":
                    return mean[j].expand_as(thought).clone()
                if kind == "swap":
                    return clean[:, j].roll(1, 0)
                noise = torch.randn(thought.shape, generator=gen).to(thought)
                return noise * thought.norm(dim=-1, keepdim=True) / noise.norm(dim=-1, keepdim=True)
        out = cm.generate(chunk, max_new_tokens=3, latent_input_fn=fn, num_latents=num_latents)
        correct += sum(same_answer(a, p.answer) for a, p in zip(out.answers, gold))
    return correct / len(qs)
