"""Ablation, activation patching, steering and attribution patching on CODI continuous thoughts (the older home
of these calls; the code lives in `interp.interventions`).

Results are neutral result grids (`grids.ResultGrid`: layers x positions metrics), so `viz.heatmap(grid,
metric=...)` draws them. Layer -1 (`"input"` in arguments) is the continuous thought as fed back into the model;
layers 0..n_layers are the residual stream (`interp.hooks`). Every call packs many cells into one latent loop and
reuses the unedited prompt call (`share_prompt=True`); `cells_per_pass=1, share_prompt=False` is the plain
cell-by-cell loop (same numbers).

    >>> import codi
    >>> from interp import patching as P
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> probs = codi.data.arithmetic(8, steps=2, seed=1)
    >>> g = P.ablate(cm, probs, positions="latents", layers=["input"], mode="zero", progress=False)
    >>> g.sel("delta_accuracy", layer=-1).shape                   # accuracy change per zeroed thought
    (2,)
    >>> clean, corrupt = P.changed_number_pairs(probs, cm.tokenizer)
    >>> h = P.patch(cm, clean[:2], corrupt[:2], positions="latents", progress=False)   # every (layer, position)
    >>> h.layers
    [-1, 0, 1, 2]
"""

from interp.interventions.ablate import MODES, ablate
from interp.interventions.attribution import agreement, attribute
from interp.interventions.curves import early_exit, necessity
from interp.interventions.engine import INPUT
from interp.interventions.pairs import changed_number_pairs
from interp.interventions.patch import patch
from interp.interventions.steer import probe_direction, steer

__all__ = ["ablate", "patch", "attribute", "agreement", "necessity", "early_exit", "steer", "probe_direction",
           "changed_number_pairs", "INPUT", "MODES"]
