"""`probes.sweep`: one probe per (layer, position) cell, fitted for all cells together, with honest statistics.

    >>> import numpy as np, probes
    >>> rng = np.random.default_rng(0)
    >>> y, g = np.tile([0, 1], 30), np.repeat(np.arange(30), 2)            # 30 groups (pairs), both labels each
    >>> acts = rng.normal(size=(60, 2, 1, 8)).astype(np.float32)           # [sample, layer, position, d]
    >>> acts[:, 1, 0, 0] += 3 * y                                           # the label is written at layer 1
    >>> grid = probes.sweep(acts, labels=y, groups=g, n_permutations=20, progress=False)
    >>> grid.best(), grid.sel("auroc", 1, "0") > 0.85, abs(grid.sel("auroc", 0, "0") - 0.5) < 0.2
    ((1, '0'), True, True)
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from argcheck import check_choice
from probes import checks, metrics
from probes.fitting import fit_chunk_logreg, fit_chunk_ridge, inner_masks_for
from probes.grid import Finding, ProbeGrid
from probes.inputs import check_finite, check_fit_args, check_sweep_inputs, resolve
from probes.methods import DEFAULT_CS
from probes.multiclass import DEFAULT_C, fit_chunk_multiclass, multiclass_metrics
from probes.parallel import resolve_workers, run_jobs
from probes.splits import check_splits, group_kfold, heldout_split, permute_labels

DEFAULT_ALPHAS = (1e0, 1e1, 1e2, 1e3, 1e4, 1e5)
METHODS = ("logreg", "ridge", "diffmean", "lda", "lat", "multiclass")


def sweep(data, target: str = "label", method: str = "logreg", labels=None, groups=None, layers=None,
          positions=None, folds: int = 5, Cs: tuple[float, ...] | None = None, inner_folds: int = 3,
          n_permutations: int = 100, n_bootstrap: int = 1000, control=None, fpr_control=None,
          test_size: float | None = None, valid=None, seed: int = 0, device: str | None = None, chunk: int = 4,
          tol: float = 1e-5, search_tol: float = 1e-5, null_tol: float = 1e-3, max_iter: int = 1000,
          n_jobs: int | None = None, progress: bool = True) -> ProbeGrid:
    """Fit and evaluate a probe at every (layer, position) cell; returns a ProbeGrid.

    data: an ActivationCache (labels from column `target`, groups from column "group", cells from
    `layers`/`positions`, which select) or an array [sample, layer, position, d] / [sample, d] with `labels=` and
    `groups=` (then `layers`/`positions` name the axes). method: "logreg" (nested-CV C from `Cs`, per-fold
    standardisation, batched in torch), "ridge" (continuous target; `Cs` are ridge alphas), "diffmean", "lda",
    "lat" (scikit-learn-style estimators from probes.methods, fitted cell by cell), "multiclass" (a many-valued
    target coded 0..K-1: softmax regression at C=`Cs[0]` (default 1), accuracy with group-bootstrap CIs, a
    permutation null and chance = 1/K; see probes.multiclass).
    Splits are `folds` group-aware stratified folds; `n_permutations` group-level label shuffles are refitted
    for the p-value; `control` (array or column; default one extra shuffle) gives selectivity = auroc -
    control_auroc; `fpr_control` (bool mask over the samples; default half of the groups) sets the threshold for
    recall at 1% FPR. CIs: group-bootstrap percentile interval of the pooled held-out AUROC, widened to +-1.96 x the SD
    of the refitted permutation null when there are >= 10 permutations (CV scores are not independent draws, so
    the bootstrap alone is too narrow). `test_size` holds out groups: metrics come from CV on the rest,
    `test_auroc` from the held-out part (use `probes.pick_best(grid)` to pick on CV and report test).
    Solver tolerances (logreg): `tol` for the fit on the real labels, `search_tol` for the inner C search (tight:
    the choice of C hangs on single pairs of a validation AUROC; at 1e-5 the chosen C and the AUROC match
    scikit-learn's exact nested fit, tests/probes/test_reference.py), `null_tol` for the permutation refits (looser:
    at 1e-3 moves their held-out AUROC by <= 0.0018 on real residuals, benchmarks/results/probes.md). The inner C
    search runs on the features standardised in the outer training fold, like `Pipeline(StandardScaler,
    LogisticRegressionCV)` in scikit-learn (`probes.reference` is that analysis, cell by cell).
    `n_jobs`: chunks of cells fitted at once in threads, each single-threaded (probes.parallel); default on CPU for
    "logreg" and "ridge": torch's thread count with >= 200 samples, else one chunk at a time at one thread (both
    faster than torch's own threads, probes.parallel); 1 on a GPU and for the other methods unless given
    ("multiclass" always runs one chunk at a time; n_jobs=1 keeps the caller's thread counts). The numbers do not
    depend on it: n_jobs=2 gives the same grid as n_jobs=1 at one torch thread (tests/probes/test_sweep.py).
    `chunk`: cells fitted together in one batch (4 on this project's 2-core CPU: the batches of two workers stay in
    its caches; 64 cells of the seed-sized grid took 17.3 s in chunks of 4 and 20.3 s in chunks of 8; on a GPU pass
    more).

    >>> import interp, probes
    >>> task = probes.tasks.load("deception-arith", n=24, seed=0)
    >>> c = interp.cache(interp.load_model("tiny-llama"), task, positions=["last"], progress=False)
    >>> grid = probes.sweep(c, target="label", folds=3, n_permutations=0, progress=False)   # a cache: columns named
    >>> grid.layers, grid.positions
    ([0, 1, 2], ['last'])
    """
    check_choice("method", method, METHODS, fix="'logreg' for a binary target, 'ridge' for a number, 'multiclass'")
    check_fit_args(folds=folds, Cs=Cs, inner_folds=inner_folds, n_permutations=n_permutations, n_bootstrap=n_bootstrap,
                   seed=seed, chunk=chunk, tol=tol, search_tol=search_tol, max_iter=max_iter, device=device,
                   progress=progress, test_size=test_size, target=target, n_jobs=n_jobs, method=method)
    regression = method == "ridge"
    if method == "multiclass":
        Cs = tuple(Cs) if Cs is not None else (DEFAULT_C,)
    else:
        Cs = tuple(Cs) if Cs is not None else (DEFAULT_ALPHAS if regression else DEFAULT_CS)
    if not Cs or min(Cs) <= 0:
        raise ValueError(f"Cs={Cs}: pass positive regularisation values")
    inp = resolve(data, target=target, labels=labels, groups=groups, layers=layers, positions=positions,
                  valid=valid, control=control, regression=regression, multiclass=method == "multiclass")
    check_sweep_inputs(inp, folds, target if labels is None else None)
    if method == "multiclass":
        return _sweep_multiclass(inp, target if labels is None else "labels", folds, Cs[0], n_permutations,
                                 n_bootstrap, seed, chunk, max_iter, progress)
    y, g, L, P, n = inp.y, inp.groups, len(inp.layers), len(inp.positions), len(inp.y)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    workers, single = _threading(n_jobs, dev, n, method)
    rng = np.random.default_rng(seed)
    findings = checks.data_findings(y, g, folds, regression)

    ident, zero_var = _prepass(inp, regression, workers)

    # ---- splits (per valid-sample pattern), permutations, control, calibration set
    test_idx = np.array([], dtype=int)
    base = np.arange(n)
    if test_size:
        dev_idx, test_idx = heldout_split(y, g, test_size=test_size, seed=seed, stratified=not regression)
        base = dev_idx
    perms = np.stack([permute_labels(y, g, rng) for _ in range(n_permutations)]) if n_permutations else \
        np.zeros((0, n), y.dtype)
    ctrl = inp.control if inp.control is not None else permute_labels(y, g, np.random.default_rng(seed + 7919))
    perms_all = np.concatenate([perms, ctrl[None].astype(perms.dtype)])           # last row: control task
    calib = _calibration_mask(fpr_control, inp, g, seed)

    scores = np.full((L, P, n), np.nan, np.float32)
    null = np.full((L * P, len(perms_all), n), np.nan, np.float32)
    extra = {k: np.full((L, P), np.nan) for k in ("train_auroc", "log10_C", "auroc_fold_std")}
    not_conv, skipped = np.zeros((L, P), bool), np.zeros((L, P), bool)
    plans, cfg_splits, skipped_pos = _plans(inp, base, test_idx, folds, seed, regression, inner_folds, Cs, method)
    skipped[:, skipped_pos] = True

    def jobs():                                     # one chunk of cells of one layer; layers read here, lazily
        for li in range(L):
            X = inp.read_layer(li) if plans else None
            for pis, splits, inner in plans:
                for j in range(0, len(pis), chunk):
                    yield li, pis[j:j + chunk], splits, inner, X

    def fit(job):
        li, cp, splits, inner, X = job
        return _fit(method, X, cp, splits, y, g, perms_all, Cs, inner_folds, seed, folds,
                    (tol, search_tol, null_tol), max_iter, dev, inner)

    bar = tqdm(total=L * P, desc=f"probe sweep ({method})", disable=not progress)
    bar.update(int(skipped.sum()))
    for (li, cp, *_), out in run_jobs(fit, jobs(), workers, single):
        for k, pi in enumerate(cp):
            scores[li, pi] = out["scores"][k]
            null[li * P + pi] = out["null"][k]
            extra["train_auroc"][li, pi] = out["train_auroc"][k]
            extra["log10_C"][li, pi] = out["log10_C"][k]
            extra["auroc_fold_std"][li, pi] = np.std(out["fold_auroc"][k][:folds])
            not_conv[li, pi] = out["not_converged"][k]
        bar.update(len(cp))
    bar.close()

    m = _metrics(scores, null, y, g, test_idx, calib, regression, n_bootstrap, seed, extra, perms_all)
    with warnings.catch_warnings():  # skipped cells have no score at all: their spread is NaN, not a warning
        warnings.filterwarnings("ignore", message="Degrees of freedom <= 0", category=RuntimeWarning)
        const_pred = np.nanstd(np.where(np.isin(np.arange(n), test_idx), np.nan, scores), axis=-1) < 1e-7
    findings += checks.cell_findings(ident, zero_var, const_pred & ~skipped, inp.layers, inp.positions)
    findings += checks.grid_findings(m, inp.layers, inp.positions, not_conv, skipped)
    findings += checks.shuffle_findings(y, g, m, inp.control is not None) if n_permutations or inp.control is None \
        else []
    config = {"method": method, "target": target if labels is None else "labels", "folds": folds,
              "inner_folds": inner_folds, "Cs" if not regression else "alphas": list(Cs),
              "n_permutations": n_permutations, "n_bootstrap": n_bootstrap, "seed": seed, "tol": tol,
              "search_tol": search_tol, "null_tol": null_tol,
              "max_iter": max_iter, "test_size": test_size, "test_idx": test_idx.tolist(),
              "regression": regression, "control": "given" if inp.control is not None else "group-level shuffle",
              "fold_test_sizes": cfg_splits, "scaling": "standardised inside each training fold", **inp.meta}
    return ProbeGrid(layers=inp.layers, positions=inp.positions, metrics=m, scores=scores, y=y, groups=g,
                     warnings=findings, config=config)


def _sweep_multiclass(inp, target: str, folds: int, C: float, n_permutations: int, n_bootstrap: int, seed: int,
                      chunk: int, max_iter: int, progress: bool) -> ProbeGrid:
    """The multiclass branch of `sweep` (see probes.multiclass): same inputs, splits, permutations and checks."""
    y, g, L, P, n = inp.y, inp.groups, len(inp.layers), len(inp.positions), len(inp.y)
    k = int(y.max()) + 1
    rng = np.random.default_rng(seed)
    perms = [permute_labels(y, g, rng) for _ in range(n_permutations)]
    ctrl = inp.control if inp.control is not None else permute_labels(y, g, np.random.default_rng(seed + 7919))
    perms_all = np.stack(perms + [np.asarray(ctrl, np.int64)])
    ident, zero_var = _prepass(inp, False)
    pred = np.full((L, P, n), np.nan)
    null = np.full((L, P, len(perms_all), n), np.nan)
    train = np.full((L, P), np.nan)
    skipped = np.zeros((L, P), bool)
    bar = tqdm(total=L * P, desc="probe sweep (multiclass)", disable=not progress)
    patterns: dict[bytes, list[int]] = {}
    for pi in range(P):
        patterns.setdefault(inp.valid[:, pi].tobytes(), []).append(pi)
    for key, pis in patterns.items():
        mask = np.frombuffer(key, dtype=bool)
        idx = np.flatnonzero(mask)
        splits = _make_splits(idx, None, y, g, folds, seed, False, mask, 0)
        if splits is None:
            skipped[:, pis] = True
            bar.update(L * len(pis))
            continue
        for li in range(L):
            X = inp.read_layer(li)
            for j in range(0, len(pis), chunk):
                cp = pis[j:j + chunk]
                Xc = torch.as_tensor(np.ascontiguousarray(X[:, cp].transpose(1, 0, 2)))
                out = fit_chunk_multiclass(Xc, y, splits, perms_all, k, C=C, max_iter=max_iter)
                pred[li, cp], null[li, cp], train[li, cp] = out["pred"], out["null"], out["train_accuracy"]
                bar.update(len(cp))
    bar.close()
    m = multiclass_metrics(pred.reshape(L * P, n), null.reshape(L * P, len(perms_all), n), train.reshape(-1), y,
                           perms_all, g, k, n_bootstrap, seed)
    m = {name: v.reshape(L, P) for name, v in m.items()}
    findings: list[Finding] = checks.shuffle_findings(y, g, m, inp.control is not None)  # no binary balance checks
    findings += checks.cell_findings(ident, zero_var, np.zeros((L, P), bool), inp.layers, inp.positions)
    config = {"method": "multiclass", "target": target, "folds": folds, "C": C, "n_classes": k,
              "n_permutations": n_permutations, "n_bootstrap": n_bootstrap, "seed": seed, "max_iter": max_iter,
              "regression": False, "control": "given" if inp.control is not None else "group-level shuffle",
              "skipped_cells": int(skipped.sum()), "scaling": "standardised inside each training fold", **inp.meta}
    return ProbeGrid(layers=inp.layers, positions=inp.positions, metrics=m, scores=pred.astype(np.float32), y=y,
                     groups=g, warnings=findings, config=config)


def _threading(n_jobs: int | None, dev: torch.device, n: int, method: str) -> tuple[int, bool]:
    """(chunks at once, single-threaded inside?) for `sweep` (its docstring says why)."""
    torch_methods = method in ("logreg", "ridge")
    workers = resolve_workers(n_jobs, dev, n) if n_jobs is not None or torch_methods else 1
    return workers, dev.type == "cpu" and (workers > 1 or (n_jobs is None and torch_methods))


def _plans(inp, base, test_idx, folds, seed, regression, inner_folds, Cs, method):
    """Per valid-sample pattern of positions: (positions, outer splits, inner masks); the fold sizes for the config;
    the positions skipped (too few valid samples for the folds)."""
    y, g = inp.y, inp.groups
    patterns: dict[bytes, list[int]] = {}
    for pi in range(len(inp.positions)):
        patterns.setdefault(inp.valid[:, pi].tobytes(), []).append(pi)
    cfg_splits: dict[str, list[int]] = {}
    plans, skipped = [], []
    for key, pis in patterns.items():
        idx = base[np.frombuffer(key, dtype=bool)[base]]
        splits = _make_splits(idx, test_idx if len(test_idx) else None, y, g, folds, seed, regression,
                              np.frombuffer(key, dtype=bool), inner_folds if len(Cs) > 1 else 0)
        if splits is None:
            skipped += pis
            continue
        cfg_splits[",".join(inp.positions[p] for p in pis[:3])] = [len(te) for _, te in splits]
        inner = inner_masks_for(splits, y, g, inner_folds, seed) if method == "logreg" and len(Cs) > 1 else None
        plans.append((pis, splits, inner))
    return plans, cfg_splits, skipped


def _calibration_mask(fpr_control, inp, g: np.ndarray, seed: int) -> np.ndarray:
    if fpr_control is not None:
        mask = np.asarray(fpr_control, dtype=bool)
        if mask.shape != g.shape:
            raise ValueError(f"fpr_control has shape {mask.shape}; pass a bool mask over the {len(g)} samples")
        return mask
    ug = np.unique(np.asarray(g).astype(str))
    half = set(np.random.default_rng(seed + 13).permutation(ug)[: len(ug) // 2].tolist())
    return np.array([str(x) in half for x in g])


def _prepass(inp, regression: bool, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Checks before any fitting: finite activations (raises), duplicate samples across groups (raises), and per
    cell [L, P] the identical-features fraction (NaN for regression) and whether all features are constant.
    Layers are checked `workers` at a time (probes.parallel)."""
    y, g, L, P, n = inp.y, inp.groups, len(inp.layers), len(inp.positions), len(inp.y)
    fp_all = np.zeros(n)
    ident = np.full((L, P), np.nan)
    zero_var = np.zeros((L, P), bool)

    def check(job):
        li, X = job
        check_finite(X, inp.valid, inp.layers[li], inp.positions)
        fp = checks.fingerprint(X, seed=li)                                      # [n, P]
        zv, idf = np.zeros(P, bool), np.full(P, np.nan)
        for pi in range(P):
            v = inp.valid[:, pi]
            zv[pi] = bool(np.all(X[v, pi] == X[v, pi][:1]))
            if not regression:
                idf[pi] = checks.identical_fraction(X[v, pi], y[v], g[v], fp[v, pi])
        return np.where(inp.valid, fp, 0).sum(1), zv, idf

    for (li, _), (fp_sum, zv, idf) in run_jobs(check, ((li, inp.read_layer(li)) for li in range(L)), workers,
                                                workers > 1):
        fp_all += fp_sum
        zero_var[li], ident[li] = zv, idf
    dups = checks.duplicate_samples(fp_all, g)
    if dups:
        raise ValueError(f"{len(dups)} pair(s) of samples in different groups have identical activations at every "
                             f"cell (e.g. samples {dups[:3]}): they would sit on both sides of a split. Drop the "
                             f"duplicates or give them the same group")
    return ident, zero_var


def _make_splits(idx, test_idx, y, g, folds, seed, regression, valid_mask, inner_folds):
    """Outer splits as indices into the FULL sample axis; a final dev->test split when test_idx is given.

    None (the cells are skipped and reported as `skipped_cells`) when the valid samples cannot fill the outer folds
    or a training part has fewer groups than the nested C search (when there is more than one C) needs (sparse
    positions such as late `resp_*`)."""
    yi = y[idx]
    if len(idx) < 2 * folds or (not regression and len(np.unique(yi)) < 2):
        return None
    try:
        local = group_kfold(yi, g[idx], k=folds, seed=seed, stratified=not regression)
    except ValueError:
        return None
    splits = [(idx[tr], idx[te]) for tr, te in local]
    if min(len(np.unique(g[tr])) for tr, _ in splits) < inner_folds:
        return None
    check_splits(splits, g)
    if test_idx is not None:
        te = test_idx[valid_mask[test_idx]]
        splits.append((idx, te))
        check_splits(splits[-1:], g)
    return splits


def _fit(method, X, cp, splits, y, g, perms, Cs, inner_folds, seed, folds, tols, max_iter, dev, inner):
    Xc = torch.as_tensor(np.ascontiguousarray(X[:, cp].transpose(1, 0, 2)), device=dev)     # [c, n, d]
    if method == "logreg":
        tol, search_tol, null_tol = tols
        return fit_chunk_logreg(Xc, y, g, splits, perms, Cs, inner_folds, seed, folds, tol, max_iter,
                                search_tol=search_tol, inner_masks=inner, null_tol=null_tol)
    if method == "ridge":
        return fit_chunk_ridge(Xc.double(), y, g, splits, perms, Cs, inner_folds, seed, folds)
    from probes.methods import fit_chunk_estimator
    return fit_chunk_estimator(method, Xc.cpu().numpy(), y, g, splits, perms, folds)


def _metrics(scores, null, y, g, test_idx, calib, regression, n_bootstrap, seed, extra, perms) -> dict:
    L, P, n = scores.shape
    is_test = np.isin(np.arange(n), test_idx)
    flat = scores.reshape(L * P, n).astype(np.float64)
    cv = np.where(is_test[None], np.nan, flat)
    out: dict[str, np.ndarray] = {}
    if regression:
        ok = np.isfinite(cv)
        r2, r = np.full(L * P, np.nan), np.full(L * P, np.nan)
        for i in range(L * P):
            o = ok[i]
            if o.sum() > 2:
                yy, ss = y[o], cv[i, o]
                r2[i] = 1 - np.sum((yy - ss) ** 2) / max(np.sum((yy - yy.mean()) ** 2), 1e-30)
                r[i] = np.corrcoef(yy, ss)[0, 1] if np.std(ss) > 0 else np.nan
        out["r2"], out["pearson_r"] = r2, r
        null_r2 = np.full(null[:, :-1].shape[:2], np.nan)
        for i in range(L * P):              # like r2 above: over the samples scored at this cell (not held out)
            nk = null[i, :-1].astype(np.float64)                                  # [perm, n]
            o = np.isfinite(nk)
            if o.sum(1).max(initial=0) > 2:
                yp = np.where(o, perms[:-1], np.nan)
                ss_tot = np.nansum((yp - np.nanmean(yp, 1, keepdims=True)) ** 2, 1)
                null_r2[i] = np.where(o.sum(1) > 2, 1 - np.nansum((nk - yp) ** 2, 1) / np.maximum(ss_tot, 1e-30),
                                      np.nan)
        out["p_value"] = metrics.permutation_p(r2, null_r2) if null.shape[1] > 1 else np.full(L * P, np.nan)
        out["p_corrected"] = metrics.max_t_p(r2, null_r2) if null.shape[1] > 1 else np.full(L * P, np.nan)
        out["train_r2"], out["log10_alpha"] = extra.pop("train_auroc").reshape(-1), extra.pop("log10_C").reshape(-1)
        out["r2_fold_std"] = extra.pop("auroc_fold_std").reshape(-1)
    else:
        out["auroc"] = metrics.auroc(np.nan_to_num(cv, nan=0), y, np.isfinite(cv).astype(float))
        out["auroc_lo"], out["auroc_hi"] = metrics.group_bootstrap_auroc(cv, y, g, n_bootstrap, seed)
        out.update(metrics.f1_accuracy_confusion(cv, y))
        null_auc = _null_auroc(null, perms)
        nulls = null_auc[:, :-1]
        has_null = np.isfinite(nulls).any(1)
        out["p_value"] = np.where(has_null, metrics.permutation_p(out["auroc"], nulls), np.nan)
        out["p_corrected"] = np.where(has_null, metrics.max_t_p(out["auroc"], nulls), np.nan)   # same perms per cell
        safe = np.where(np.isfinite(nulls), nulls, 0).sum(1) / np.maximum(np.isfinite(nulls).sum(1), 1)
        out["null_auroc_mean"] = np.where(has_null, safe, np.nan)
        # Held-out scores of CV folds are not independent draws: the group bootstrap of fixed scores alone is too
        # narrow (pure noise gave CIs excluding 0.5 in 4 of 20 cells). Widen to the refitted null's spread.
        sd_null = np.sqrt(np.where(np.isfinite(nulls), (nulls - safe[:, None]) ** 2, 0).sum(1)
                          / np.maximum(np.isfinite(nulls).sum(1) - 1, 1))
        widen = has_null & (np.isfinite(nulls).sum(1) >= 10)
        out["auroc_lo"] = np.where(widen, np.minimum(out["auroc_lo"], out["auroc"] - 1.96 * sd_null), out["auroc_lo"])
        out["auroc_hi"] = np.where(widen, np.maximum(out["auroc_hi"], out["auroc"] + 1.96 * sd_null), out["auroc_hi"])
        out["auroc_lo"], out["auroc_hi"] = np.clip(out["auroc_lo"], 0, 1), np.clip(out["auroc_hi"], 0, 1)
        out["null_auroc_sd"] = np.where(has_null, sd_null, np.nan)
        out["control_auroc"] = null_auc[:, -1]
        out["selectivity"] = out["auroc"] - out["control_auroc"]
        out["recall_at_1pct_fpr"] = metrics.recall_at_fpr(cv, y, calib, 0.01)
        out["train_auroc"] = extra.pop("train_auroc").reshape(-1)
        out["gap"] = out["train_auroc"] - out["auroc"]
        out["log10_C"] = extra.pop("log10_C").reshape(-1)
        out["auroc_fold_std"] = extra.pop("auroc_fold_std").reshape(-1)
        if len(test_idx):
            ts = np.where(is_test[None], flat, np.nan)
            out["test_auroc"] = metrics.auroc(np.nan_to_num(ts, nan=0), y, np.isfinite(ts).astype(float))
            out["test_auroc_lo"], out["test_auroc_hi"] = metrics.group_bootstrap_auroc(ts, y, g, n_bootstrap, seed)
    out["n_test"] = np.isfinite(cv).sum(1).astype(float)
    return {k: v.reshape(L, P) for k, v in out.items()}


def _null_auroc(null: np.ndarray, perms: np.ndarray, chunk: int = 16) -> np.ndarray:
    """AUROC of every refit [cells, perm, n] against its own relabeling perms [perm, n] (NaN scores skipped)."""
    out = np.full(null.shape[:2], np.nan)
    yp = torch.as_tensor(perms, dtype=torch.float64)
    for i in range(0, len(null), chunk):
        s = torch.as_tensor(null[i:i + chunk], dtype=torch.float64)
        ok = torch.isfinite(s)
        if not bool(ok.any()):
            continue
        out[i:i + chunk] = metrics.auroc_tensor(torch.where(ok, s, torch.zeros_like(s)), yp.expand_as(s),
                                            ok.to(torch.float64)).numpy()
    return out
