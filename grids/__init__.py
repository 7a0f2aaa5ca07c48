"""grids: the neutral result of any sweep over (layer, position) cells, a leaf every library can import.

A `ResultGrid` holds named float metrics [layer, position], the findings of checks (`Finding`), a typed config
(`GridConfig`) and optional per-sample values; `sel`, `best`, `table`, `summary`, `save` / `load` (atomic, every
file checksummed and verified on load, `grids.folder`). Ablation, patching, steering and attribution return one;
`probes.ProbeGrid` adds held-out scores, labels and groups; `viz` draws any of them.

    >>> import numpy as np, grids
    >>> g = grids.ResultGrid([0, 1], ["latent_0"], {"delta_logp": np.array([[-0.5], [0.1]])})
    >>> g.best("delta_logp")
    (1, 'latent_0')
"""

from grids.config import TYPED_KEYS, GridConfig
from grids.finding import SEVERITIES, Finding
from grids.folder import GRID_FILES, GRID_JSON, SCORES_FILE, TABLE_CSV, read_format
from grids.result import ResultGrid

__all__ = ["ResultGrid", "Finding", "SEVERITIES", "GridConfig", "TYPED_KEYS", "GRID_JSON", "TABLE_CSV", "SCORES_FILE",
           "GRID_FILES", "read_format"]
