"""probes.text_baseline on planted data: a label only in the text, a label only in the activations, the paired
gain CI against scikit-learn, and bad input."""

import doctest

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import probes
import probes.textbase
from probes.textbase import bag_of_words

N_GROUPS = 60
POSITIONS = ["q", "instr", "end"]


def _planted(label_in_text: bool, seed: int = 0):
    """Pairs (one group = one question, labels 0 and 1). Tokens per position: [q_g], [q_g, w], [q_g, w, "?"] with
    w = "lie"/"honest" when the label is in the text (3 groups get the neutral "ask" for both) and w = "answer"
    for both otherwise. Activations = sum of the visible tokens' embeddings + noise, plus (label only in the
    activations) a planted direction times the label at "instr" and "end": a model that reads its prompt."""
    rng = np.random.default_rng(seed)
    y, g = np.tile([0, 1], N_GROUPS), np.repeat(np.arange(N_GROUPS), 2)
    d = 24
    emb: dict[str, np.ndarray] = {}

    def e(tok):
        return emb.setdefault(tok, rng.normal(size=d))
    texts, acts = [], np.zeros((len(y), 2, len(POSITIONS), d))
    direction = rng.normal(size=d)
    for i, (yi, gi) in enumerate(zip(y, g)):
        w = ("ask" if gi < 3 else ("lie" if yi else "honest")) if label_in_text else "answer"
        toks = [f"q{gi}", w, "?"]
        texts.append([toks[:1], toks[:2], toks[:3]])
        for j in range(len(POSITIONS)):
            base = sum(e(t) for t in toks[:j + 1])
            for li in range(2):
                acts[i, li, j] = base + 0.1 * rng.normal(size=d)
                if not label_in_text and j > 0:
                    acts[i, li, j] += 0.6 * (li + 1) * (yi - 0.5) * direction
    return acts, y, g, texts


def _sweep(acts, y, g, n_permutations=20):
    return probes.sweep(acts, labels=y, groups=g, positions=POSITIONS, Cs=(0.01, 1.0), n_permutations=n_permutations,
                        n_bootstrap=400, progress=False)


def test_label_only_in_text_fires_and_gain_covers_zero():
    acts, y, g, texts = _planted(label_in_text=True)
    grid = probes.text_baseline(_sweep(acts, y, g), texts)
    t = grid.table().set_index(["layer", "position"])
    for li in (0, 1):
        assert t.loc[(li, "q"), "text_auroc"] == pytest.approx(0.5, abs=1e-9)     # pair members share the text
        for p in ("instr", "end"):
            # only the 3 x 3 pairs of "ask" samples tie: 1 - 0.5 * 9 / 60^2
            assert t.loc[(li, p), "text_auroc"] == pytest.approx(1 - 4.5 / N_GROUPS**2, abs=0.005)
            assert t.loc[(li, p), "auroc"] > 0.95                                 # the probe reads it too
            assert abs(t.loc[(li, p), "gain"]) < 0.05
    assert (t.gain_lo <= 0).all() and (t.gain_hi >= 0).all(), t[["gain", "gain_lo", "gain_hi"]]
    found = [w for w in grid.warnings if w.kind == "label_in_text"]
    assert len(found) == 1
    assert sorted(found[0].cells) == [(0, "end"), (0, "instr"), (1, "end"), (1, "instr")]
    assert "the label can be read from the prompt" in found[0].message
    assert "may only detect the instruction" in found[0].message
    assert "text-only baseline there" in grid.summary()


def test_label_only_in_activations_gives_positive_gain():
    acts, y, g, texts = _planted(label_in_text=False)
    grid = probes.text_baseline(_sweep(acts, y, g), texts)
    t = grid.table().set_index(["layer", "position"])
    assert np.allclose(t.text_auroc, 0.5)                                       # identical text within each pair
    assert not [w for w in grid.warnings if w.kind == "label_in_text"]
    for li in (0, 1):
        for p in ("instr", "end"):
            assert t.loc[(li, p), "gain"] > 0.25, t.loc[(li, p)]
            assert t.loc[(li, p), "gain_lo"] > 0, t.loc[(li, p)]
        assert t.loc[(li, "q"), "gain_lo"] < 0 < t.loc[(li, "q"), "gain_hi"]   # no signal at "q": CI covers 0
    assert grid.sel("gain", 1, "end") > grid.sel("gain", 0, "end")              # planted twice as strong at L1


