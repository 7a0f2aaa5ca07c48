"""`probes.transfer`: fit a probe per (layer, position) cell on one set of activations and score another with no
refit; the threshold is fixed at 1% false positives on a control set's negatives (the Apollo protocol).

Per cell the probe is the sweep's logistic regression (standardised on the training rows, C by inner group CV on
the training set) fitted on ALL training samples; the test set is only scored. Metrics on the test set: auroc with
auroc_lo/auroc_hi (group-bootstrap percentile CI over the test groups: the scores come from one fixed probe, so
the bootstrap needs no CV widening; it covers the sampling of the test set, not the variance of the fit),
accuracy/f1/confusion at the probe's own threshold 0, and with a control set threshold_1pct_fpr,
recall_at_1pct_fpr and test_fpr_at_threshold (the false-positive rate that threshold gives on the test negatives),
plus control_auroc when the control set holds both classes; train_auroc and log10_C describe the fit. The control
set may hold only negatives (Apollo's control data is all honest): its negatives set the threshold.

    >>> import numpy as np, probes
    >>> rng = np.random.default_rng(0)
    >>> w = rng.normal(size=16)
    >>> def make(n):                                                 # [sample, layer, position, d], label along w
    ...     y = np.tile([0, 1], n // 2)
    ...     return rng.normal(size=(n, 1, 1, 16)) + 2.0 * np.outer(y - 0.5, w).reshape(n, 1, 1, 16), y
    >>> (a, ya), (b, yb), (c, yc) = make(80), make(80), make(80)
    >>> grid = probes.transfer(a, ya, np.arange(80), b, yb, np.arange(80), control=c, control_y=yc)
    >>> bool(grid.sel("auroc", 0, "0") > 0.95 and grid.sel("recall_at_1pct_fpr", 0, "0") > 0.5)
    True
"""

from __future__ import annotations

import numpy as np
import torch

from probes import checks, metrics
from probes.fitting import fit_chunk_logreg, inner_masks_for
from probes.grid import ProbeGrid
from probes.inputs import Inputs, check_finite, check_fit_args, is_cache, resolve
from probes.methods import DEFAULT_CS


