"""The model registry as interp's public call: `interp.load_model` / `interp.models.load_model`.

The registry lives in the leaf `basemodels` (so that codi can load base models without importing interp); this
module re-exports its public names.

    >>> import interp
    >>> m = interp.load_model("tiny-llama")
    >>> (m.n_layers, m.d_model)
    (2, 64)
"""

from basemodels.registry import MODELS, Model, cache_home, known_models, load_model, model_info, resolve_model_path

__all__ = ["Model", "load_model", "resolve_model_path", "known_models", "cache_home", "model_info", "MODELS"]
