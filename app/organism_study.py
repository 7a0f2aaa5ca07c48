"""Every study on a model organism (codi.organisms): probes of each step's value, the logit lens, patching.

It joins probes (the probe sweeps) with interp (the cache, `interp.interventions.organism`: lens and patching), so
it lives in the application package.

The organisms are CODI models whose thoughts are known to carry the intermediate values of their task, so these
are the positive controls of the toolkit: the same calls that report "decodable but not used" on a real-weight
model must here find each value, in the thoughts, and show that the answer follows them.

- probes: for each step s, a multiclass probe (`probes.sweep(method="multiclass")`) of the value after step s at
  every (layer, position) of the latent run; accuracy with group-bootstrap CIs and a permutation null;
- lens: how often the LM-head top token of each thought (the last-layer hidden that is fed back) is the value
  after step s;
- patching: pairs that share the mapping and differ in the start (so in the value after step s and in the
  answer); the clean run's activation is written into the corrupt run at one (layer, position) cell and the
  study counts how often the answer becomes the counterfactual one, the answer that the clean problem's step-s
  value implies in the corrupt problem's chain (`Task.follow`). With a shared mapping that is the clean answer, so
  the rate equals `interp.patching.patch`'s `clean_accuracy` (checked).

    >>> import codi
    >>> from app.organism_study import study
    >>> cm, make = codi.organisms.load("pointer3")
    >>> s = study(cm, codi.organisms.task_of("pointer3"), n=100, n_pairs=20, n_permutations=0, max_iter=20)
    >>> s.lens.shape                                # [thought, step]
    (3, 3)
    >>> bool(s.lens[0, 0] > 0.9)                    # thought 0 reads out the value after hop 1
    True
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

import interp
import probes
from grids import ResultGrid
from interp.interventions.organism import counterfactual_patching, thought_lens
from probes.grid import ProbeGrid

__all__ = ["OrganismStudy", "study", "PROBE_POSITIONS"]

PROBE_POSITIONS = ("bot", "latent", "eot")  # kinds probed besides the last question token


@dataclass
class OrganismStudy:
    """Results of `study`: per step s (1-based) a probe grid and a patching grid; lens [thought, step]."""

    name: str
    n: int
    probe: dict[int, ProbeGrid]
    lens: np.ndarray
    patch: dict[int, ResultGrid]
    counterfactual: dict[int, float]  # best cell's rate per step
    wall_s: dict[str, float] = field(default_factory=dict)

    def markdown(self) -> str:
        """The report's tables: best probe cell per step, lens, best patching cell per step, and the grids."""
        lines = [f"### {self.name}: where each step's value lives", "",
                 f"Probes: {self.n} held-out problems, multiclass softmax probe of the value after each step, "
                 "5 group folds; 95% CI (group bootstrap widened by the permutation null); chance = 1/classes.", "",
                 "| step | best cell | accuracy | 95% CI | p (uncorrected) | p_FWER (max-T over cells) | chance |",
                 "|---|---|---|---|---|---|---|"]
        for s, g in self.probe.items():
            layer, pos = g.best("accuracy")
            lo, hi = g.sel("accuracy_lo", layer, pos), g.sel("accuracy_hi", layer, pos)
            p, pc = (g.sel(m, layer, pos) if m in g.metrics else np.nan for m in ("p_value", "p_corrected"))
            ps = " | ".join("n/a" if not np.isfinite(x) else f"{x:.3f}" for x in (p, pc))
            lines.append(f"| {s} | L{layer} / {pos} | {g.sel('accuracy', layer, pos):.3f} | [{lo:.3f}, {hi:.3f}] | "
                         f"{ps} | {g.sel('chance', layer, pos):.3f} |")
        lines += ["", "Logit lens: share of problems whose thought's top token (LM head on the fed-back last-layer "
                  "hidden) is the value after step s.", "",
                  "| thought | " + " | ".join(f"step {s}" for s in range(1, self.lens.shape[1] + 1)) + " |",
                  "|---" * (self.lens.shape[1] + 1) + "|"]
        lines += [f"| latent_{j} | " + " | ".join(f"{x:.3f}" for x in row) + " |" for j, row in enumerate(self.lens)]
        lines += ["", "Patching: clean activation written into the corrupt run at one cell; share of pairs whose "
                  "answer becomes the counterfactual one (best cell; layer -1 = the thought as fed back).", "",
                  "| step | pairs | best cell | counterfactual answer | at each thought (best layer) |",
                  "|---|---|---|---|---|"]
        for s, g in self.patch.items():
            layer, pos = g.best("clean_accuracy", positions=[p for p in g.positions if p.startswith("latent_")])
            per = ", ".join(f"{p} {np.nanmax(g.sel('clean_accuracy')[:, i]):.2f}" for i, p in enumerate(g.positions)
                            if p.startswith("latent_"))
            lines.append(f"| {s} | {g.config.get('n', '?')} | L{layer} / {pos} | {self.counterfactual[s]:.3f} | "
                         f"{per} |")
        return "\n".join(lines) + "\n"


def _positions(labels: list[str]) -> list[int]:
    """Indices of the last question token and every bot / latent / eot position."""
    q = [i for i, p in enumerate(labels) if p.startswith("q_")]
    keep = [i for i, p in enumerate(labels) if p.split("_")[0] in PROBE_POSITIONS]
    return ([q[-1]] if q else []) + keep


def study(cm, task, n: int = 500, seed: int = 5, n_pairs: int = 200, n_permutations: int = 20,
          max_iter: int = 100, name: str | None = None, progress: bool = False) -> OrganismStudy:
    """Probe, lens and patching studies of organism `cm` on `n` held-out problems of `task` (see module doc)."""
    if n < 50:
        raise ValueError(f"n={n}: use at least 50 held-out problems (5 folds of 10).")
    cm.eval()
    wall: dict[str, float] = {}
    problems = task.make(n, seed=seed, split="test")
    t0 = time.time()
    cache = interp.cache(cm, [p.question for p in problems], layers="all", positions="all", progress=False)
    keep = _positions(list(cache.positions))
    X = cache.array()[:, :, keep]
    labels = [cache.positions[i] for i in keep]
    wall["cache_s"] = time.time() - t0
    t0 = time.time()
    grids = {}
    for s in range(1, task.depth + 1):
        _, codes = np.unique([p.values[s - 1] for p in problems], return_inverse=True)
        grids[s] = probes.sweep(X, labels=codes, groups=np.arange(n), method="multiclass",
                                n_permutations=n_permutations, layers=list(cache.layers), positions=labels,
                                max_iter=max_iter, chunk=64, seed=seed, progress=progress)
        grids[s].config.update(model=name or task.name, n_layers=cm.n_layers, target=f"value after hop {s}")
    wall["probe_s"] = time.time() - t0
    t0 = time.time()
    lens = thought_lens(cm, problems)
    wall["lens_s"] = time.time() - t0
    t0 = time.time()
    patches, counter = counterfactual_patching(cm, task, n_pairs=n_pairs, seed=seed, progress=progress)
    wall["patch_s"] = time.time() - t0
    return OrganismStudy(name or task.name, n, grids, lens, patches, counter, {k: round(v, 1) for k, v in wall.items()})
