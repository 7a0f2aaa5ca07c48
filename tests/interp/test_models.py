"""interp.models: the registry of the basemodels leaf under interp's public name (`interp.load_model`); the facts a
loaded model carries equal its Hugging Face config."""

from __future__ import annotations

import inspect

import basemodels.registry as registry
import interp
import interp.models as models


def test_every_name_is_the_registrys_own():
    for name in models.__all__:
        # unwrap: tests/conftest.py wraps registry.resolve_model_path to keep real weights in slow tests
        assert getattr(models, name) is inspect.unwrap(getattr(registry, name)), name
    assert interp.load_model is registry.load_model and interp.Model is registry.Model
    assert interp.known_models is registry.known_models


def test_loaded_facts_equal_the_config():
    assert {"tiny-gpt2", "tiny-llama"} <= set(models.known_models())
    for name in ("tiny-gpt2", "tiny-llama"):
        m = interp.load_model(name)
        cfg = m.model.config
        assert (m.name, m.n_layers, m.d_model) == (name, cfg.num_hidden_layers, cfg.hidden_size)
        info = next(x for x in models.model_info() if x["name"] == name)
        assert (info["n_layers"], info["d_model"]) == (m.n_layers, m.d_model)
