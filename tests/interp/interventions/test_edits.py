"""Edits (interp/interventions/edits.py): the samples an edit writes and the values it writes, checked against what
the engine does with them."""

from __future__ import annotations

import pytest
import torch

from interp.interventions.batch import prepare
from interp.interventions.edits import INPUT, Edit, edited
from interp.interventions.engine import baseline, run_cells


def test_edited_is_exactly_the_samples_the_engine_changes(llama):
    """Responses of different lengths: a response label only sample 1 has. `edited` marks a group's sample when
    one of its edits exists there and `valid` keeps it (an edit's own flags AND label existence; a group's edits
    OR), and the engine leaves every other sample's scores bit-equal to the baseline."""
    b = prepare(llama, ["3 + 4 = ?", "9 - 2 = ?"], ["7", "7, because 9 - 2 is 7 and 7 is odd"])
    base = baseline(llama, b)
    only = next(p for i, p in enumerate(base.plan.labels) if p.startswith("resp_") and base.plan.valid[1, i]
                and not base.plan.valid[0, i])
    first = torch.tensor([True, False])
    groups = [[Edit(1, only)],                                     # exists for sample 1 only
              [Edit(1, "latent_0")],                               # both
              [Edit(1, "latent_0", valid=first)],                  # sample 0, by its flags
              [Edit(1, only, valid=first)],                        # flags and existence disagree: none
              [Edit(1, only), Edit(INPUT, "latent_1", valid=first)],  # union over the group: both
              []]
    want = [[False, True], [True, True], [True, False], [False, False], [True, True], [False, False]]
    assert edited(groups, base.plan).tolist() == want
    s = run_cells(llama, b, groups, base.plan, cells_per_pass=1)["answer_logp"]
    for g, row in enumerate(want):
        for i, changed in enumerate(row):
            same = torch.equal(s[g, i], base.scores["answer_logp"][i])
            assert same != changed, (g, i, s[g, i].item(), base.scores["answer_logp"][i].item())


def test_values_and_rows_refuse_what_does_not_fit(llama):
    e = Edit(1, "latent_0", torch.arange(3.0))
    assert e.values(2, 3).tolist() == [[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]
    rows = torch.arange(6.0).view(2, 3)
    assert torch.equal(Edit(1, "latent_0", rows).values(2, 3), rows)
    assert torch.equal(Edit(1, "latent_0").values(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"Edit.value=<tensor \[3\]>: must have shape \[4\]"):
        e.values(2, 4)
    plan = baseline(llama, prepare(llama, ["1 + 1 = ?"], ["2"])).plan
    with pytest.raises(ValueError, match="edit at 'latent_9': not among the planned positions"):
        Edit(1, "latent_9").rows(plan, 1)
