"""The intervention engine (interp/interventions/engine.py): cells, batched edits, prompt-call reuse.

Tiny random CODI models (tiny-llama, tiny-gpt2; LoRA + projection, 3 latents), short questions. "Exact" below means
bitwise equal (torch.equal / ==); batched-vs-cell-by-cell comparisons allow 1e-5 absolute (float32; replicated
batches change matmul blocking, nothing else).
"""

from __future__ import annotations

import pytest
import torch
from interventions_fixtures import CLEAN, CORRUPT, PROBS, qa

from interp.interventions.batch import prepare
from interp.interventions.engine import INPUT, Edit, baseline, run_cells


def test_plan_matches_hf_hidden_states(llama):
    """Residuals recorded at CODI labels equal HF hidden_states of the right call and column (0..n-1)."""
    b = prepare(llama, *qa(PROBS))
    base = baseline(llama, b, layers=[0, 1, 2], positions="all")
    run = llama.run_ids(b.prompt_ids, b.prompt_mask, b.resp_ids, b.resp_mask, keep_hidden_states=True)
    plan = base.plan
    for p, label in enumerate(plan.labels):
        for s in range(len(b)):
            if not plan.valid[s, p]:
                continue
            for layer in (0, 1):
                want = run.hidden_states[plan.call[p]][layer][s, plan.col[s, p]]
                torch.testing.assert_close(base.resid[layer][s, p], want, rtol=0, atol=1e-6)
    # the last real prompt token of each sample is q[-1], its thought inputs match the run's latent_inputs
    assert plan.labels[:2] == ["q_0", "q_1"] and "bot" in plan.labels and "latent_2" in plan.labels
    torch.testing.assert_close(base.latent_inputs, run.latent_inputs, rtol=0, atol=0)


@pytest.mark.parametrize("cells_per_pass", [1, None])
def test_zero_ablating_unused_cells_changes_nothing(llama, cells_per_pass):
    """The last layer's residual at a question token (not the last) and at the last latent is never read:
    nothing downstream depends on it (no K/V, no fed-back thought). Same for every layer at the last response
    position (its logits predict past the scored response). Scores must be identical."""
    n = llama.n_layers
    b = prepare(llama, *qa(PROBS[:1]))
    base = baseline(llama, b)
    last_resp = f"resp_{b.resp_ids.shape[1] - 1}"
    groups = [
        [],
        [Edit(n, "q_0")],
        [Edit(n, "q_2")],
        [Edit(n, "latent_2")],
        [Edit(layer, last_resp) for layer in range(n + 1)],
    ]
    s = run_cells(llama, b, groups, base.plan, cells_per_pass=cells_per_pass)
    # cell by cell (same batch as the baseline): bitwise equal. Batched: the replicated batch changes float32
    # rounding of the matmuls (row blocking), so equal within 1e-5.
    for k in ("correct", "answer_logp", "margin"):
        for g in range(len(groups)):
            if cells_per_pass == 1:
                assert torch.equal(s[k][g], base.scores[k]), (k, g)
            else:
                torch.testing.assert_close(s[k][g], base.scores[k], rtol=0, atol=1e-5)
    # ... while ablating a cell the answer does read (the last layer at <bot> feeds thought 0) changes it
    s2 = run_cells(llama, b, [[Edit(n, "bot")]], base.plan)
    assert not torch.equal(s2["answer_logp"][0], base.scores["answer_logp"])


def test_shared_prompt_is_exact(llama):
    """Replaying the baseline's prompt call (KV cache + last hidden) instead of recomputing it: bitwise equal
    cell by cell, and groups that edit the prompt call are still computed in full."""
    b = prepare(llama, *qa(PROBS))
    base = baseline(llama, b)
    groups = [
        [Edit(1, "latent_1")],
        [Edit(INPUT, "latent_0", op="add", value=torch.ones(64))],
        [Edit(2, "bot")],
        [Edit(0, "q_1")],
        [Edit(1, "eot"), Edit(2, "resp_1")],
    ]
    full = run_cells(llama, b, groups, base.plan, cells_per_pass=1)
    shared = run_cells(llama, b, groups, base.plan, cells_per_pass=1, prompt=base.prompt)
    batched = run_cells(llama, b, groups, base.plan, prompt=base.prompt)
    for k in full:
        assert torch.equal(full[k], shared[k]), k
        torch.testing.assert_close(full[k], batched[k], rtol=0, atol=1e-5)
    assert not torch.equal(full["answer_logp"][2], base.scores["answer_logp"])  # the <bot> edit did act


