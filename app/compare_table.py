"""The per-model rows and the markdown table of `codi-lens compare` (app/compare.py): best cells with CIs, and the
white-box gain over the text-only baseline, so models are compared by what their activations add to the text.
`model_row(name, how, grid, cache_s, sweep_s)` makes one model's row from its probe grid, `summary_markdown(rows,
cfg)` the table; the examples below run on a grid swept over planted data.
"""

from __future__ import annotations

__all__ = ["model_row", "summary_markdown"]


def model_row(name: str, how: str, grid, cache_s: float, sweep_s: float) -> dict:
    """One model's row: best latent / response / question / overall cells with CIs, DeLong p latent vs response,
    the text-only AUROC and white-box gain at the best latent cell and the largest gain, the checks' findings.

    >>> import numpy as np, probes
    >>> rng = np.random.default_rng(0)
    >>> y, groups = np.tile([0, 1], 12), np.repeat(np.arange(12), 2)
    >>> acts = rng.normal(size=(24, 2, 2, 4))                     # [sample, layer, position, d]
    >>> acts[:, 1, 0] += 3 * (y - 0.5)[:, None]                    # the label lives at layer 1, latent_0
    >>> grid = probes.sweep(acts, labels=y, groups=groups, layers=[0, 1], positions=["latent_0", "resp_0"],
    ...                     Cs=(1.0,), folds=3, n_permutations=0, n_bootstrap=100, progress=False)
    >>> row = model_row("tiny", "planted", grid, 1.0, 2.0)
    >>> row["best_latent_cell"], row["best_latent_auroc"] > 0.9, row["best_response_cell"]
    ('L1 latent_0', True, 'L... resp_0')
    """
    import numpy as np

    import probes
    from app.demo import best_cells

    b = best_cells(grid)
    row = {
        "model": name,
        "how": how,
        "n_layers": grid.config.get("n_layers"),
        "d_model": grid.config.get("d_model"),
        "n_samples": len(grid.y),
        "cache_s": round(cache_s, 1),
        "sweep_s": round(sweep_s, 1),
    }
    for kind in ("latent", "response", "question"):
        c = b.get(f"best_{kind}")
        if c:
            row.update(
                {
                    f"best_{kind}_auroc": c["auroc"],
                    f"best_{kind}_lo": c.get("auroc_lo", np.nan),
                    f"best_{kind}_hi": c.get("auroc_hi", np.nan),
                    f"best_{kind}_cell": f"L{c['layer']} {c['position']}",
                    f"best_{kind}_p": c.get("p_value", np.nan),
                    f"best_{kind}_p_corrected": c.get("p_corrected", np.nan),
                }
            )
    best = b["best"]
    row.update(
        best_auroc=best["auroc"],
        best_lo=best.get("auroc_lo", np.nan),
        best_hi=best.get("auroc_hi", np.nan),
        best_cell=f"L{best['layer']} {best['position']}",
    )
    if "best_latent" in b and "best_response" in b:
        d = probes.delong(
            grid,
            (b["best_latent"]["layer"], b["best_latent"]["position"]),
            (b["best_response"]["layer"], b["best_response"]["position"]),
        )
        row["delong_p_latent_vs_response"] = d["p_value"]
    row.update(_gain_columns(grid, b))
    row["findings"] = sorted({w.kind for w in grid.warnings})
    return row


def _gain_columns(grid, best: dict) -> dict:
    """Text-only AUROC and white-box gain at the best latent cell, and the cell with the largest gain (optimistic:
    picked on the same data), when the grid has a text baseline."""
    import numpy as np

    if "gain" not in grid.metrics:
        return {}
    out = {}
    c = best.get("best_latent") or best["best"]
    for k in ("text_auroc", "gain", "gain_lo", "gain_hi"):
        out[f"latent_{k}"] = float(grid.sel(k, c["layer"], c["position"]))
    if np.isfinite(grid.metrics["gain"]).any():
        layer, pos = grid.best("gain")
        out.update(max_gain=float(grid.sel("gain", layer, pos)), max_gain_lo=float(grid.sel("gain_lo", layer, pos)),
                   max_gain_hi=float(grid.sel("gain_hi", layer, pos)), max_gain_cell=f"L{layer} {pos}",
                   label_in_text=any(w.kind == "label_in_text" for w in grid.warnings))
    return out


