"""Training-state checkpoints for `codi.train`: everything needed for an exact resume, without pickle.

A checkpoint is a folder `checkpoints/step_000050/` holding
    model/                     `cm.save_pretrained` (a CODI folder that loads on its own)
    trainable.safetensors      the trainable parameters by name (restored in place on resume / rollback)
    optimizer.safetensors      every tensor of the optimizer state, keyed "state.<param index>.<name>"
    optimizer.json             the rest of the optimizer state dict (param groups, non-tensor values)
    rng_<rank>.safetensors     torch CPU (and CUDA) generator states of each process
    rng_<rank>.json            Python `random` and numpy generator states of each process
    state.json                 step, learning-rate scale, divergence-guard state, loss history, configs
It is written under a temporary name and renamed when complete, so a killed run never leaves half a checkpoint.

    >>> ckpts = list_checkpoints("runs/codi-smol-train")           # doctest: +SKIP
    >>> state = read_state(ckpts[-1])                          # doctest: +SKIP
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

CKPT_DIR = "checkpoints"


def checkpoint_dir(out: Path, step: int) -> Path:
    return Path(out) / CKPT_DIR / f"step_{step:06d}"


def list_checkpoints(out: str | Path) -> list[Path]:
    """Complete checkpoints under `<run folder>/checkpoints`, oldest first (temporary folders are ignored)."""
    root = Path(out) / CKPT_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_") and
                  not p.name.endswith(".tmp") and (p / "state.json").is_file())


# ----------------------------------------------------------------------------------------------------------
# optimizer state <-> safetensors + JSON

def optimizer_to_flat(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split `optimizer.state_dict()` into a flat tensor dict and a JSON-able structure."""
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict] = {}
    for idx, st in state_dict["state"].items():
        plain[str(idx)] = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"state.{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                plain[str(idx)][k] = v
    return tensors, {"param_groups": state_dict["param_groups"], "plain_state": plain}


def optimizer_from_flat(tensors: dict[str, torch.Tensor], structure: dict) -> dict:
    """Inverse of `optimizer_to_flat`: rebuild a state dict that `optimizer.load_state_dict` accepts."""
    state: dict[int, dict] = {int(i): dict(v) for i, v in structure["plain_state"].items()}
    for key, t in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = t
    return {"state": state, "param_groups": structure["param_groups"]}


# ----------------------------------------------------------------------------------------------------------
# random number generators

def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    py = random.getstate()
    np_state = np.random.get_state()
    plain = {"python": [py[0], list(py[1]), py[2]],
             "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])]}
    return tensors, plain


def set_rng_state(tensors: dict[str, torch.Tensor], plain: dict) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("torch_cuda_"))]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)
    v, internal, gauss = plain["python"]
    random.setstate((v, tuple(internal), gauss))
    a, keys, pos, has_gauss, cached = plain["numpy"]
    np.random.set_state((a, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


# ----------------------------------------------------------------------------------------------------------
# whole checkpoints

def write_checkpoint_tmp(tmp: Path, *, cm, trainable: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
                         state: dict, rank: int, is_main: bool) -> None:
    """Write this process's share of a checkpoint into the temporary folder `tmp` (main writes the model)."""
    tmp.mkdir(parents=True, exist_ok=True)
    r_tensors, r_plain = rng_state()
    save_file(r_tensors, str(tmp / f"rng_{rank}.safetensors"))
    (tmp / f"rng_{rank}.json").write_text(json.dumps(r_plain))
    if not is_main:
        return
    cm.save_pretrained(tmp / "model")
    save_file({k: v.detach().cpu().contiguous() for k, v in trainable.items()}, str(tmp / "trainable.safetensors"))
    o_tensors, o_struct = optimizer_to_flat(optimizer.state_dict())
    save_file(o_tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "optimizer.json").write_text(json.dumps(o_struct))
    (tmp / "state.json").write_text(json.dumps(state, indent=1))


def finish_checkpoint(tmp: Path, final: Path, keep: int, protect: list[Path]) -> None:
    """Rename a complete temporary checkpoint into place and delete old ones beyond `keep` (never `protect`)."""
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    keep_names = {p.name for p in protect}
    ckpts = list_checkpoints(final.parent.parent)
    for old in ckpts[:-keep] if keep > 0 else []:
        if old.name not in keep_names:
            shutil.rmtree(old, ignore_errors=True)


def mark_bad(ckpt: Path) -> None:
    """Record in `ckpt/state.json` that training diverged again right after rolling back to it."""
    st = read_state(ckpt)
    st["good"] = False
    tmp = Path(ckpt) / "state.json.tmp"
    tmp.write_text(json.dumps(st, indent=1))
    tmp.replace(Path(ckpt) / "state.json")


def read_state(ckpt: Path) -> dict:
    return json.loads((Path(ckpt) / "state.json").read_text())


def load_checkpoint(ckpt: Path, *, params: dict[str, torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                    rank: int) -> dict:
    """Restore parameters (in place), optimizer and this process's RNG from `ckpt`; return its state.json."""
    ckpt = Path(ckpt)
    saved = load_file(str(ckpt / "trainable.safetensors"))
    missing, extra = sorted(set(params) - set(saved)), sorted(set(saved) - set(params))
    if missing or extra:
        raise ValueError(f"{ckpt}: trainable parameters do not match the model (missing {missing[:5]}, "
                         f"unexpected {extra[:5]}); resume with the same CODIConfig that started the run")
    with torch.no_grad():
        for name, p in params.items():
            if saved[name].shape != p.shape:
                raise ValueError(f"{ckpt}: parameter {name} has shape {tuple(saved[name].shape)} in the "
                                 f"checkpoint but {tuple(p.shape)} in the model; use the same CODIConfig")
            p.copy_(saved[name].to(p.device, p.dtype))
    structure = json.loads((ckpt / "optimizer.json").read_text())
    tensors = load_file(str(ckpt / "optimizer.safetensors"))
    optimizer.load_state_dict(optimizer_from_flat(tensors, structure))
    rng_file = ckpt / f"rng_{rank}.safetensors"
    if rng_file.is_file():
        set_rng_state(load_file(str(rng_file)), json.loads((ckpt / f"rng_{rank}.json").read_text()))
    return read_state(ckpt)