def test_patching_full_last_layer_reproduces_clean(llama):
    """Writing the clean last-layer residual at every position into the corrupt run gives the clean scores
    exactly: logits and fed-back thoughts are functions of that residual alone."""
    n = llama.n_layers
    cq, ca = qa(CLEAN)
    kq, ka = qa(CORRUPT)
    bc, bk = prepare(llama, cq, ca, foils=ka), prepare(llama, kq, ca, foils=ka)
    base_k = baseline(llama, bk)
    base_c = baseline(llama, bc, layers=[n], positions=base_k.plan.labels)
    group = [
        Edit(n, p, base_c.resid[n][:, i], valid=base_c.plan.valid[:, i])
        for i, p in enumerate(base_k.plan.labels)
    ]
    s = run_cells(llama, bk, [group], base_k.plan, cells_per_pass=1)
    for k in ("correct", "answer_logp", "margin", "logit_diff"):
        assert torch.equal(s[k][0], base_c.scores[k]), k
    assert not torch.equal(base_k.scores["answer_logp"], base_c.scores["answer_logp"])
    # batched together with other cells: same up to float32 noise
    s = run_cells(llama, bk, [[Edit(1, "bot")], group, [Edit(0, "q_0")]], base_k.plan)
    torch.testing.assert_close(s["logit_diff"][1], base_c.scores["logit_diff"], rtol=0, atol=1e-4)


