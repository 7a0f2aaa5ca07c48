"""Small real ProbeGrids for the viz tests and benchmarks/check_report_browser.py: probes.sweep (logistic
regression, grouped 5-fold CV, bootstrap CIs, permutation p-values) on synthetic activations with a planted
signal (stronger in later layers, at latent_1 and resp_0), plus known check findings added to the sweep's own.
"""

from __future__ import annotations

import numpy as np
import torch

import probes
from probes.grid import Finding, ProbeGrid

# Deliberately not in run order: the figures must sort them.
POSITIONS = ["resp_0", "latent_0", "q[-1]", "bot", "latent_1", "eot", "resp_1", "q[-2]"]
SIGNAL = {"latent_1": 1.0, "resp_0": 0.6}  # planted signal strength per position (times layer / n_layers)


def activations(n: int = 120, d: int = 6, n_layers: int = 4, seed: int = 0):
    """(x [n, n_layers+1, positions, d], y [n], groups [n]): class difference along dim 0, growing with
    depth."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    groups = np.arange(n) // 2
    x = rng.normal(size=(n, n_layers + 1, len(POSITIONS), d)).astype(np.float32)
    for j, p in enumerate(POSITIONS):
        for layer in range(n_layers + 1):
            x[:, layer, j, 0] += SIGNAL.get(p, 0.0) * (layer / n_layers) * 1.5 * (2 * y - 1)
    return x, y, groups


def make_grid(n_layers: int = 4, model: str = "tiny-llama", seed: int = 0, planted: bool = True) -> ProbeGrid:
    """A real sweep; `planted` adds three known findings (error, warning with hostile text, info) to its
    own."""
    x, y, groups = activations(n_layers=n_layers, seed=seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is ~10x faster than two on a busy 2-core machine
    try:
        grid = probes.sweep(
            x,
            labels=y,
            groups=groups,
            layers=list(range(n_layers + 1)),
            positions=POSITIONS,
            Cs=(1.0,),
            n_permutations=19,
            n_bootstrap=200,
            seed=seed,
            progress=False,
        )
    finally:
        torch.set_num_threads(threads)
    grid.config.update({"n_layers": n_layers, "model": model})
    if not planted:
        return grid
    grid.warnings = list(grid.warnings) + [
        Finding(
            "identical_features",
            "latent_0 and latent_1 have identical features at layer 2",
            "error",
            [(2, "latent_0"), (2, "latent_1")],
        ),
        Finding("low_n", "few test samples <script>alert(1)</script>", "warning", [(n_layers, "resp_1")]),
        Finding("note", "an info finding does not mark its cell", "info", [(0, "bot")]),
    ]
    return grid
