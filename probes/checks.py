"""Automatic checks run on every sweep; each returns Findings that `ProbeGrid.summary()` shows.

Kinds: identical_features, zero_variance, constant_predictions, class_imbalance, ci_below_chance, too_few_groups,
duplicate_samples (raised, not reported: it makes every test score meaningless), not_converged, skipped_cells;
label_in_text (added by `probes.text_baseline`).

    >>> import numpy as np
    >>> from probes.checks import identical_fraction
    >>> X_cell = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0], [5.0, 1.0]])   # [sample, d] at one cell
    >>> identical_fraction(X_cell, np.array([0, 1, 0, 1]), np.array(["q0", "q0", "q1", "q1"]))
    0.5
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float
from scipy import stats

from probes.grid import Finding
from probes.splits import movable_labels


def fingerprint(X: Float[np.ndarray, "n ... d"], seed: int = 0) -> np.ndarray:
    """A float64 fingerprint per row (and per middle index): identical rows give identical values.

    >>> fp = fingerprint(np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 4.0]]))
    >>> fp.shape, bool(fp[0] == fp[1]), bool(fp[0] == fp[2])
    ((3,), True, False)
    """
    r = np.random.default_rng(seed).standard_normal(X.shape[-1])
    return X.astype(np.float64, copy=False) @ r


def identical_fraction(X: Float[np.ndarray, "n d"], y: np.ndarray, groups: np.ndarray,
                       fp: np.ndarray | None = None) -> float:
    """Among groups that contain more than one label, the fraction in which samples of different labels have
    exactly identical feature rows (e.g. a prompt position before the instruction differs). NaN if no such
    group. Groups whose fingerprints all agree are confirmed row by row.

    >>> identical_fraction(np.zeros((4, 3)), np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1]))
    1.0
    """
    fp = fingerprint(X) if fp is None else fp
    _, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    order = np.lexsort((y, codes))
    c, yy, f = codes[order], np.asarray(y)[order], fp[order]
    starts = np.flatnonzero(np.r_[True, np.diff(c) != 0])
    mixed = np.minimum.reduceat(yy, starts) != np.maximum.reduceat(yy, starts)
    same = np.minimum.reduceat(f, starts) == np.maximum.reduceat(f, starts)
    if not mixed.any():
        return float("nan")
    ends = np.r_[starts[1:], len(c)]
    identical = sum(all(np.array_equal(X[order[i]], X[order[a]]) for i in range(a + 1, b))
                    for a, b in zip(starts[mixed & same], ends[mixed & same]))
    return identical / int(mixed.sum())


def duplicate_samples(fp_all: np.ndarray, groups: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (i, j) of samples in DIFFERENT groups whose activations are identical at every cell (by
    fingerprint). Ignored when every sample is identical (that is zero variance, reported separately).

    >>> duplicate_samples(np.array([0.5, 0.5, 1.0, 2.0]), np.array(["a", "b", "c", "c"]))   # 0 and 1: groups a, b
    [(0, 1)]
    """
    g = np.asarray(groups).astype(str)
    if len(np.unique(fp_all)) <= 1:
        return []
    order = np.argsort(fp_all, kind="stable")
    pairs = []
    for a, b in zip(order[:-1], order[1:]):
        if fp_all[a] == fp_all[b] and g[a] != g[b]:
            pairs.append((int(a), int(b)))
    return pairs