def transfer(train, train_y, train_groups, test, test_y, test_groups, control=None, control_y=None,
             control_groups=None, layers=None, positions=None, target: str = "label",
             Cs: tuple[float, ...] | None = None, inner_folds: int = 3, n_bootstrap: int = 1000, seed: int = 0,
             tol: float = 1e-4, max_iter: int = 500, device: str | None = None, chunk: int = 8) -> ProbeGrid:
    """Fit on `train`, evaluate on `test` at the same (layer, position) cells; a ProbeGrid of test metrics.

    train/test/control: arrays [sample, layer, position, d] (or [sample, d]) with labels and groups, or
    ActivationCaches (then labels and groups may be None: read from column `target` and "group"); `layers`/
    `positions` select cells of a cache or name the array axes, the same for all three sets. Control (optional):
    its negatives set the threshold at 1% false positives; it must hold both classes (its AUROC is reported).
    Refused: train and test (or control) of different models, layers, positions or widths d; a set with one class.
    The grid's scores, y and groups are the test set's.

    >>> import numpy as np, probes
    >>> a, y, g = np.random.default_rng(0).normal(size=(40, 2, 3, 8)), np.tile([0, 1], 20), np.arange(40)
    >>> grid = probes.transfer(a[:20], y[:20], g[:20], a[20:], y[20:], g[20:], control=a, control_y=y)
    >>> grid.table().columns[:6].tolist()
    ['layer', 'position', 'auroc', 'auroc_lo', 'auroc_hi', 'accuracy']
    >>> probes.transfer(a, y, g, a[:, :1], y, g)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: the train set has layers [0, 1], the test set [0]: transfer scores each cell's probe on the same cell...
    """
    check_fit_args(Cs=Cs, inner_folds=inner_folds, n_bootstrap=n_bootstrap, seed=seed, chunk=chunk, tol=tol,
                   max_iter=max_iter, device=device, target=target)
    Cs = tuple(Cs) if Cs is not None else DEFAULT_CS
    sets = {"train": _resolve(train, train_y, train_groups, layers, positions, target),
            "test": _resolve(test, test_y, test_groups, layers, positions, target)}
    if control is not None:
        if control_groups is None and not is_cache(control):
            control_groups = np.arange(len(control))        # the control set only needs labels
        sets["control"] = _resolve(control, control_y, control_groups, layers, positions, target)
    tr, te = sets["train"], sets["test"]
    for name, inp in sets.items():
        inp.y = _check_binary(inp.y, name, one_class_ok=name == "control")
        _check_match(tr, inp, name)
    L, P = len(tr.layers), len(tr.positions)
    names = list(sets)
    sizes = [len(sets[k].y) for k in names]
    start = dict(zip(names, np.cumsum([0] + sizes[:-1]).tolist()))
    y = np.concatenate([sets[k].y for k in names])
    g = np.concatenate([[f"{k}:{x}" for x in np.asarray(sets[k].groups).astype(str)] for k in names])
    valid = np.concatenate([sets[k].valid for k in names])
    part = np.repeat(np.array(names), sizes)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    scores = np.full((L, P, len(y)), np.nan)
    train_auc, log_c = np.full((L, P), np.nan), np.full((L, P), np.nan)
    not_conv, skipped = np.zeros((L, P), bool), np.zeros((L, P), bool)
    patterns: dict[bytes, list[int]] = {}
    for pi in range(P):
        patterns.setdefault(valid[:, pi].tobytes(), []).append(pi)
    for li in range(L):
        X = _read_layer(sets, li)
        for key, pis in patterns.items():
            mask = np.frombuffer(key, dtype=bool)
            fit_idx, eval_idx = np.flatnonzero(mask & (part == "train")), np.flatnonzero(mask & (part != "train"))
            if not _fittable(y[fit_idx], g[fit_idx], inner_folds, len(Cs)) or not len(eval_idx):
                skipped[li, pis] = True
                continue
            splits = [(fit_idx, eval_idx)]
            inner = inner_masks_for(splits, y, g, inner_folds, seed) if len(Cs) > 1 else None
            for j in range(0, len(pis), chunk):
                cp = pis[j:j + chunk]
                Xc = torch.as_tensor(np.ascontiguousarray(X[:, cp].transpose(1, 0, 2)), device=dev)
                out = fit_chunk_logreg(Xc, y, g, splits, np.zeros((0, len(y)), y.dtype), Cs, inner_folds, seed,
                                       0, tol, max_iter, inner_masks=inner)
                scores[li, cp], train_auc[li, cp] = out["scores"], out["train_auroc"]
                log_c[li, cp], not_conv[li, cp] = out["log10_C"], out["not_converged"]

    m = _metrics(scores, y, g, part, n_bootstrap, seed)
    m.update(train_auroc=train_auc, log10_C=log_c)
    m = {k: np.asarray(v, float).reshape(L, P) for k, v in m.items()}
    is_test = part == "test"
    findings = checks.grid_findings({}, tr.layers, tr.positions, not_conv, skipped)
    config = {"method": "logreg", "protocol": "transfer (fit on train, no refit on test)", "target": target,
              "Cs": list(Cs), "inner_folds": inner_folds, "n_bootstrap": n_bootstrap, "seed": seed, "tol": tol,
              "max_iter": max_iter, "n_train": sizes[0], "n_test": sizes[1],
              "n_control": sizes[2] if control is not None else 0,
              "threshold": "1% false positives on the control set's negatives" if control is not None else None,
              "train_meta": tr.meta, "test_meta": te.meta, "regression": False,
              "scaling": "standardised on the training set"}
    return ProbeGrid(layers=tr.layers, positions=tr.positions, metrics=m,
                     scores=scores[:, :, start["test"]:start["test"] + sizes[1]], y=y[is_test],
                     groups=np.asarray(te.groups), warnings=findings, config=config)


