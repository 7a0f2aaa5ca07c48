"""Necessity and early-exit curves of a CODI model's thoughts (the older home of these calls; the code lives in
`interp.interventions.curves`).

    >>> import codi
    >>> from interp import curves
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4)).eval()
    >>> curves.necessity(cm, [{"question": "3 + 4 = ?", "answer": "7"}]).steps
    [0, 1, 2]
"""

from interp.interventions.curves import Curve, early_exit, necessity, wilson

__all__ = ["Curve", "necessity", "early_exit", "wilson"]
