"""`codi-lens compare` (app/compare.py) on tiny models: the config file formats and their refusals, one study per
model with the white-box gain, and the plain-model path recomputed by hand. (Basename test_app_compare: viz has a
test_compare.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import interp
import probes
from app.compare import PLAIN_POSITIONS, CompareConfig, ModelSpec, load_config, run_compare
from app.demo import CACHE_POSITIONS

ROOT = Path(__file__).resolve().parents[2]


def test_compare_on_tiny_models(tmp_path):
    cfg = CompareConfig.from_dict(
        {
            "title": "tiny <script>",
            "out": str(tmp_path / "cmp"),
            "task": {"name": "deception-arith", "n": 24, "seed": 1},
            "study": {
                "layer_stride": 2,
                "permutations": 0,
                "folds": 3,
                "positions": ["q[-1]", "bot", "latent_0", "latent_5", "eot", "resp_0", "resp_3"],
            },
            "models": [{"model": "tiny-llama", "name": "llama"}, {"model": "tiny-gpt2", "name": "gpt2"}],
        }
    )
    res = run_compare(cfg, verbose=False)
    assert [r["model"] for r in res.rows] == ["llama", "gpt2"]
    for r in res.rows:
        g = res.grids[r["model"]]
        # the white-box gain per model: at the best latent cell, and the largest over all cells
        lat = [p for p in g.positions if p.startswith("latent_")]
        bl, bp = g.best("auroc", positions=lat)
        assert r["latent_gain"] == pytest.approx(g.sel("auroc", bl, bp) - g.sel("text_auroc", bl, bp))
        assert r["max_gain"] == pytest.approx(np.nanmax(g.metrics["gain"]))
        assert r["max_gain_lo"] <= r["max_gain"] <= r["max_gain_hi"]
        latent = [i for i, p in enumerate(g.positions) if p.startswith("latent_")]
        assert r["best_latent_auroc"] == pytest.approx(np.nanmax(g.metrics["auroc"][:, latent]))
        assert r["best_latent_lo"] <= r["best_latent_auroc"] <= r["best_latent_hi"]
        assert g.layers == [0, 2]
    html = res.report.read_text()
    assert "Across models" in html and "tiny &lt;script&gt;" in html
    md = (tmp_path / "cmp" / "summary.md").read_text()
    assert md.count("| llama |") == 1 and "gain at best latent" in md and "largest gain" in md


def test_compare_config_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown config key"):
        CompareConfig.from_dict(
            {"models": [{"model": "tiny-llama"}], "task": {"name": "deception-arith"}, "layerstride": 2}
        )
    with pytest.raises(ValueError, match="needs a list of models"):
        CompareConfig.from_dict({"task": {"name": "deception-arith"}})
    with pytest.raises(ValueError, match="codi = 'lora'"):
        CompareConfig.from_dict({"models": [{"model": "tiny-llama", "codi": "lora"}]})
    bad = tmp_path / "c.toml"
    bad.write_text("models = [\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        CompareConfig.load(bad)
    assert not (tmp_path / "runs").exists()
    assert CACHE_POSITIONS[-1] == "response"


CONFIG = {"title": "t", "out": "runs/x", "task": {"name": "deception-arith", "n": 16, "seed": 2},
          "study": {"layer_stride": 1, "folds": 2}, "models": [{"model": "tiny-llama", "name": "llama"}]}
TOML = """title = "t"
out = "runs/x"
[task]
name = "deception-arith"
n = 16
seed = 2
[study]
layer_stride = 1
folds = 2
[[models]]
model = "tiny-llama"
name = "llama"
"""
YAML = """title: t
out: runs/x
task: {name: deception-arith, n: 16, seed: 2}
study: {layer_stride: 1, folds: 2}
models:
  - {model: tiny-llama, name: llama}