def summary_markdown(rows: list[dict], cfg) -> str:
    """The per-model table (markdown): best latent / response / overall cell with 95% CIs, the white-box gain
    ("-" without a text baseline), DeLong p, timings. `cfg`: the CompareConfig (its task and study settings head
    the table).

    >>> from app.compare import CompareConfig, ModelSpec
    >>> cfg = CompareConfig(models=[ModelSpec("tiny-llama")], task={"name": "deception-arith", "n": 24})
    >>> row = {"model": "tiny", "n_layers": 2, "d_model": 4, "how": "planted", "cache_s": 1.0, "sweep_s": 2.0,
    ...        "best_latent_auroc": 0.95, "best_latent_lo": 0.81, "best_latent_hi": 1.0,
    ...        "best_latent_cell": "L1 latent_0", "best_auroc": 0.95, "best_lo": 0.81, "best_hi": 1.0,
    ...        "best_cell": "L1 latent_0"}
    >>> print(summary_markdown([row], cfg).splitlines()[-1])
    | tiny | 2 | 4 | planted | 0.950 [0.810, 1.000] (L1 latent_0) | - | - | - |
      0.950 [0.810, 1.000] (L1 latent_0) | - | - | 1.0 | 2.0 |
    """

    def cell(r: dict, kind: str) -> str:
        key = f"best_{kind}" if kind else "best"
        if f"{key}_auroc" not in r:
            return "-"
        p, pc = r.get(f"{key}_p", float("nan")), r.get(f"{key}_p_corrected", float("nan"))
        ps = f"; p {p:.2g}, p_FWER {pc:.2g}" if p == p and pc == pc else ""
        return f"{r[f'{key}_auroc']:.3f} [{r[f'{key}_lo']:.3f}, {r[f'{key}_hi']:.3f}] ({r[f'{key}_cell']}{ps})"

    def gain(r: dict) -> str:
        if "latent_gain" not in r:
            return "-"
        return (f"{r['latent_gain']:+.3f} [{r['latent_gain_lo']:+.3f}, {r['latent_gain_hi']:+.3f}] "
                f"(text {r['latent_text_auroc']:.3f})")

    def max_gain(r: dict) -> str:
        if "max_gain" not in r:
            return "-"
        return f"{r['max_gain']:+.3f} [{r['max_gain_lo']:+.3f}, {r['max_gain_hi']:+.3f}] ({r['max_gain_cell']})"

    task = ", ".join(f"{k}={v}" for k, v in cfg.task.items())
    lines = [
        f"Task: {task}; target {cfg.target}, {cfg.method}, {cfg.folds} group folds, {cfg.permutations} "
        f"permutations; layer stride {cfg.layer_stride}. AUROC with 95% CI (best of many cells: optimistic; "
        "p uncorrected, p_FWER max-T corrected over the cells). "
        "White-box gain = probe AUROC - text-only AUROC (bag of words over the visible tokens, same splits), CI from "
        "the paired group bootstrap; compare models by the gain: the text alone may already give the AUROC.",
        "",
        "| model | layers | d | how | best latent | gain at best latent | largest gain | best response | "
        "best overall | DeLong p (latent vs resp) | label in text | cache s | sweep s |",
        "|---|---:|---:|---|---|---|---|---|---|---:|---|---:|---:|",
    ]
    for r in rows:
        p = r.get("delong_p_latent_vs_response")
        lit = "-" if "label_in_text" not in r else ("fires" if r["label_in_text"] else "no")
        lines.append(
            f"| {r['model']} | {r['n_layers']} | {r['d_model']} | {r['how']} | {cell(r, 'latent')} | {gain(r)} | "
            f"{max_gain(r)} | {cell(r, 'response')} | {cell(r, '')} | {'-' if p is None else f'{p:.2g}'} | {lit} | "
            f"{r['cache_s']} | {r['sweep_s']} |"
        )
    return "\n".join(lines) + "\n"
