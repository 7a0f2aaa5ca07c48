"""Shared fixtures: real smollm2-135m residuals on instructed-facts texts (plain HF output_hidden_states)."""

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def smol_facts():
    """hidden_states of smollm2-135m for 120 instructed-facts samples: array [sample, layer(0..29), 2 positions,
    576] at the last token and the 6th token, with labels (persona) and groups (fact).

    Layers 0..29 are HF hidden_states[0..29] (embedding output and block outputs before the final norm)."""
    import probes
    from interp.models import load_model

    task = probes.tasks.load("instructed-facts", n=120, seed=0)
    m = load_model("smollm2-135m")
    tok = m.tokenizer
    rows = []
    with torch.no_grad():
        for i in range(0, len(task), 40):
            texts = task.texts[i:i + 40]
            enc = tok(texts, return_tensors="pt", padding=True)
            out = m.model(**enc, output_hidden_states=True)
            hs = torch.stack(out.hidden_states[:m.n_layers], 1)                 # [b, L, seq, d]
            mask = enc["attention_mask"]
            if tok.padding_side == "left":
                last = torch.full((len(texts),), mask.shape[1] - 1)
                start = mask.shape[1] - mask.sum(1)
            else:
                last = mask.sum(1) - 1
                start = torch.zeros(len(texts), dtype=torch.long)
            b = torch.arange(len(texts))
            rows.append(torch.stack([hs[b, :, last], hs[b, :, start + 5]], 2).float().numpy())
    return np.concatenate(rows), task.labels, task.groups
