"""Turn what a user passes to `probes.sweep` (an ActivationCache or a plain array plus labels/groups) into
checked arrays, with errors that say what is wrong and what to do.

    >>> import numpy as np
    >>> acts = np.zeros((4, 2, 3, 8))                               # [sample, layer, position, d]
    >>> inp = resolve(acts, labels=[0, 1, 0, 1], groups=["a", "a", "b", "b"], positions=["q_0", "latent_0", "eot"])
    >>> inp.layers, inp.positions, inp.read_layer(0).shape, inp.read_layer(0).dtype   # [sample, position, d]
    ([0, 1], ['q_0', 'latent_0', 'eot'], (4, 3, 8), dtype('float32'))
    >>> resolve(acts, labels=[0, 1, 0, 1])
    Traceback (most recent call last):
    ...
    ValueError: groups= is required with an array: samples of one group ... must stay on one side of every split; ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import poslabels
from argcheck import BadArgument, check_bool, check_float, check_floats, check_int, check_str


@dataclass
class Inputs:
    """Checked sweep inputs: cell names, labels, groups, the validity mask [sample, position] and a reader that
    returns one layer as float32 [sample, position, d] (from a cache or an array; nothing else is loaded).

    >>> import numpy as np
    >>> inp = resolve(np.ones((4, 1, 2, 3)), labels=[0, 1, 0, 1], groups=[0, 0, 1, 1])
    >>> inp.y.tolist(), inp.valid.shape, inp.d, float(inp.read_layer(0).sum())
    ([0, 1, 0, 1], (4, 2), 3, 24.0)
    """

    layers: list[int]
    positions: list[str]
    y: np.ndarray                     # [n] int (classification) or float (regression)
    groups: np.ndarray                # [n]
    valid: np.ndarray                 # [n, P] bool
    d: int
    read_layer: Callable[[int], np.ndarray]   # layer index -> float32 [n, P, d]
    meta: dict = field(default_factory=dict)
    control: np.ndarray | None = None


def check_fit_args(*, folds: int | None = None, Cs=None, inner_folds: int = 3, n_permutations: int | None = 0,
                   n_bootstrap: int | None = 1000, seed: int = 0, chunk: int = 8, tol: float = 1e-4,
                   search_tol: float = 1e-3, max_iter: int = 500, device: str | None = None, progress: bool = False,
                   test_size: float | None = None, target: str | None = "label", n_jobs: int | None = None,
                   method: str | None = None, inherit: bool = False) -> None:
    """The argument checks shared by `probes.sweep`, `text_baseline` and `transfer`, run before any work:
    `argcheck.BadArgument` names the argument, its value, what is allowed and the fix. `inherit`: None is allowed
    for `n_permutations` / `n_bootstrap` (`text_baseline` then takes the grid's).

    >>> check_fit_args(folds=1)
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: folds=1: must be an integer >= 2. Fix: ...
    """
    if folds is not None:
        check_int("folds", folds, min=2, fix="cross-validation needs at least 2 folds; the default is 5")
    if Cs is not None:
        check_floats("Cs", Cs, min=0, min_open=True, fix="pass positive regularisation values, e.g. Cs=(0.1, 1.0)")
    check_int("inner_folds", inner_folds, min=2, fix="the nested C search needs at least 2 folds (default 3)")
    check_int("n_permutations", n_permutations, min=0, none_ok=inherit,
              fix="use 0 (no p-values) or e.g. 100 label shuffles")
    check_int("n_bootstrap", n_bootstrap, min=10, none_ok=inherit,
              fix="confidence intervals need bootstrap replicates; use e.g. n_bootstrap=1000")
    check_int("seed", seed, min=0)
    check_int("chunk", chunk, min=1)
    check_int("n_jobs", n_jobs, min=1, none_ok=True, fix="pass a positive number of parallel chunks, or None")
    check_float("tol", tol, min=0, min_open=True)
    check_float("search_tol", search_tol, min=0, min_open=True)
    check_int("max_iter", max_iter, min=1)
    if device is not None and type(device).__name__ != "device":  # a torch.device is fine too
        check_str("device", device, fix="pass None (CUDA when present), 'cpu' or 'cuda'")
    check_bool("progress", progress)
    check_float("test_size", test_size, min=0, max=1, min_open=True, max_open=True, none_ok=True,
                fix="use e.g. test_size=0.25 (a fraction of the groups held out), or None")
    if method == "multiclass" and test_size:
        raise BadArgument("test_size", test_size, "is not supported with method='multiclass' (its sweep "
                          "cross-validates every sample and holds out no groups)",
                          "pass test_size=None, or hold out groups yourself and sweep each part")
    if target is not None:
        check_str("target", target, fix="name a column of the cache's sample table, e.g. target='label'")


def check_grid(name: str, grid: Any) -> None:
    """A ProbeGrid-like result (layers, positions, metrics, scores, y, groups, config).

    >>> check_grid("grid", "runs/probe")
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: grid='runs/probe': must be a ProbeGrid (a probes.sweep result). Fix: ...
    """
    if not all(hasattr(grid, a) for a in ("layers", "positions", "metrics", "scores", "y", "groups", "config")):
        raise BadArgument(name, grid, "must be a ProbeGrid (a probes.sweep result)",
                          "pass the grid probes.sweep returned, or probes.ProbeGrid.load(folder)")


def check_sweep_inputs(inp: Inputs, folds: int, target: str | None) -> None:
    """After `resolve`: refuse a constant target (R^2 would read 1.0 everywhere) and `folds` larger than the number
    of groups (every cell would be skipped).

    >>> import numpy as np
    >>> inp = resolve(np.zeros((6, 1, 1, 2)), labels=[0, 1] * 3, groups=[0, 0, 1, 1, 2, 2])
    >>> check_sweep_inputs(inp, folds=3, target=None)                 # 3 groups, 3 folds: fine
    >>> check_sweep_inputs(inp, folds=5, target=None)
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: folds=5: is more than the 3 groups of these samples ... Fix: use folds <= 3, ...
    """
    if len(inp.y) and np.ptp(np.asarray(inp.y, np.float64)) == 0:
        name = "labels" if target is None else "target"
        raise BadArgument(name, target if target is not None else inp.y, f"every sample has the value "
                          f"{inp.y.flat[0]!r}: a constant target has nothing to predict (R^2 is undefined, not 1.0)",
                          "probe a target that varies")
    n_groups = len(np.unique(np.asarray(inp.groups).astype(str)))
    if folds > n_groups:
        raise BadArgument("folds", folds, f"is more than the {n_groups} groups of these samples (each fold needs at "
                          f"least one group)", f"use folds <= {n_groups}, or more samples")


def is_cache(data: Any) -> bool:
    """True for an ActivationCache-like object (it has `.array`, `.samples` and `.layers`), False for an array.

    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> is_cache(SimpleNamespace(array=None, samples=None, layers=[0])), is_cache(np.zeros((2, 3)))
    (True, False)
    """
    return hasattr(data, "array") and hasattr(data, "samples") and hasattr(data, "layers")


def _column(samples, name: str, what: str) -> np.ndarray:
    if name not in samples.columns:
        raise KeyError(f"{what} column {name!r} is not in the cache's sample table; columns are "
                       f"{list(samples.columns)}: pass target=<one of them> or labels=<array>")
    return samples[name].to_numpy()


def resolve(data: Any, target: str = "label", labels=None, groups=None, layers=None, positions=None,
            valid=None, control=None, regression: bool = False, multiclass: bool = False) -> Inputs:
    """Validate and normalise sweep inputs (see module docstring). Raises ValueError/KeyError before any work.

    >>> inp = resolve(np.zeros((4, 2, 3, 8)), labels=[0, 1, 0, 1], groups=[0, 0, 1, 1])
    >>> inp.layers, inp.positions, inp.y.dtype                        # unnamed axes: layers 0.., positions "0"..
    ([0, 1], ['0', '1', '2'], dtype('int64'))
    >>> resolve(np.zeros((4, 8)), labels=[0, 1, 2, 3], groups=[0, 1, 2, 3])      # [sample, d]: one cell
    Traceback (most recent call last):
    ...
    ValueError: labels have values [0, 1, 2, 3]; classification probes need binary 0/1 labels ...
    """
    if data is None or isinstance(data, (str, bytes)):
        raise BadArgument("data", data, "must be an ActivationCache or an array [sample, layer, position, d]",
                          "pass interp.load_cache(folder), or an array with labels= and groups=")
    if is_cache(data):
        inp, n = _from_cache(data, target, labels, groups, layers, positions, control)
    else:
        inp, n = _from_array(data, labels, groups, layers, positions, valid, control)
    y, groups, control = np.asarray(inp.y), np.asarray(inp.groups), inp.control
    if len(y) != n or len(groups) != n:
        raise ValueError(f"mismatched sample counts: activations have {n} samples, labels {len(y)}, groups "
                         f"{len(groups)}: they must describe the same samples in the same order")
    if control is not None and len(control) != n:
        raise ValueError(f"control has {len(control)} entries for {n} samples")
    if inp.valid.shape != (n, len(inp.positions)):
        raise ValueError(f"valid mask has shape {inp.valid.shape}, expected {(n, len(inp.positions))}")
    inp.y = _check_labels(y, regression, multiclass)
    if np.any([g is None or (isinstance(g, float) and np.isnan(g)) for g in groups]):
        raise ValueError("groups contain missing values (None/NaN): give every sample a group")
    inp.groups = groups
    inp.control = None if control is None else np.asarray(control)
    return inp


def _from_cache(data, target, labels, groups, layers, positions, control) -> tuple[Inputs, int]:
    """Inputs from an ActivationCache: labels/groups/control from its sample table unless given, cells selected
    by `layers`/`positions` (stored labels or the aliases last, prompt[-k], q[-k])."""
    samples = data.samples
    all_layers, all_pos = [int(x) for x in data.layers], [str(x) for x in data.positions]
    sel_l = all_layers if layers is None else [int(x) for x in layers]
    sel_p = all_pos if positions is None else [str(x) for x in positions]
    for l_ in sel_l:
        if l_ not in all_layers:
            raise KeyError(f"layer {l_} is not in the cache; it has layers {all_layers}")
    for p in sel_p:
        if p not in all_pos and not poslabels.is_alias(p):
            raise KeyError(f"position {p!r} is not in the cache; it has {all_pos[:12]}... (aliases: last, "
                           f"prompt[-k], q[-k])")
    y = np.asarray(labels) if labels is not None else _column(samples, target, "target")
    if groups is None:
        if "group" not in samples.columns or samples["group"].isna().any():
            raise ValueError("the cache's samples have no complete 'group' column: pass groups=<array> "
                             "(use groups=np.arange(n) only if every sample is independent)")
        groups = samples["group"].to_numpy()
    stored = [p for p in sel_p if p in all_pos]
    v = np.ones((len(samples), len(sel_p)), dtype=bool)
    if getattr(data, "valid", None) is not None:
        for j, p in enumerate(sel_p):
            if p in all_pos:
                v[:, j] = np.asarray(data.valid, dtype=bool)[:, all_pos.index(p)]
    d = int(data.meta.get("d_model", 0)) if hasattr(data, "meta") else 0

    def read_layer(li: int) -> np.ndarray:
        a = np.asarray(data.array(layers=[sel_l[li]], positions=stored), dtype=np.float32)[:, 0] if stored \
            else None
        cols = [a[:, stored.index(p)] if p in stored else data.sel(layer=sel_l[li], position=p)
                for p in sel_p]
        return np.stack(cols, 1)
    if control is not None and isinstance(control, str):
        control = _column(samples, control, "control")
    meta = {k: data.meta[k] for k in ("model", "n_layers", "d_model", "config_hash", "dtype")
            if hasattr(data, "meta") and k in data.meta}
    return Inputs(layers=sel_l, positions=sel_p, y=y, groups=groups, valid=v, d=d, read_layer=read_layer,
                  meta=meta, control=control), len(samples)


def _from_array(data, labels, groups, layers, positions, valid, control) -> tuple[Inputs, int]:
    """Inputs from an array [sample, layer, position, d] / [sample, layer, d] / [sample, d] (numpy or torch) with
    explicit labels and groups; `layers`/`positions` name the axes."""
    arr = data.detach().cpu().numpy() if hasattr(data, "detach") else np.asarray(data)
    if arr.ndim == 2:
        arr = arr[:, None, None, :]
    elif arr.ndim == 3:
        arr = arr[:, :, None, :]
    if arr.ndim != 4:
        raise ValueError(f"activations have shape {arr.shape}; pass [sample, layer, position, d], "
                         f"[sample, layer, d] or [sample, d]")
    n, L, P, d = arr.shape
    if labels is None:
        raise ValueError("an array was passed without labels=: pass labels=<array of length n_samples> "
                         "(target= names a column only for an ActivationCache)")
    if groups is None:
        raise ValueError("groups= is required with an array: samples of one group (e.g. the honest and the "
                         "lying variant of a question) must stay on one side of every split; pass "
                         "groups=np.arange(n) only if every sample is independent")
    y = np.asarray(labels)
    layers_out = list(range(L)) if layers is None else [int(x) for x in layers]
    pos_out = [str(i) for i in range(P)] if positions is None else [str(x) for x in positions]
    if len(layers_out) != L or len(pos_out) != P:
        raise ValueError(f"layers={layers_out} / positions={pos_out} name the array's axes and must have "
                         f"lengths {L} and {P}")
    v = np.ones((n, P), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)

    def read_layer(li: int) -> np.ndarray:
        return np.asarray(arr[:, li], dtype=np.float32)
    return Inputs(layers=layers_out, positions=pos_out, y=y, groups=groups, valid=v, d=d,
                  read_layer=read_layer, control=control), n


def _check_labels(y: np.ndarray, regression: bool, multiclass: bool = False) -> np.ndarray:
    if y.dtype.kind in "OUS" or (y.dtype.kind == "f" and not np.all(np.isfinite(y))):
        if y.dtype.kind == "f":
            raise ValueError("labels contain NaN/inf: drop those samples or fill the labels")
        raise ValueError(f"labels must be numeric, got values like {list(y[:3])}: map them to 0/1 first")
    if regression:
        return y.astype(np.float64)
    vals = np.unique(y)
    if len(vals) < 2:
        raise ValueError(f"labels have one class only ({vals.tolist()}): a probe needs both classes; check the "
                         f"task/target column (for continuous targets use method='ridge')")
    if multiclass:
        if y.dtype.kind not in "iub" or vals.min() < 0:
            raise ValueError(f"labels have values {vals[:10].tolist()}; method='multiclass' needs class codes "
                             f"0..K-1 (map the values with np.unique(labels, return_inverse=True)[1])")
        return y.astype(np.int64)
    if len(vals) > 2 or not set(vals.tolist()) <= {0, 1}:
        raise ValueError(f"labels have values {vals[:10].tolist()}; classification probes need binary 0/1 labels "
                         f"(for a many-valued target use method='multiclass', for a continuous one "
                         f"method='ridge')")
    return y.astype(np.int64)


def check_finite(X: np.ndarray, valid: np.ndarray, layer: int, positions: list[str]) -> None:
    """Raise ValueError naming the cells with NaN/inf among valid samples. X: [n, P, d].

    >>> X = np.zeros((3, 2, 4)); X[1, 1, 0] = np.nan
    >>> check_finite(X, np.array([[1, 1], [1, 0], [1, 1]], bool), 5, ["q_0", "latent_0"])    # NaN where not valid
    >>> check_finite(X, np.ones((3, 2), bool), 5, ["q_0", "latent_0"])
    Traceback (most recent call last):
    ...
    ValueError: NaN/inf activations at layer 5, positions ['latent_0'] (1 sample-cells): recompute the cache ...
    """
    bad = ~np.isfinite(X).all(-1) & valid                               # [n, P]
    if bad.any():
        cols = np.flatnonzero(bad.any(0))
        raise ValueError(f"NaN/inf activations at layer {layer}, positions {[positions[c] for c in cols[:6]]} "
                         f"({int(bad.sum())} sample-cells): recompute the cache in float32, or drop those "
                         f"samples/positions")
