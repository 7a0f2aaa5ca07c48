"""interp.interventions: ablation, activation patching, steering, attribution patching and thought curves on CODI
models, all on one engine and one study skeleton, all returning the neutral `grids.ResultGrid` (curves: `Curve`).

- `engine`: cells, batched edits at any (layer, position) and at the fed-back thought, each pass resumed from the
  baseline at the first call it edits;
- `batch`: the problems tokenised once and how the answer is scored;
- `study`: `CellStudy`, the skeleton ablate / patch / steer / attribute share (baseline, cells, groups, grid);
- `ablate`, `patch`, `steer`, `attribution` (AtP through the recurrence, checked by exact patching), `curves`
  (necessity and early exit), `pairs` (changed-number counterfactuals), `organism` (lens and counterfactual
  patching of a model organism).

`interp.patching` and `interp.curves` re-export these calls under their older names.

    >>> import codi
    >>> from interp import interventions as I
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> g = I.ablate(cm, [{"question": "3 + 4 = ?", "answer": "7"}], layers=["input"], progress=False)
    >>> type(g).__name__, g.positions
    ('ResultGrid', ['latent_0', 'latent_1'])
"""

from interp.interventions.ablate import MODES, ablate
from interp.interventions.attribution import METRICS, agreement, attribute
from interp.interventions.curves import Curve, early_exit, necessity, wilson
from interp.interventions.engine import INPUT, Edit, baseline, run_cells
from interp.interventions.pairs import changed_number_pairs, replay
from interp.interventions.patch import patch
from interp.interventions.steer import probe_direction, steer
from interp.interventions.study import CellStudy

__all__ = ["ablate", "patch", "steer", "attribute", "agreement", "necessity", "early_exit", "Curve", "wilson",
           "changed_number_pairs", "replay", "probe_direction", "INPUT", "MODES", "METRICS", "Edit", "baseline",
           "run_cells", "CellStudy"]