"""


def test_the_three_file_formats_read_the_same_config(tmp_path):
    files = {"c.toml": TOML, "c.yaml": YAML, "c.yml": YAML, "c.json": json.dumps(CONFIG)}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        assert load_config(tmp_path / name) == CONFIG, name
    cfg = CompareConfig.load(tmp_path / "c.toml")
    assert cfg.layer_stride == 1 and cfg.folds == 2 and cfg.permutations == 20 and cfg.task["seed"] == 2
    assert cfg.models == [ModelSpec("tiny-llama", name="llama", checkpoint=None, codi="fresh")]
    assert CompareConfig.from_dict(cfg.to_dict()) == cfg                       # to_dict round-trips


def test_the_shipped_example_config_loads():
    cfg = CompareConfig.load(ROOT / "examples" / "compare.toml")
    assert [m.name for m in cfg.models] == ["SmolLM2-135M", "Gemma3-270M", "Qwen2.5-Coder-0.5B"]
    assert [m.model for m in cfg.models] == ["smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b"]
    assert cfg.layer_stride == 3 and cfg.Cs == [0.001, 0.1, 10.0] and cfg.task["placement"] == "before"


def test_bad_config_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="see examples/compare.toml"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "c.ini").write_text("x = 1\n")
    with pytest.raises(ValueError, match="use a .toml, .yaml/.yml or .json file"):
        load_config(tmp_path / "c.ini")
    (tmp_path / "c.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        load_config(tmp_path / "c.yaml")
    with pytest.raises(ValueError, match="the config names no models"):
        CompareConfig(models=[])
    with pytest.raises(ValueError, match="display names repeat"):
        CompareConfig(models=[ModelSpec("tiny-llama"), {"model": "tiny-llama"}])
    with pytest.raises(ValueError, match=r"\[task\] needs name ="):
        CompareConfig(models=[ModelSpec("tiny-llama")], task={"n": 16})
    with pytest.raises(ValueError, match="every models entry needs model ="):
        CompareConfig.from_dict({"models": [{"name": "x"}]})
    with pytest.raises(ValueError, match=r"unknown models key\(s\) \['base'\]"):
        CompareConfig.from_dict({"models": [{"model": "tiny-llama", "base": "x"}]})
    assert ModelSpec("tiny-gpt2").name == "tiny-gpt2"


def test_a_checkpoint_without_codi_config_is_refused_before_writing(tmp_path, refused):
    (tmp_path / "ckpt").mkdir()
    cfg = CompareConfig(models=[ModelSpec("tiny-llama", name="m", checkpoint=str(tmp_path / "ckpt"))],
                        task={"name": "deception-arith", "n": 8}, out=str(tmp_path / "cmp"))
    refused(lambda: run_compare(cfg, verbose=False), FileNotFoundError, "'m'", "codi_config.json")


def test_a_plain_model_reads_prompt_and_response_as_one_text(tmp_path):
    """codi = "none": the cached text is prompt + newline + response, the positions the last 8 prompt tokens, and the
    grid equals a sweep of that cache with the same settings."""
    cfg = CompareConfig(models=[ModelSpec("tiny-gpt2", name="gpt2", codi="none")], out=str(tmp_path / "cmp"),
                        task={"name": "deception-arith", "n": 16, "seed": 1}, layer_stride=1, folds=2,
                        permutations=0, Cs=[1.0], text_baseline=False)
    res = run_compare(cfg, verbose=False)
    row, grid = res.rows[0], res.grids["gpt2"]
    assert row["how"] == "plain model (prompt + response as one text)" and row["n_layers"] == 2
    assert grid.positions == PLAIN_POSITIONS and grid.layers == [0, 1, 2]
    cache = interp.load_cache(tmp_path / "cmp" / "gpt2" / "cache")
    task = probes.tasks.load("deception-arith", n=16, seed=1)
    assert cache.samples["text"].tolist() == [s["text"] + "\n" + s["response"] for s in task.records()]
    again = probes.sweep(cache, target="label", method="logreg", folds=2, chunk=32, Cs=(1.0,), n_permutations=0,
                         n_bootstrap=500, seed=0, progress=False)
    np.testing.assert_array_equal(grid.metrics["auroc"], again.metrics["auroc"])
    assert "latent_gain" not in row and "max_gain" not in row              # text_baseline = false
    md = (tmp_path / "cmp" / "summary.md").read_text()
    assert md.count("| gpt2 | 2 | 64 | plain model") == 1 and "| - | - |" in md
