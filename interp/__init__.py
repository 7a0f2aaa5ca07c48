"""interp: hooks, caches, stores, patching and lenses for plain and CODI language models.

    >>> import interp
    >>> m = interp.load_model("tiny-llama")
    >>> m.n_layers
    2
"""

from interp.models import Model, known_models, load_model

__all__ = ["Model", "load_model", "known_models"]
