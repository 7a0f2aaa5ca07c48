"""The model-spec loader of the application: what `codi-lens cache --model SPEC` (and `compare`) load.

    >>> from app.model_spec import load_for_cache
    >>> load_for_cache("tiny-gpt2").n_layers                                 # interp.Model
    2
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["load_for_cache"]


def load_for_cache(spec: str | os.PathLike, device: str | None = None):
    """What `codi-lens cache --model` loads: a CODI checkpoint folder (with `codi_config.json`) as a CODIModel,
    anything else with `interp.load_model`, on `device` (default: the loader's). Checks a checkpoint's base model
    is available before loading it.

    >>> load_for_cache("runs/codi-smol")        # a CODIModel (a run folder of yours)   # doctest: +SKIP
    >>> load_for_cache("smollm2-135m")          # an interp.Model (real weights)        # doctest: +SKIP
    >>> type(load_for_cache("tiny-llama")).__name__
    'Model'
    """
    from interp.models import known_models, load_model

    folder = Path(spec).expanduser()
    cfg_path = folder / "codi_config.json"
    if not cfg_path.exists():
        return load_model(spec, device=device)
    try:
        base = json.loads(cfg_path.read_text())["base_model"]
    except (json.JSONDecodeError, KeyError) as err:
        raise ValueError(
            f"{cfg_path} is not a CODI config with a 'base_model' ({err}); re-save the checkpoint "
            f"with CODIModel.save_pretrained."
        ) from None
    base_path = Path(str(base)).expanduser()
    hub_like = str(base).count("/") == 1 and not str(base).startswith((".", "/", "~"))
    if base not in known_models() and not base_path.is_dir() and not hub_like:
        raise FileNotFoundError(
            f"the CODI checkpoint {folder} was trained on the base model {base!r}, which is not available here: it "
            f"is not a registry name ({', '.join(known_models())}) and no folder exists at {base_path}. Put the "
            f"base model's Hugging Face folder there, or set 'base_model' in {cfg_path} to where it is now."
        )
    from codi.model import CODIModel

    return CODIModel.from_pretrained(folder, device=device)
