"""The interventions half of a model-organism study (codi.organisms): the lens on each thought, and patching
with counterfactual answers. The probe half and the study that joins them live in `app.organism_study`.

    >>> import codi
    >>> from interp.interventions.organism import thought_lens
    >>> cm, make = codi.organisms.load("pointer3")
    >>> lens = thought_lens(cm.eval(), make(40, seed=5))
    >>> lens.shape                                   # [thought, step]
    (3, 3)
    >>> bool(lens[0, 0] > 0.9)                       # thought 0 reads out the value after hop 1
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from grids import ResultGrid
from interp.interventions.patch import patch

__all__ = ["thought_lens", "counterfactual_patching"]


@torch.no_grad()
def thought_lens(cm, problems) -> np.ndarray:
    """[thought, step]: share of problems whose thought's LM-head top token (the fed-back last-layer hidden, read by
    the model's own head) is the value after that step (`Problem.values`).

    >>> import codi
    >>> cm, make = codi.organisms.load("pointer2")
    >>> thought_lens(cm.eval(), make(20, seed=1)).shape
    (2, 2)
    """
    out = cm.generate([p.question for p in problems], max_new_tokens=2, return_latents=True)
    top = cm.model.get_output_embeddings()(out.latents).argmax(-1)  # [n, k]
    k, steps = top.shape[1], len(problems[0].values)
    rate = np.zeros((k, steps))
    for j in range(k):
        words = cm.tokenizer.convert_ids_to_tokens(top[:, j].tolist())
        for s in range(steps):
            rate[j, s] = np.mean([w == str(p.values[s]) for w, p in zip(words, problems)])
    return rate


def counterfactual_patching(cm, task: Any, n_pairs: int = 200, seed: int = 5,
                            progress: bool = False) -> tuple[dict[int, ResultGrid], dict[int, float]]:
    """Per step s (1-based): the patching grid of pairs that differ from step s on (`task.pairs`), and the share of
    pairs whose answer becomes the counterfactual one (`task.follow` of the clean step-s value in the corrupt
    chain) at the best latent cell. With a shared mapping that answer is the clean one, so the rate is
    `patch()`'s `clean_accuracy` (checked).

    >>> import codi
    >>> cm = codi.organisms.load("pointer2")[0].eval()
    >>> grids, rate = counterfactual_patching(cm, codi.organisms.task_of("pointer2"), n_pairs=8)
    >>> sorted(grids), 0 <= rate[1] <= 1
    ([1, 2], True)
    """
    grids, rate = {}, {}
    for s in range(1, task.depth + 1):
        clean, corrupt = task.pairs(n_pairs, seed=seed, step=s)
        implied = [str(task.follow(k, c.values[s - 1], s)) for c, k in zip(clean, corrupt)]
        if implied != [c.answer for c in clean]:
            raise AssertionError("pairs with a shared mapping must imply the clean answer; check Task.pairs")
        g = patch(cm, clean, corrupt, progress=progress)
        lat = [p for p in g.positions if p.startswith("latent_")]
        layer, pos = g.best("clean_accuracy", positions=lat)
        grids[s], rate[s] = g, float(g.sel("clean_accuracy", layer, pos))
    return grids, rate
