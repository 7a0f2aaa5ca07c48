"""probes: tasks, splits, probe methods, batched sweeps over (layer, position), honest statistics and checks.

    >>> import numpy as np, probes
    >>> task = probes.tasks.load("instructed-facts", n=40, seed=0)     # 20 facts, honest and dishonest persona
    >>> acts = np.random.default_rng(0).normal(size=(40, 2, 1, 8))     # [sample, layer, position, d]
    >>> acts[:, 1, 0, 0] += 3 * task.labels                             # (here: layer 1 carries the label)
    >>> grid = probes.sweep(acts, labels=task.labels, groups=task.groups, positions=["last"], n_permutations=0,
    ...                     progress=False)
    >>> print(grid.summary())                                           # best cell + findings of the checks
    ProbeGrid: 2 layers x 1 positions, 40 samples, 20 groups; method=logreg target=labels folds=5
    best cell: layer 1, last: auroc=0..., 95% CI [0..., 0...] (picked on the same data: optimistic)
    checks: no findings
    >>> d = probes.delong(grid, (1, "last"), (0, "last"))               # two cells, same samples: DeLong test
    >>> d["n"], bool(d["auroc_a"] > d["auroc_b"]), sorted(d)[:4]
    (40, True, ['auroc_a', 'auroc_b', 'cell_a', 'cell_b'])
    >>> grid = probes.text_baseline(grid, [[s["text"].split()] for s in task])  # the prompt's words alone
    >>> [w.kind for w in grid.warnings], grid.sel("text_auroc").tolist()        # the persona gives the label away
    (['label_in_text'], [[1.0], [1.0]])
    >>> b = probes.transfer(acts[:20], task.labels[:20], task.groups[:20], acts[20:], task.labels[20:],
    ...                     task.groups[20:], positions=["last"])      # fit on one set, score another
    >>> b.table()[["layer", "position", "auroc"]].shape
    (2, 3)
"""

from probes import tasks
from probes.grid import Finding, ProbeGrid, load_grid
from probes.methods import DEFAULT_CS, DiffMeanProbe, LATProbe, LDAProbe, LogisticProbe, RidgeProbe
from probes.select import delong, pick_best
from probes.splits import check_splits, group_kfold, heldout_split, permute_labels
from probes.sweep import sweep
from probes.textbase import text_baseline
from probes.transfer import transfer

__all__ = ["Finding", "ProbeGrid", "load_grid", "sweep", "tasks", "delong", "pick_best", "DEFAULT_CS", "LogisticProbe",
           "DiffMeanProbe", "LDAProbe", "LATProbe", "RidgeProbe", "group_kfold", "heldout_split", "check_splits",
           "permute_labels", "text_baseline", "transfer"]
