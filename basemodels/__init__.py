"""basemodels: the base-model registry and the offline tokenizer, a leaf that codi and interp both import.

`interp.load_model` (and `interp.models`) is the public call; codi loads its base model from here.

    >>> from basemodels import load_model
    >>> load_model("tiny-gpt2").n_layers
    2
"""

from basemodels.facts import ModelFacts, context_length, facts, is_codi, pad_id, text_config
from basemodels.registry import MODELS, Model, cache_home, known_models, load_model, model_info, resolve_model_path

__all__ = ["ModelFacts", "facts", "is_codi", "pad_id", "text_config", "context_length",
           "Model", "load_model", "resolve_model_path", "known_models", "cache_home", "model_info", "MODELS"]
