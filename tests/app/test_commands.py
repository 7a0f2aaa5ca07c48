"""`codi-lens cache` on a CODI checkpoint folder and a task; `codi-lens patch` (ablate, patch, attribute, necessity,
early-exit) on a checkpoint folder and on a shipped organism (app/commands.py)."""

from __future__ import annotations

import json
import warnings

import torch

import codi
from app.cli import main
from interp.codi_cache import load_codi_cache


def test_cli_caches_a_codi_folder_on_a_task(tmp_path, capsys):
    cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=2, lora_r=2))
    folder = cm.save_pretrained(tmp_path / "ckpt")
    args = ["cache", "--model", str(folder), "--task", "deception-arith", "--n", "4", "--out", str(tmp_path / "c")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*args, "--positions", "latents,eot,resp_0", "--layers", "1,2"]) == 0
    out = capsys.readouterr().out
    assert "latent views: latent_pre_prj (4, 2, 64), latent_post_prj (4, 2, 64)" in out and "identity check" in out
    c = load_codi_cache(tmp_path / "c")
    assert c.positions == ["latent_0", "latent_1", "eot", "resp_0"] and c.layers == [1, 2]
    assert c.samples["label"].tolist() == [0, 1, 0, 1] and c.extras["latent_pre_prj"].shape == (4, 2, 64)
    bad = ["cache", "--model", str(folder), "--task", "deception-arith", "--n", "4", "--positions", "latent_2"]
    assert main([*bad, "--out", str(tmp_path / "never")]) == 2
    assert "'latent_2' does not exist" in capsys.readouterr().err and not (tmp_path / "never").exists()


def test_cli_attribute_and_curves(tmp_path, capsys):
    from app.cli import main
    from codi.config import CODIConfig
    from codi.model import CODIModel
    from grids import ResultGrid

    torch.manual_seed(0)
    CODIModel.from_config(CODIConfig("tiny-llama", num_latents=2, lora_r=4)).save_pretrained(tmp_path / "run")
    common = ["--model", str(tmp_path / "run"), "--arith", "6", "--arith-steps", "2"]
    assert main(["patch", "--study", "attribute", *common, "--positions", "latents", "--verify-top", "3",
                 "--verify-sample", "4", "--out", str(tmp_path / "a")]) == 0
    g = ResultGrid.load(tmp_path / "a")
    assert g.config["kind"] == "attribution" and len(g.config["verification"]["top"]) == 3
    assert "AtP: 3 top cells and 4 random cells" in capsys.readouterr().out
    for study in ("necessity", "early-exit"):
        assert main(["patch", "--study", study, *common, "--out", str(tmp_path / study)]) == 0
        c = json.loads((tmp_path / study / "curve.json").read_text())
        assert c["steps"] == [0, 1, 2]
    assert main(["patch", "--study", "attribute", *common, "--verify-top", "-2", "--out", str(tmp_path / "b")]) == 2
    assert "--verify-top -2" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_cli_on_a_shipped_organism(tmp_path, capsys):
    from app.cli import main
    from grids import ResultGrid

    assert main(["patch", "--study", "attribute", "--organism", "pointer3", "--n", "8", "--hop", "2",
                 "--verify-top", "5", "--out", str(tmp_path / "a")]) == 0
    g = ResultGrid.load(tmp_path / "a")
    assert g.config["n"] == 8 and len(g.config["verification"]["top"]) == 5
    assert main(["patch", "--study", "necessity", "--organism", "pointer3", "--n", "50",
                 "--out", str(tmp_path / "n")]) == 0
    acc = json.loads((tmp_path / "n" / "curve.json").read_text())["values"]["accuracy"]
    assert acc[-1] > 0.8 and max(acc[:-1]) < 0.2, acc
    assert main(["patch", "--organism", "pointer9", "--out", str(tmp_path / "x")]) == 2
    assert "--organism 'pointer9': not shipped" in capsys.readouterr().err
    assert main(["patch", "--out", str(tmp_path / "x")]) == 2
    assert "exactly one of --model" in capsys.readouterr().err


def _tiny_codi_llama() -> codi.CODIModel:
    """A tiny-llama CODI model, 3 latents, LoRA B drawn at random (tests/interp/interventions' `llama` fixture)."""
    torch.manual_seed(0)
    cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=3, lora_r=4))
    with torch.no_grad():  # LoRA B starts at zero; give the adapter an effect
        for name, p in cm.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    return cm.eval()


def test_cli_patch_and_ablate(tmp_path, capsys):
    llama = _tiny_codi_llama()
    from app.cli import main
    from grids import ResultGrid

    llama.save_pretrained(tmp_path / "run")
    common = ["--model", str(tmp_path / "run"), "--arith", "4", "--arith-steps", "2"]
    assert (
        main(
            ["patch", *common, "--layers", "input,2", "--positions", "latents", "--out", str(tmp_path / "p")]
        )
        == 0
    )
    g = ResultGrid.load(tmp_path / "p")
    assert (
        g.layers == [-1, 2]
        and g.positions == ["latent_0", "latent_1", "latent_2"]
        and "recovered" in g.metrics
    )
    assert (
        main(
            [
                "patch",
                "--study",
                "ablate",
                *common,
                "--mode",
                "mean",
                "--merge",
                "--heatmap",
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 0
    )
    assert (tmp_path / "a" / "heatmap.html").exists()
    assert ResultGrid.load(tmp_path / "a").config["mode"] == "mean"
    assert main(["patch", *common, "--out", str(tmp_path / "p")]) == 2  # exists, no --overwrite
    assert "exists" in capsys.readouterr().err
