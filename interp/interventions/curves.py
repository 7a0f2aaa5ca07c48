"""How many thoughts a CODI model needs, and when its answer can be read: necessity and early-exit curves.

- `necessity(model, problems)`: the answer scored when only the first j thoughts run (j = 0..k; after them the
  model gets <eot> and the reference response is teacher forced, as in `interp.interventions.batch.score`):
  accuracy (greedy decoding reproduces the reference response) and the answer's log-probability, per j.
- `early_exit(model, problems)`: one full run; after j thoughts (j = 0 is the <bot> position, before any
  thought) the LM head reads the last-layer hidden state of that position (the model's own next-token logits
  there): share of problems whose first answer token is the top token, its probability and rank. With `probe=`
  (anything with `.predict(X)`, e.g. a fitted scikit-learn classifier) and `probe_layer=`, the probe reads the
  residual at that layer and position and its accuracy against `targets` (default: the answers) is added.

    >>> import codi.organisms as O
    >>> from interp import curves as C
    >>> cm, make = O.load("pointer3")
    >>> probs = make(64, seed=1)
    >>> nec = C.necessity(cm, probs)
    >>> acc = nec.values["accuracy"]                  # 0, 1, 2, 3 thoughts: 0.0, 0.0, 0.02, 0.95 measured
    >>> bool(acc[-1] > 0.9 > 0.1 > acc[:-1].max())    # the answer needs every thought
    True
    >>> ex = C.early_exit(cm, probs)
    >>> ex.table().columns.tolist()[:3]
    ['steps', 'answer_top1', 'answer_prob']

Both return a `Curve` (steps, per-step values and per-problem arrays); `viz.curves([nec, ...], "accuracy")` draws
them, one line per curve.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float

from argcheck import BadArgument, check_int, check_ints
from interp.hooks import record_residuals
from interp.interventions.batch import Batch, check_codi, prepare, qa, score
from interp.lens import unembed

__all__ = ["Curve", "necessity", "early_exit", "wilson"]


@dataclass
class Curve:
    """One curve over thought counts: `values[metric][i]` at `steps[i]`, `per_problem[metric][i, n]`.

    >>> c = Curve("tiny", "necessity", [0, 1, 2], {"accuracy": np.array([0.0, 0.5, 1.0])},
    ...           {"correct": np.array([[0, 0], [0, 1], [1, 1]])})
    >>> float(c.values["accuracy"][c.steps.index(1)]), c.per_problem["correct"].shape      # [step, problem]
    (0.5, (3, 2))
    """

    name: str
    kind: str  # "necessity" | "early_exit"
    steps: list[int]
    values: dict[str, Float[np.ndarray, " step"]]
    per_problem: dict[str, Float[np.ndarray, "step n"]] = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """One row per step, one column per metric.

        >>> Curve("m", "necessity", [0, 1], {"accuracy": np.array([0.1, 0.9])}).table().to_dict("list")
        {'steps': [0, 1], 'accuracy': [0.1, 0.9]}
        """
        return pd.DataFrame({"steps": self.steps, **{k: v for k, v in self.values.items()}})

    def to_dict(self) -> dict:
        """JSON-able form (what `codi-lens patch --study necessity` writes to curve.json).

        >>> Curve("m", "early_exit", [0], {"answer_top1": np.array([0.5])}).to_dict()["values"]
        {'answer_top1': [0.5]}
        """
        return {"name": self.name, "kind": self.kind, "steps": list(self.steps),
                "values": {k: [float(x) for x in v] for k, v in self.values.items()}, "config": self.config}


def wilson(k: np.ndarray, n: int, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of k successes out of n (vectorised).

    >>> lo, hi = wilson(np.array([5]), 10); round(float(lo[0]), 3), round(float(hi[0]), 3)
    (0.237, 0.763)
    """
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _batch(model, problems: Any, answers: Sequence[str] | None) -> Batch:
    check_codi(model)
    qs, ans = qa(problems, answers)
    return prepare(model, qs, ans)


def _steps(model, steps: Sequence[int] | None) -> list[int]:
    k = model.config.num_latents
    if steps is None:
        return list(range(k + 1))
    return check_ints("steps", steps, min=0, fix=f"pass thought counts >= 0, e.g. steps={list(range(k + 1))} "
                      "(the default: 0..num_latents)")