def _metrics(scores: np.ndarray, y: np.ndarray, g: np.ndarray, part: np.ndarray, n_bootstrap: int,
             seed: int) -> dict[str, np.ndarray]:
    """Test-set metrics per cell from scores [L, P, n_all] over the concatenated train/test/control samples."""
    L, P, n = scores.shape
    flat = scores.reshape(L * P, n)
    is_test, is_ctrl = part == "test", part == "control"
    st, yt = flat[:, is_test], y[is_test]
    out = {"auroc": metrics.auroc(np.nan_to_num(st, nan=0), yt, np.isfinite(st).astype(float))}
    out["auroc_lo"], out["auroc_hi"] = metrics.group_bootstrap_auroc(st, yt, g[is_test], n_bootstrap, seed)
    out.update(metrics.f1_accuracy_confusion(st, yt))
    out["n_test"] = np.isfinite(st).sum(1).astype(float)
    if is_ctrl.any():
        sc, yc = flat[:, is_ctrl], y[is_ctrl]
        with np.errstate(invalid="ignore", divide="ignore"):                # NaN for a negatives-only control
            out["control_auroc"] = metrics.auroc(np.nan_to_num(sc, nan=0), yc, np.isfinite(sc).astype(float))
        thr = metrics.fpr_threshold(sc, yc, np.ones(len(yc), bool), 0.01)               # [cells]
        out["threshold_1pct_fpr"] = thr
        out["n_control_negatives"] = np.isfinite(np.where(yc == 0, sc, np.nan)).sum(1).astype(float)
        both = is_test | is_ctrl
        out["recall_at_1pct_fpr"] = metrics.recall_at_fpr(flat[:, both], y[both], is_ctrl[both], 0.01)
        neg = st[:, yt == 0]
        with np.errstate(invalid="ignore"):
            out["test_fpr_at_threshold"] = np.where(np.isfinite(thr), (neg > thr[:, None]).sum(1)
                                                    / np.isfinite(neg).sum(1), np.nan)
    return out


def _resolve(data, labels, groups, layers, positions, target: str) -> Inputs:
    """Checked inputs of one set; labels are read as numbers here and checked per set by `_check_binary`."""
    return resolve(data, target=target, labels=labels, groups=groups, layers=layers, positions=positions,
                   regression=True)


def _check_binary(y: np.ndarray, name: str, one_class_ok: bool = False) -> np.ndarray:
    """y as int64 0/1, or an error naming the set. `one_class_ok` (the control set): negatives alone are enough
    (they set the threshold); positives alone are refused."""
    vals = np.unique(y)
    shown = [int(v) if float(v).is_integer() else float(v) for v in vals[:10]]
    if not set(vals.tolist()) <= {0, 1}:
        raise ValueError(f"the {name} set has labels {shown}; transfer needs binary 0/1 labels")
    if one_class_ok and 0 in vals:
        return y.astype(np.int64)
    if one_class_ok:
        raise ValueError(f"the {name} set has one class only ({shown}) and no negatives: the threshold is set at 1% "
                         f"false positives on its negatives (label 0); pass a control set with honest samples (it "
                         f"may hold only label 0)")
    if len(vals) < 2:
        why = {"train": "a probe needs both classes to fit", "test": "its AUROC needs both classes"}[name]
        raise ValueError(f"the {name} set has one class only ({shown}): {why}; pass a {name} set with "
                         f"both labels 0 and 1")
    return y.astype(np.int64)


def _read_layer(sets: dict[str, Inputs], li: int) -> np.ndarray:
    """Layer `li` of every set, stacked on the sample axis [n_all, P, d]; refuses different widths d (the first
    layer is read before any fit)."""
    arrays = []
    for name, inp in sets.items():
        X = inp.read_layer(li)
        check_finite(X, inp.valid, inp.layers[li], inp.positions)
        if arrays and X.shape[-1] != arrays[0].shape[-1]:
            raise ValueError(f"the {name} activations have width d={X.shape[-1]}, the train activations "
                             f"d={arrays[0].shape[-1]}: a probe applies only to the residual stream it was fitted on "
                             f"(same model)")
        arrays.append(X)
    return np.concatenate(arrays)


def _check_match(tr: Inputs, other: Inputs, name: str) -> None:
    if tr.layers != other.layers:
        raise ValueError(f"the train set has layers {tr.layers}, the {name} set {other.layers}: transfer scores each "
                         f"cell's probe on the same cell; pass layers= present in both")
    if tr.positions != other.positions:
        raise ValueError(f"the train set has positions {tr.positions[:8]}, the {name} set {other.positions[:8]}: "
                         f"transfer scores each cell's probe on the same cell; pass positions= present in both")
    a, b = tr.meta.get("model"), other.meta.get("model")
    if a is not None and b is not None and a != b:
        raise ValueError(f"the train activations come from model {a!r}, the {name} activations from {b!r}: a probe "
                         f"fitted on one model's residual stream means nothing on another's; cache both sets with "
                         f"the same model")


def _fittable(y: np.ndarray, g: np.ndarray, inner_folds: int, n_cs: int) -> bool:
    """Both classes among the training rows, and enough groups for the inner C search when there is one."""
    if len(np.unique(y)) < 2:
        return False
    return n_cs == 1 or len(np.unique(g)) >= max(inner_folds, 2)