def test_gain_ci_is_the_paired_group_bootstrap():
    """Without permutations (no widening) the gain CI equals quantiles of AUROC(probe) - AUROC(text) over the same
    group resamples, computed here with scikit-learn's weighted roc_auc_score."""
    acts, y, g, texts = _planted(label_in_text=False, seed=3)
    acts = acts + 0.8 * np.random.default_rng(9).normal(size=acts.shape)     # weaker probe: a spread of AUROCs
    texts = [[toks + (["x"] if (i // 2) % 3 == 0 and yi else []) for toks in row]
             for i, (row, yi) in enumerate(zip(texts, y))]                     # some text signal too
    grid = probes.text_baseline(_sweep(acts, y, g, n_permutations=0), texts, n_bootstrap=200)
    text_grid_auroc = grid.sel("text_auroc", 0, "end")
    assert 0.55 < text_grid_auroc < 0.95
    # the replicate draws: multinomial over group codes (sorted string order), seed 0
    _, codes = np.unique(g.astype(str), return_inverse=True)
    counts = np.random.default_rng(0).multinomial(N_GROUPS, np.full(N_GROUPS, 1 / N_GROUPS), size=200)
    text_scores = probes.sweep(bag_of_words(texts)[0][:, None], labels=y, groups=g, layers=[0],
                                        positions=POSITIONS, Cs=(0.01, 1.0), n_permutations=0, n_bootstrap=10,
                                        progress=False).scores[0]
    for li, p in ((0, "end"), (1, "instr")):
        pi = POSITIONS.index(p)
        diffs = []
        for c in counts:
            w = c[codes]
            keep = w > 0
            a = roc_auc_score(y[keep], grid.scores[li, pi][keep], sample_weight=w[keep])
            b = roc_auc_score(y[keep], text_scores[pi][keep], sample_weight=w[keep])
            diffs.append(a - b)
        lo, hi = np.quantile(diffs, [0.025, 0.975])
        assert grid.sel("gain_lo", li, p) == pytest.approx(lo, abs=1e-9)
        assert grid.sel("gain_hi", li, p) == pytest.approx(hi, abs=1e-9)
        assert grid.sel("gain", li, p) == pytest.approx(
            roc_auc_score(y, grid.scores[li, pi]) - roc_auc_score(y, text_scores[pi]), abs=1e-9)


def test_bag_of_words_counts_and_validity():
    X, valid, vocab = bag_of_words([[["a", "b"], ["a", "b", "a"]], [["c"], None]])
    assert vocab == ["a", "b", "c"]
    assert X[0].tolist() == [[1, 1, 0], [2, 1, 0]] and X[1].tolist() == [[0, 0, 1], [0, 0, 0]]
    assert valid.tolist() == [[True, True], [True, False]]


def test_bad_input_is_refused_with_the_problem_named():
    acts, y, g, texts = _planted(label_in_text=True)
    grid = _sweep(acts, y, g, n_permutations=0)
    with pytest.raises(ValueError, match="texts has 119 samples, the grid 120"):
        probes.text_baseline(grid, texts[:-1])
    with pytest.raises(ValueError, match="positions, the grid 3"):
        probes.text_baseline(grid, [row[:2] for row in texts])
    with pytest.raises(TypeError, match="is one string"):
        probes.text_baseline(grid, [[" ".join(t) for t in row] for row in texts])
    missing = [list(row) for row in texts]
    missing[5][2] = None
    with pytest.raises(ValueError, match="position 'end': texts give tokens for 119 samples but the probe scored 120"):
        probes.text_baseline(grid, missing)
    shared = [list(row) for row in texts]
    shared[9] = shared[7]                                   # sample 9 (group 4) copies sample 7 (group 3)
    with pytest.raises(ValueError, match="samples 7 and 9 are in different groups .'3', '4'."):
        probes.text_baseline(grid, shared)
    shared[9] = [t[::-1] for t in shared[7]]                # the same bags of words, in another order
    with pytest.raises(ValueError, match="same prompt tokens .as a bag of words. at every position"):
        probes.text_baseline(grid, shared)
    ridge = probes.sweep(acts, labels=np.arange(len(y), dtype=float), groups=g, method="ridge", n_permutations=0,
                         progress=False)
    with pytest.raises(ValueError, match="compares AUROCs"):
        probes.text_baseline(ridge, texts)


def test_existing_grid_metrics_are_unchanged_and_the_result_round_trips(tmp_path):
    acts, y, g, texts = _planted(label_in_text=True)
    grid = _sweep(acts, y, g, n_permutations=0)
    out = probes.text_baseline(grid, texts)
    for k, v in grid.metrics.items():
        assert np.array_equal(out.metrics[k], v, equal_nan=True), k
    assert "gain" not in grid.metrics and not [w for w in grid.warnings if w.kind == "label_in_text"]
    back = probes.ProbeGrid.load(out.save(tmp_path / "grid"))
    assert np.allclose(back.sel("gain"), out.sel("gain")) and [w.kind for w in back.warnings] == ["label_in_text"]


def test_held_out_part_gets_a_text_test_auroc():
    acts, y, g, texts = _planted(label_in_text=True)
    grid = probes.sweep(acts, labels=y, groups=g, positions=POSITIONS, Cs=(1.0,), n_permutations=0,
                        test_size=0.25, n_bootstrap=100, progress=False)
    out = probes.text_baseline(grid, texts)
    assert out.sel("text_test_auroc", 0, "q") == pytest.approx(0.5)
    assert out.sel("text_test_auroc", 1, "end") > 0.95


def test_doctests_run():
    assert doctest.testmod(probes.textbase).failed == 0