@torch.no_grad()
def necessity(model, problems: Any, answers: Sequence[str] | None = None, steps: Sequence[int] | None = None,
              name: str = "") -> Curve:
    """Accuracy (with a Wilson 95% interval) and answer log-probability when only the first j thoughts run.

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=3, lora_r=4)).eval()
    >>> nec = necessity(cm, [{"question": "3 + 4 = ?", "answer": "7"}], steps=[0, 3])
    >>> nec.values["accuracy"].shape, nec.table().columns.tolist()[:2]
    ((2,), ['steps', 'accuracy'])
    """
    js = _steps(model, steps)
    b = _batch(model, problems, answers)
    acc, logp = [], []
    for j in js:
        run = model.run_ids(b.prompt_ids, b.prompt_mask, b.resp_ids, b.resp_mask, num_latents=j)
        s = score(model, run, b)
        acc.append(s["correct"].cpu().double().numpy())
        logp.append(s["answer_logp"].cpu().double().numpy())
    acc, logp = np.stack(acc), np.stack(logp)
    lo, hi = wilson(acc.sum(1), acc.shape[1])
    return Curve(name or getattr(model, "base_name", "model"), "necessity", js,
                 {"accuracy": acc.mean(1), "accuracy_lo": lo, "accuracy_hi": hi, "answer_logp": logp.mean(1)},
                 {"correct": acc, "answer_logp": logp},
                 {"n": len(b), "num_latents": model.config.num_latents,
                  "scoring": "teacher-forced reference response after <eot>; correct = greedy reproduces it"})


@torch.no_grad()
def early_exit(model, problems: Any, answers: Sequence[str] | None = None, probe: Any = None,
               probe_layer: int | None = None, targets: Sequence[Any] | None = None, name: str = "") -> Curve:
    """The answer read after j thoughts (j = 0..k) by the LM head, and by `probe` at `probe_layer` when given.

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=3, lora_r=4)).eval()
    >>> ex = early_exit(cm, [{"question": "3 + 4 = ?", "answer": "7"}])
    >>> ex.values["answer_top1"].shape        # k + 1 steps
    (4,)
    """
    b = _batch(model, problems, answers)
    if probe is not None:
        if not hasattr(probe, "predict"):
            raise TypeError(f"probe={type(probe).__name__}: pass an object with .predict(X) (e.g. a fitted "
                            "sklearn classifier), or None.")
        check_int("probe_layer", probe_layer, min=0, max=model.n_layers,
                  fix=f"give the residual layer the probe reads, 0..{model.n_layers}")
    tg = [str(t) for t in (targets if targets is not None else b.answers)]
    if len(tg) != len(b):
        raise BadArgument("targets", targets, f"must hold one target per problem ({len(b)})",
                          "pass targets=None (the answers) or one label per problem", shown=f"[{len(tg)} items]")
    k = model.config.num_latents
    with ExitStack() as stack:
        rec = stack.enter_context(record_residuals(model.model, [probe_layer])) if probe is not None else None
        run = model.run_ids(b.prompt_ids, b.prompt_mask, b.resp_ids, b.resp_mask, keep_hidden_states=True)
    rows = torch.arange(len(b), device=b.resp_ids.device)
    first = b.resp_ids[rows, b.ans_start]
    top1, prob, rank, probe_acc = [], [], [], []
    for j in range(k + 1):  # call j = prompt (j = 0) or latent step j - 1: its last position is "after j thoughts"
        h = run.hidden_states[j][-1][:, -1]
        logits = unembed(model.model, h, normed=True)[..., : model.vocab_size].float()
        p = logits.softmax(-1)
        top1.append((logits.argmax(-1) == first).double().cpu().numpy())
        prob.append(p[rows, first].double().cpu().numpy())
        rank.append((logits > logits[rows, first][:, None]).sum(-1).double().cpu().numpy())
        if rec is not None:
            x = rec.residuals[probe_layer][j][:, -1].float().cpu().numpy()
            probe_acc.append(np.array([str(a) == t for a, t in zip(probe.predict(x), tg)], dtype=float))
    per = {"answer_top1": np.stack(top1), "answer_prob": np.stack(prob), "answer_rank": np.stack(rank)}
    if probe_acc:
        per["probe_accuracy"] = np.stack(probe_acc)
    return Curve(name or getattr(model, "base_name", "model"), "early_exit", list(range(k + 1)),
                 {m: v.mean(1) for m, v in per.items()}, per,
                 {"n": len(b), "num_latents": k, "probe_layer": probe_layer,
                  "read": "last-layer hidden after j thoughts (j = 0: <bot>) through the LM head; first answer token"})
