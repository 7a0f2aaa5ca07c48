"""`codi-lens cache` on a CODI checkpoint folder and a task (app/commands.py)."""

from __future__ import annotations

import warnings

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
