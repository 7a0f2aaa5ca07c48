"""interp: hooks, caches, stores, patching and lenses for plain and CODI language models.

    >>> import interp
    >>> m = interp.load_model("tiny-llama")
    >>> m.n_layers
    2
    >>> c = interp.cache(m, ["The capital of France is", "Hi"])     # all layers, all positions
    >>> c.sel(layer=1, position="last").shape                         # float32 [sample, d_model]
    (2, 64)
"""

from interp import curves, hooks, identity, interventions, lens, patching, templates
from interp.cache import ActivationCache, cache, load_cache
from interp.interop import to_nnsight, to_transformer_lens
from interp.models import Model, known_models, load_model
from interp.templates import Template

__all__ = ["Model", "load_model", "known_models", "cache", "load_cache", "ActivationCache", "to_transformer_lens",
           "to_nnsight", "curves", "hooks", "interventions", "identity", "lens", "patching", "templates", "Template"]