def test_passes_resumed_at_their_first_edited_call_equal_full_runs(llama):
    """resume=baseline: groups packed by the first call they edit (question, <bot>, each thought, the fed-back
    thought, <eot>, a response token, none) start from the baseline's state there; scores and the read-out
    residual equal running every call, exactly cell by cell and to float32 noise batched; each pass starts where
    its earliest edit (or the readout) is."""
    import interp.interventions.engine as E

    b = prepare(llama, *qa(PROBS))
    base = baseline(llama, b, layers=[1], positions="all")
    groups = [[Edit(1, "q_0")], [Edit(2, "bot")], [Edit(1, "latent_0")], [Edit(INPUT, "latent_1", op="add",
              value=torch.ones(64))], [Edit(2, "latent_2"), Edit(1, "eot")], [Edit(2, "eot")], [Edit(1, "resp_0")],
              []]
    starts = []
    one_pass, rows_per_call = E._one_pass, E.ROWS_PER_CALL
    first = {}

    def spy(model, b_, part, plan, readout, state):
        starts.append((0 if state is None else state.step + 1, [first[id(g)] for g in part]))
        return one_pass(model, b_, part, plan, readout, state)

    E._one_pass = spy
    try:
        for readout in [None, (1, "latent_1")]:
            want = [0, 0, 1, 2, 3, 4, 4, 4] if readout is None else [0, 0, 1, 2, 2, 2, 2, 2]
            first.update({id(g): w for g, w in zip(groups, want)})
            starts.clear()
            full = run_cells(llama, b, groups, base.plan, cells_per_pass=1, readout=readout)
            assert [s for s, _ in starts] == [0] * len(groups)
            starts.clear()
            res = run_cells(llama, b, groups, base.plan, cells_per_pass=1, readout=readout, resume=base)
            assert sorted(starts) == sorted((w, [w]) for w in want), starts   # each pass at its first call
            for k in full:
                assert torch.equal(full[k], res[k]), (readout, k)
            by_call = sum(-(-want.count(c) // 4) for c in set(want))      # 4 groups a pass, one call each
            for rows, per_call, n_pass in [(256, 10 ** 6, 1), (4 * len(b), 0, by_call), (256, 32, None)]:
                E.ROWS_PER_CALL = per_call        # a pass's fixed cost: huge -> all ride along; 0 -> by call
                starts.clear()
                packed = run_cells(llama, b, groups, base.plan, readout=readout, resume=base, max_rows=rows)
                assert n_pass is None or len(starts) == n_pass, starts
                assert sorted(w for _, ws in starts for w in ws) == sorted(want)
                assert all(s <= min(ws) for s, ws in starts), starts
                for k in full:
                    torch.testing.assert_close(packed[k], full[k], rtol=0, atol=1e-5)
    finally:
        E._one_pass, E.ROWS_PER_CALL = one_pass, rows_per_call


def test_reused_prompt_call_gives_the_same_scores_residuals_and_call_numbers(llama):
    """Prompt reuse (the baseline's PromptState handed to the loop) equals recomputing the prompt call, exactly:
    scores and the residual read out after the edits, cell by cell; and hooks numbering calls by the loop's clock
    see the plan's call numbers (the prompt call, number 0, is simply not run), so the residuals recorded at the
    plan's cells equal the baseline's."""
    from interp.hooks import CallClock, record_residuals

    b = prepare(llama, *qa(PROBS))
    base = baseline(llama, b, layers=[1, 2], positions="all")
    groups = [[Edit(1, "latent_0")], [Edit(INPUT, "latent_1", op="add", value=torch.ones(64))], [Edit(2, "eot")],
              []]
    for readout in [(1, "latent_2"), (2, "resp_0")]:
        full = run_cells(llama, b, groups, base.plan, cells_per_pass=1, readout=readout)
        reuse = run_cells(llama, b, groups, base.plan, cells_per_pass=1, readout=readout, prompt=base.prompt)
        for k in full:
            assert torch.equal(full[k], reuse[k]), (readout, k)
        p = base.plan.labels.index(readout[1])
        assert torch.equal(reuse["readout"][3], base.resid[readout[0]][:, p])  # the empty group: the baseline
    clock = CallClock()
    state = base.prompt.rows(torch.arange(len(b)))
    with record_residuals(llama.model, [1, 2], clock=clock) as rec:
        llama.run_ids(b.prompt_ids, b.prompt_mask, b.resp_ids, b.resp_mask, prompt_state=state, on_call=clock)
    assert rec.calls == list(range(1, llama.config.num_latents + 2))
    rows = torch.arange(len(b))
    for p, call in enumerate(base.plan.call):
        if call == 0:
            continue
        for layer in (1, 2):
            assert torch.equal(rec.at(layer, call)[rows, base.plan.col[:, p]], base.resid[layer][:, p])


def test_an_edit_at_a_label_one_sample_lacks_leaves_that_sample_alone(llama):
    """Responses of different lengths: a response position only the longer one has. Zeroing it at every layer
    must leave the shorter sample's scores exactly as they were (its gather column there is a placeholder that
    points at another position), while the longer sample changes."""
    b = prepare(llama, ["3 + 4 = ?", "9 - 2 = ?"], ["7", "7, because 9 - 2 is 7 and 7 is odd"])
    base = baseline(llama, b)
    only = [p for i, p in enumerate(base.plan.labels) if p.startswith("resp_") and base.plan.valid[1, i]
            and not base.plan.valid[0, i]]
    assert len(only) >= 3, only
    label = only[0]
    s = run_cells(llama, b, [[Edit(layer, label) for layer in range(llama.n_layers + 1)]], base.plan,
                  cells_per_pass=1)
    assert torch.equal(s["answer_logp"][0, 0], base.scores["answer_logp"][0])
    assert not torch.equal(s["answer_logp"][0, 1], base.scores["answer_logp"][1])


def test_bad_edits_name_the_field(llama):
    b = prepare(llama, *qa(PROBS[:2]))
    base = baseline(llama, b)
    with pytest.raises(ValueError, match="Edit.op='mul': must be 'set' or 'add'"):
        Edit(1, "latent_0", op="mul")
    with pytest.raises(ValueError, match="Edit.value=<tensor \\[5\\]>: must have shape \\[64\\]"):
        run_cells(llama, b, [[Edit(1, "latent_0", torch.ones(5))]], base.plan)
    with pytest.raises(ValueError, match="Edit.valid=<1 flags>: must hold one flag per sample \\(2\\)"):
        run_cells(llama, b, [[Edit(1, "latent_0", valid=torch.tensor([True]))]], base.plan)
    with pytest.raises(ValueError, match="readout=\\(1, 'nope'\\): position 'nope' is not among"):
        run_cells(llama, b, [[Edit(1, "latent_0")]], base.plan, readout=(1, "nope"))