def cell_findings(identical: np.ndarray, zero_var: np.ndarray, const_pred: np.ndarray, layers: list[int],
                  positions: list[str]) -> list[Finding]:
    """Findings from per-cell arrays [L, P]: identical fraction, all-features-constant, constant scores.

    >>> identical = np.array([[1.0, 0.0], [1.0, 0.6]])             # fraction of mixed groups with identical rows
    >>> zero_var = np.array([[False, True], [False, False]])
    >>> found = cell_findings(identical, zero_var, np.zeros((2, 2), bool), [0, 1], ["q_0", "latent_0"])
    >>> [(f.kind, f.severity, f.cells) for f in found]
    [('identical_features', 'error', [(0, 'q_0'), (1, 'q_0')]), ('identical_features', 'warning', [(1, 'latent_0')]),
     ('zero_variance', 'warning', [(0, 'latent_0')])]
    """
    out = []

    def cells(mask):
        return [(layers[i], positions[j]) for i, j in zip(*np.nonzero(mask))]
    full = np.nan_to_num(identical, nan=0) >= 1.0
    part = (np.nan_to_num(identical, nan=0) >= 0.5) & ~full
    at_embedding = full & (np.asarray(layers) == 0)[:, None]
    if (full & ~at_embedding).any():
        out.append(Finding("identical_features",
                           f"{int(full.sum())} cell(s) where, in every group, the samples with different labels have "
                           f"identical activations: nothing there can separate the labels, so their ~50% is a "
                           f"property of the setup (e.g. the instruction is not visible at that position), not "
                           f"evidence that the model does not encode the label", "error", cells(full)))
    elif at_embedding.any():
        out.append(Finding("identical_features",
                           f"{int(at_embedding.sum())} cell(s) at layer 0 only where the differently labelled samples "
                           f"of every group have identical activations: expected where both variants have the same "
                           f"token there (layer 0 is the token embedding, before any attention); every deeper layer "
                           f"differs", "info", cells(at_embedding)))
    if part.any():
        out.append(Finding("identical_features",
                           f"{int(part.sum())} cell(s) where in at least half of the groups the differently labelled "
                           f"samples have identical activations", "warning", cells(part)))
    if zero_var.any():
        out.append(Finding("zero_variance", f"{int(zero_var.sum())} cell(s) whose features are constant across all "
                           f"samples (e.g. a BOS position): their scores carry no information", "warning",
                           cells(zero_var)))
    cp = const_pred & ~zero_var & ~full
    if cp.any():
        out.append(Finding("constant_predictions", f"{int(cp.sum())} cell(s) where the probe gives the same score to "
                           f"every held-out sample: check regularisation (C) and the features", "warning", cells(cp)))
    return out


def data_findings(y: np.ndarray, groups: np.ndarray, folds: int, regression: bool) -> list[Finding]:
    """Findings about the labels and groups alone.

    >>> [(f.kind, f.severity) for f in data_findings(np.array([0] * 7 + [1]), np.arange(8), 5, regression=False)]
    [('too_few_groups', 'warning'), ('class_imbalance', 'warning')]
    """
    out = []
    n_groups = len(np.unique(np.asarray(groups).astype(str)))
    if n_groups < max(10, 2 * folds):
        out.append(Finding("too_few_groups", f"only {n_groups} groups for {folds} folds: held-out estimates and "
                           f"their CIs are very noisy; add more questions/groups", "warning"))
    if not regression:
        frac = float(np.mean(y == 1))
        minority = min(frac, 1 - frac)
        if minority < 0.2:
            out.append(Finding("class_imbalance", f"minority class is {minority:.1%} of samples: accuracy is "
                               f"misleading, read AUROC and recall at fixed FPR", "warning"))
    return out


def shuffle_findings(y: np.ndarray, groups: np.ndarray, metrics: dict[str, np.ndarray],
                     control_given: bool) -> list[Finding]:
    """Findings about the group-level label shuffle behind the p-values and the default control task. When it can
    move no label, every shuffle is the real labelling: the p-values (which would read 1), the null means (which
    would equal the real score) and the shuffled control task (which would equal the real one) are set to NaN in
    `metrics`, in place, and an error says why. When it can
    move fewer than half of the labels, a warning: the p-values stay valid but have little power.

    >>> m = {"p_value": np.array([1.0]), "control_auroc": np.array([0.7]), "selectivity": np.array([0.0])}
    >>> [(f.kind, f.severity) for f in shuffle_findings(np.array([0, 0, 1, 1, 1]), np.array([0, 0, 1, 1, 1]), m,
    ...                                                 control_given=False)], m["p_value"].tolist()
    ([('shuffle_blind', 'error')], [nan])
    """
    movable = movable_labels(y, groups)
    n = len(movable)
    if not movable.any():
        blank = ["p_value", "p_corrected"] + [k for k in metrics if k.startswith("null_")] + \
            ([] if control_given else [k for k in metrics if k.startswith("control_")] + ["selectivity"])
        for k in blank:
            if k in metrics:
                metrics[k] = np.full_like(np.asarray(metrics[k], np.float64), np.nan)
        return [Finding("shuffle_blind", f"the group-level label shuffle cannot move any of the {n} labels: every "
                        "group has one label and the groups of each size all share one (the label is tied to the "
                        "group size), so every shuffle is the real labelling. p-values" + ("" if control_given else
                        " and the shuffled control task") + " are left out (NaN). Fix: groups that mix labels (pairs), "
                        "or groups of equal size across labels.", "error")]
    if movable.mean() < 0.5:
        return [Finding("shuffle_weak", f"the group-level label shuffle can move only {int(movable.sum())} of the {n} "
                        "labels (one-label groups exchange labels only with groups of their size): p-values are "
                        "valid but have little power", "warning")]
    return []


