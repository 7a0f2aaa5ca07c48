"""probes: tasks, splits, probe methods, batched sweeps over (layer, position), honest statistics and checks.

    >>> import probes
    >>> task = probes.tasks.load("instructed-facts", n=200, seed=0)
    >>> grid = probes.sweep(acts, labels=task.labels, groups=task.groups)   # acts [sample, layer, position, d]
    >>> print(grid.summary())                                              # best cell + findings of the checks
    >>> probes.delong(grid, (9, "last"), (12, "last"))
    >>> grid = probes.text_baseline(grid, texts)     # text-only AUROC and white-box gain beside each cell
    >>> probes.transfer(acts_a, y_a, g_a, acts_b, y_b, g_b, control=acts_c, control_y=y_c)   # fit on a, score b
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
