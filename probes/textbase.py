"""Text-only baseline beside a probe sweep: what the prompt text alone gives at each probed position.

For each position a bag-of-words logistic classifier reads the prompt tokens up to that position, with the same
labels, groups, folds, C grid, permutations and metrics as the probe (it is `probes.sweep` run on token counts).
The grid gains per cell `text_auroc` (+ `_lo`/`_hi`, the same per layer: text does not depend on the layer) and the
white-box gain `gain` = probe AUROC - text AUROC with `gain_lo`/`gain_hi` from a paired group bootstrap (the same
resampled groups for both scorings). The check `label_in_text` fires where the text alone reaches AUROC >= 0.95.

The caller supplies the token strings (probes reads no tokenizer): `texts[i][j]` lists the prompt tokens of sample
i that are visible at position `grid.positions[j]` (for a CODI latent or response position: the whole question),
or None where sample i has no such position.

    >>> import numpy as np, probes
    >>> rng = np.random.default_rng(0)
    >>> y, g = np.tile([0, 1], 20), np.repeat(np.arange(20), 2)
    >>> words = [["please", "lie" if yi else "tell", "q%d" % gi] for yi, gi in zip(y, g)]
    >>> texts = [[w[:2], w] for w in words]                          # two positions: after word 2, after word 3
    >>> acts = rng.normal(size=(40, 1, 2, 8)) + 3.0 * y[:, None, None, None]
    >>> grid = probes.sweep(acts, labels=y, groups=g, positions=["w1", "w2"], n_permutations=0, progress=False)
    >>> grid = probes.text_baseline(grid, texts)
    >>> float(grid.sel("text_auroc", layer=0, position="w2"))
    1.0
    >>> [w.kind for w in grid.warnings]
    ['label_in_text']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from jaxtyping import Bool, Float

from argcheck import BadArgument, check_float
from probes import checks, metrics
from probes.grid import ProbeGrid
from probes.inputs import check_fit_args, check_grid
from probes.methods import DEFAULT_CS
from probes.sweep import sweep

Texts = Sequence[Sequence[Sequence[str] | None]]


def bag_of_words(texts: Texts) -> tuple[Float[np.ndarray, "sample position vocab"],
                                        Bool[np.ndarray, "sample position"], list[str]]:
    """Token counts per sample and position: (counts [n, P, V] float32, valid [n, P], vocabulary [V]).

    `texts[i][j]` is a list of token strings or None (no such position: counts 0, valid False). The vocabulary is
    every token seen, in sorted order (it uses no labels, so building it on all samples leaks nothing).

    >>> X, valid, vocab = bag_of_words([[["a"], ["a", "b", "a"]], [["b"], None]])
    >>> vocab, X[0, 1].tolist(), valid.tolist()
    (['a', 'b'], [2.0, 1.0], [[True, True], [True, False]])
    """
    n = len(texts)
    P = len(texts[0]) if n else 0
    for i, row in enumerate(texts):
        if len(row) != P:
            raise ValueError(f"texts[{i}] has {len(row)} positions, texts[0] has {P}: give every sample one token "
                             f"list (or None) per probed position")
        for j, toks in enumerate(row):
            if isinstance(toks, str):
                raise TypeError(f"texts[{i}][{j}] is one string; pass the list of token strings visible at that "
                                f"position (e.g. tokenizer.convert_ids_to_tokens(ids[:k + 1]))")
    vocab = sorted({t for row in texts for toks in row if toks is not None for t in toks})
    index = {t: k for k, t in enumerate(vocab)}
    X = np.zeros((n, P, len(vocab)), np.float32)
    valid = np.zeros((n, P), bool)
    for i, row in enumerate(texts):
        for j, toks in enumerate(row):
            if toks is None:
                continue
            valid[i, j] = True
            for t in toks:
                X[i, j, index[t]] += 1
    return X, valid, vocab


def text_baseline(grid: ProbeGrid, texts: Texts, n_permutations: int | None = None,
                  n_bootstrap: int | None = None, threshold: float = 0.95, device: str | None = None,
                  progress: bool = False) -> ProbeGrid:
    """The grid with the text-only baseline and the white-box gain beside every cell (see module docstring).

    grid: a classification `probes.sweep` result; texts: per sample, per grid position, the visible prompt tokens
    (None where the position does not exist; it must be None exactly where the probe scored no sample).
    The text sweep reuses the grid's folds, seed, C grid (DEFAULT_CS if the probe was not "logreg"), tolerances,
    held-out part and, unless given, its `n_permutations` and `n_bootstrap`, so its splits are the probe's.
    Adds metrics text_auroc, text_auroc_lo, text_auroc_hi, text_recall_at_1pct_fpr (with test_size also
    text_test_auroc/_lo/_hi), gain, gain_lo, gain_hi (from the CV scores); the gain CI is the paired
    group-bootstrap interval, widened like the AUROC CIs to gain +- 1.96 x sqrt(sd_probe_null^2 + sd_text_null^2)
    when both sweeps ran >= 10 permutations. Returns a new grid with
    the finding `label_in_text` (text AUROC >= `threshold`) added to its warnings.

    >>> import numpy as np, probes
    >>> y, g = np.tile([0, 1], 20), np.repeat(np.arange(20), 2)
    >>> texts = [[["q%d" % gi, "lie" if yi else "tell"]] for yi, gi in zip(y, g)]     # one position, "last"
    >>> acts = np.random.default_rng(0).normal(size=(40, 3, 1, 8))                   # noise: no label inside
    >>> grid = probes.text_baseline(probes.sweep(acts, labels=y, groups=g, positions=["last"],
    ...                                          n_permutations=0, progress=False), texts)
    >>> t = grid.table()                                      # columns auroc, text_auroc, gain, gain_lo, gain_hi
    >>> bool((t.text_auroc == 1.0).all() and (t.gain_hi < 0).all())
    True
    """
    check_grid("grid", grid)
    check_fit_args(n_permutations=n_permutations, n_bootstrap=n_bootstrap, device=device, progress=progress,
                   inherit=True)
    check_float("threshold", threshold, min=0.5, max=1, fix="use e.g. threshold=0.95 (text AUROC that flags a cell)")
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise BadArgument("texts", texts, "must be a list (one entry per sample) of lists (one per grid position) "
                          "of token strings or None", "see probes.text_baseline's docstring")
    cfg = grid.config
    if cfg.get("regression") or cfg.get("method") == "multiclass" or "auroc" not in grid.metrics:
        raise ValueError(f"the text baseline compares AUROCs: this grid is a {cfg.get('method')!r} sweep; pass a "
                         f"binary classification sweep (method='logreg', 'diffmean', 'lda' or 'lat')")
    n, L, P = len(grid.y), len(grid.layers), len(grid.positions)
    if len(texts) != n:
        raise ValueError(f"texts has {len(texts)} samples, the grid {n}: pass one entry per sample, in the order "
                         f"of the sweep's samples")
    if n and len(texts[0]) != P:
        raise ValueError(f"texts[0] has {len(texts[0])} positions, the grid {P} ({grid.positions[:6]}...): pass "
                         f"one token list per grid position")
    X, valid, vocab = bag_of_words(texts)
    _check_same_samples(grid, valid)
    _check_no_shared_text(texts, grid.groups)
    n_perm = int(cfg.get("n_permutations", 0)) if n_permutations is None else n_permutations
    n_boot = int(cfg.get("n_bootstrap", 1000)) if n_bootstrap is None else n_bootstrap
    seed = int(cfg.get("seed", 0))
    Cs = tuple(cfg["Cs"]) if cfg.get("method") == "logreg" and cfg.get("Cs") else DEFAULT_CS
    tg = sweep(X[:, None], labels=grid.y, groups=grid.groups, layers=[0], positions=grid.positions, valid=valid,
               folds=int(cfg.get("folds", 5)), Cs=Cs, inner_folds=int(cfg.get("inner_folds", 3)),
               n_permutations=n_perm, n_bootstrap=n_boot, test_size=cfg.get("test_size"), seed=seed,
               device=device, tol=float(cfg.get("tol", 1e-4)), search_tol=float(cfg.get("search_tol", 1e-3)),
               max_iter=int(cfg.get("max_iter", 500)), progress=progress)
    if list(tg.config["test_idx"]) != list(cfg.get("test_idx", [])):
        raise AssertionError("the text sweep held out other samples than the probe sweep: pass the grid of a sweep "
                             "on these samples, in this order")
    new = {f"text_{k}": np.broadcast_to(tg.metrics[k], (L, P)).copy()
           for k in ("auroc", "auroc_lo", "auroc_hi", "recall_at_1pct_fpr", "test_auroc", "test_auroc_lo",
                     "test_auroc_hi") if k in tg.metrics}
    new.update(_gain(grid, tg, n_boot, seed))
    findings = checks.label_in_text(tg.metrics["auroc"][0], grid.layers, grid.positions, threshold)
    config = {**cfg, "text_baseline": {"features": "bag of words over the prompt tokens up to each position",
                                       "vocabulary_size": len(vocab), "Cs": list(Cs), "n_permutations": n_perm,
                                       "n_bootstrap": n_boot, "threshold": threshold,
                                       "findings": [w.to_dict() for w in tg.warnings]}}
    return dataclasses.replace(grid, metrics={**grid.metrics, **new}, warnings=[*grid.warnings, *findings],
                               config=config)


def _gain(grid: ProbeGrid, tg: ProbeGrid, n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """gain = probe AUROC - text AUROC per cell, CI from the paired group bootstrap of the CV scores (same
    resampled groups for both), widened by the two refitted nulls' spread like the sweep's AUROC CIs."""
    L, P, n = grid.scores.shape
    cv = ~np.isin(np.arange(n), grid.config.get("test_idx", []))
    probe = np.where(cv, grid.scores.reshape(L * P, n), np.nan)
    text = np.where(cv, tg.scores.reshape(P, n), np.nan)
    bp = metrics.group_bootstrap_replicates(probe, grid.y, grid.groups, n_boot, seed).reshape(L, P, n_boot)
    bt = metrics.group_bootstrap_replicates(text, grid.y, grid.groups, n_boot, seed)          # same draws
    diff = bp - bt[None]
    gain = grid.metrics["auroc"] - tg.metrics["auroc"]
    with np.errstate(all="ignore"):
        lo, hi = metrics.nan_quantile(diff, 0.025, axis=-1), metrics.nan_quantile(diff, 0.975, axis=-1)
    sd_p, sd_t = grid.metrics.get("null_auroc_sd"), tg.metrics.get("null_auroc_sd")
    if sd_p is not None and sd_t is not None and min(grid.config.get("n_permutations", 0),
                                                     tg.config.get("n_permutations", 0)) >= 10:
        sd = np.sqrt(sd_p ** 2 + sd_t ** 2)
        ok = np.isfinite(sd)
        lo = np.where(ok, np.fmin(lo, gain - 1.96 * sd), lo)
        hi = np.where(ok, np.fmax(hi, gain + 1.96 * sd), hi)
    return {"gain": gain, "gain_lo": np.clip(lo, -1, 1), "gain_hi": np.clip(hi, -1, 1)}


def _check_same_samples(grid: ProbeGrid, valid: np.ndarray) -> None:
    """The text must exist exactly where the probe scored samples (else the two sweeps split differently)."""
    for j, p in enumerate(grid.positions):
        scored = np.isfinite(grid.scores[:, j]).any(0)
        if scored.any() and not np.array_equal(scored, valid[:, j]):
            raise ValueError(f"position {p!r}: texts give tokens for {int(valid[:, j].sum())} samples but the probe "
                             f"scored {int(scored.sum())} (e.g. sample {int(np.flatnonzero(scored != valid[:, j])[0])}"
                             f"): pass None exactly where the position does not exist for a sample")


def _check_no_shared_text(texts: Texts, groups: np.ndarray) -> None:
    """Samples of different groups with the same bag of words at every position (the same text features) would sit
    on both sides of a split (the sweep refuses such duplicates; this says it in terms of the text)."""
    seen: dict[tuple, tuple[int, str]] = {}
    keys = [tuple(None if t is None else tuple(sorted(t)) for t in row) for row in texts]
    if len(set(keys)) <= 1:
        return                                              # one text for all: nothing to read, nothing leaks
    for i, (k, gi) in enumerate(zip(keys, np.asarray(groups).astype(str).tolist())):
        j, gj = seen.setdefault(k, (i, gi))
        if gj != gi:
            raise ValueError(f"samples {j} and {i} are in different groups ({gj!r}, {gi!r}) but have the same prompt "
                             f"tokens (as a bag of words) at every position: a text classifier would see one in "
                             f"training and the other in test; give such samples the same group (in the probe sweep "
                             f"too) or probe positions where their texts differ")