def grid_findings(metrics: dict[str, np.ndarray], layers: list[int], positions: list[str],
                  not_converged: np.ndarray | None, skipped: np.ndarray | None) -> list[Finding]:
    """Findings from the finished metrics: CI entirely below chance, solver trouble, skipped cells.

    >>> hi = np.full((2, 2), 0.4)                                  # every AUROC CI below 0.5: a leakage signature
    >>> stuck = np.array([[True, False], [False, False]])
    >>> [(f.kind, f.severity, len(f.cells)) for f in grid_findings({"auroc_hi": hi}, [0, 1], ["a", "b"], stuck, None)]
    [('ci_below_chance', 'warning', 4), ('not_converged', 'info', 1)]
    """
    out = []

    def cells(mask):
        return [(layers[i], positions[j]) for i, j in zip(*np.nonzero(mask))]
    if "auroc_hi" in metrics:
        hi = metrics["auroc_hi"]
        below = np.nan_to_num(hi, nan=1.0) < 0.5
        k, n = int(below.sum()), int(np.isfinite(hi).sum())
        if k:
            # each 95% CI misses 0.5 from below in ~2.5% of noise cells: in a big grid a few always do
            p_chance = float(stats.binom.sf(k - 1, n, 0.025))
            if p_chance < 0.01:
                out.append(Finding("ci_below_chance", f"{k} of {n} cell(s) with the whole AUROC CI below 0.5 (chance "
                                   f"gives ~{0.025 * n:.1f}, p={p_chance:.1g}): systematically anti-predictive "
                                   f"held-out scores are a leakage signature (paired samples split across folds, "
                                   f"labels tied to groups); check groups", "warning", cells(below)))
            else:
                out.append(Finding("ci_below_chance", f"{k} of {n} cell(s) with the whole AUROC CI below 0.5, about "
                                   f"as many as chance gives for {n} cells (~{0.025 * n:.1f}); not a leakage "
                                   f"signal by itself", "info", cells(below)))
    if not_converged is not None and not_converged.any():
        out.append(Finding("not_converged", f"{int(not_converged.sum())} cell(s) where some fits hit max_iter; "
                           f"scores are approximate there (raise max_iter or use smaller Cs)", "info",
                           cells(not_converged)))
    if skipped is not None and skipped.any():
        out.append(Finding("skipped_cells", f"{int(skipped.sum())} cell(s) skipped: too few valid samples or one "
                           f"class only among them", "info", cells(skipped)))
    return out


def label_in_text(text_auroc: Float[np.ndarray, " position"], layers: list[int], positions: list[str],
                  threshold: float = 0.95) -> list[Finding]:
    """A `label_in_text` finding over every cell at the positions where the text-only baseline's AUROC reaches
    `threshold` (the label is in the prompt there, e.g. an instruction), or none.

    >>> [w.kind for w in label_in_text(np.array([0.5, 0.99]), [0, 1], ["q_0", "q_5"])]
    ['label_in_text']
    """
    hit = np.nan_to_num(np.asarray(text_auroc, float), nan=0.0) >= threshold
    if not hit.any():
        return []
    shown = [positions[j] for j in np.flatnonzero(hit)]
    return [Finding("label_in_text", f"the label can be read from the prompt: a text-only classifier (bag of words "
                    f"over the tokens up to the position) reaches AUROC >= {threshold} at {len(shown)} position(s) "
                    f"({', '.join(shown[:6])}{' ...' if len(shown) > 6 else ''}; up to "
                    f"{float(np.nanmax(text_auroc)):.3f}); a probe here may only detect the instruction: read the "
                    f"white-box gain (metric 'gain'), not the probe AUROC", "warning",
                    [(l_, p) for l_ in layers for p in shown])]
