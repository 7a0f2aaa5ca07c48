"""Training-state checkpoints for `codi.train`: everything needed for an exact resume, without pickle.

A checkpoint is a folder `checkpoints/step_000050/` holding
    model/                     `cm.save_pretrained` (a CODI folder that loads on its own)
    trainable.safetensors      the trainable parameters by name (restored in place on resume / rollback)
    optimizer.safetensors      every tensor of the optimizer state, keyed "state.<param index>.<name>"
    optimizer.json             the rest of the optimizer state dict (param groups, non-tensor values)
    rng_<rank>.safetensors     torch CPU (and CUDA) generator states of each process
    rng_<rank>.json            Python `random` and numpy generator states of each process
    state.json                 step, learning-rate scale, divergence-guard state, loss history, configs, and the
                               sha256 of every other file ("checksums"), checked before a resume or rollback reads it
It is written under a project temporary name (`.codi-lens-step_NNNNNN.ckpt.tmp`, removed by the next save of that
step) and renamed when complete, so a killed run never leaves half a checkpoint; a damaged checkpoint (a file
changed, cut or missing) raises ValueError naming the file, and `codi.train` sets it aside and resumes from the one
before.

    >>> import codi, tempfile
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=1, lora_r=2))
    >>> out = tempfile.mkdtemp() + "/run"
    >>> _ = codi.train(cm, codi.data.arithmetic(4), out, max_steps=1, batch_size=2, progress=False)
    >>> ckpts = list_checkpoints(train_dir(out))             # step 0 is always written, then every checkpoint_every
    >>> [c.name for c in ckpts], sorted(p.name for p in ckpts[-1].iterdir())
    (['step_000000', 'step_000001'], ['model', 'optimizer.json', 'optimizer.safetensors', 'rng_0.json',
     'rng_0.safetensors', 'state.json', 'trainable.safetensors'])
    >>> state = read_state(ckpts[-1]); state["step"], state["good"], len(state["losses"])
    (1, True, 1)
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from formats import TMP_PREFIX, atomic_save_safetensors, atomic_write_json, clean_temporaries, read_json, verify_files

__all__ = ["train_dir", "checkpoint_dir", "temporary_dir", "list_checkpoints", "write_checkpoint_tmp",
           "finish_checkpoint", "verify_checkpoint", "set_aside", "mark_bad", "read_state", "load_checkpoint",
           "CKPT_DIR", "STATE", "STATE_KEYS"]

CKPT_DIR = "checkpoints"
STATE = "state.json"
TRAINABLE, OPTIMIZER, OPTIMIZER_JSON = "trainable.safetensors", "optimizer.safetensors", "optimizer.json"
STATE_KEYS = ("step", "lr_scale", "guard", "injected", "good", "losses", "events", "wall_s", "train_config",
              "codi_config")
_STEP_RE = re.compile(r"step_\d{6,}")


def train_dir(out: str | Path) -> Path:
    """The folder that holds a run's checkpoints and live record: `<out>-train` next to `out`.

    >>> train_dir("runs/codi-smol").as_posix()
    'runs/codi-smol-train'
    """
    out = Path(out)
    return out.parent / f"{out.name}-train"


def checkpoint_dir(out: Path, step: int) -> Path:
    """The folder of the checkpoint of optimizer step `step` in the run folder `out`.

    >>> checkpoint_dir(train_dir("runs/codi-smol"), 50).as_posix()
    'runs/codi-smol-train/checkpoints/step_000050'
    """
    return Path(out) / CKPT_DIR / f"step_{step:06d}"


def temporary_dir(final: Path, clean: bool) -> Path:
    """The temporary folder a checkpoint is written into: the same name on every process; with `clean`, stale
    temporaries of this step (a killed run) are removed first.

    >>> temporary_dir(checkpoint_dir("runs/x-train", 50), clean=False).name
    '.codi-lens-step_000050.ckpt.tmp'
    """
    final = Path(final)
    if clean:
        clean_temporaries(final.parent, final.name)
    return final.with_name(f"{TMP_PREFIX}{final.name}.ckpt.tmp")


def list_checkpoints(out: str | Path) -> list[Path]:
    """Complete checkpoints under `<run folder>/checkpoints`, oldest first (temporaries and set-aside damaged
    checkpoints are ignored).

    >>> import codi, tempfile
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=1, lora_r=2))
    >>> out = tempfile.mkdtemp() + "/run"
    >>> _ = codi.train(cm, codi.data.arithmetic(4), out, max_steps=1, batch_size=2, progress=False)
    >>> [c.name for c in list_checkpoints(train_dir(out))], list_checkpoints(tempfile.mkdtemp())
    (['step_000000', 'step_000001'], [])
    """
    root = Path(out) / CKPT_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and _STEP_RE.fullmatch(p.name) and (p / STATE).is_file())


# ----------------------------------------------------------------------------------------------------------
# optimizer state <-> safetensors + JSON

def _optimizer_to_flat(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
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


def _optimizer_from_flat(tensors: dict[str, torch.Tensor], structure: dict) -> dict:
    """Inverse of `_optimizer_to_flat`: rebuild a state dict that `optimizer.load_state_dict` accepts."""
    state: dict[int, dict] = {int(i): dict(v) for i, v in structure["plain_state"].items()}
    for key, t in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = t
    return {"state": state, "param_groups": structure["param_groups"]}


# ----------------------------------------------------------------------------------------------------------
# random number generators

def _rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    py = random.getstate()
    np_state = np.random.get_state()
    plain = {"python": [py[0], list(py[1]), py[2]],
             "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])]}
    return tensors, plain


def _set_rng_state(tensors: dict[str, torch.Tensor], plain: dict) -> None:
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
    """Write this process's share of a checkpoint into the temporary folder `tmp` (main writes the model).

    What `codi.train` does at every checkpoint, on every process, before the main one calls `finish_checkpoint`:

    >>> import codi, tempfile
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=1, lora_r=2))
    >>> params = cm.trainable_parameters(); opt = torch.optim.AdamW(params.values())
    >>> final = checkpoint_dir(tempfile.mkdtemp(), 0); tmp = temporary_dir(final, clean=True)
    >>> state = dict(step=0, lr_scale=1.0, guard={}, injected=[], good=True, losses=[], events=[], wall_s=0.0,
    ...              train_config={}, codi_config={})
    >>> write_checkpoint_tmp(tmp, cm=cm, trainable=params, optimizer=opt, state=state, rank=0, is_main=True)
    >>> finish_checkpoint(tmp, final, keep=2, protect=[])
    >>> [c.name for c in list_checkpoints(final.parent.parent)], tmp.exists()
    (['step_000000'], False)
    """
    tmp.mkdir(parents=True, exist_ok=True)
    r_tensors, r_plain = _rng_state()
    atomic_save_safetensors(r_tensors, tmp / f"rng_{rank}.safetensors")
    atomic_write_json(tmp / f"rng_{rank}.json", r_plain, indent=None)
    if not is_main:
        return
    cm.save_pretrained(tmp / "model")
    atomic_save_safetensors({k: v.detach().cpu().contiguous() for k, v in trainable.items()}, tmp / TRAINABLE)
    o_tensors, o_struct = _optimizer_to_flat(optimizer.state_dict())
    atomic_save_safetensors(o_tensors, tmp / OPTIMIZER)
    atomic_write_json(tmp / OPTIMIZER_JSON, o_struct, indent=None)
    atomic_write_json(tmp / STATE, state)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != STATE)


def finish_checkpoint(tmp: Path, final: Path, keep: int, protect: list[Path]) -> None:
    """Record the sha256 of every file in state.json, rename the complete temporary checkpoint into place and
    delete old ones beyond `keep` (never `protect`). Example: `write_checkpoint_tmp`, and here the pruning:

    >>> import codi, tempfile
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=1, lora_r=2))
    >>> out = tempfile.mkdtemp() + "/run"
    >>> _ = codi.train(cm, codi.data.arithmetic(4), out, max_steps=1, batch_size=2, progress=False)
    >>> run = train_dir(out); first, last = list_checkpoints(run)
    >>> tmp = temporary_dir(checkpoint_dir(run, 2), clean=True); _ = shutil.copytree(last, tmp)
    >>> finish_checkpoint(tmp, checkpoint_dir(run, 2), keep=1, protect=[first])     # keeps the newest + protected
    >>> [c.name for c in list_checkpoints(run)]
    ['step_000000', 'step_000002']
    """
    from formats import file_sha256

    state = read_json(tmp / STATE)
    state["checksums"] = {rel: file_sha256(tmp / rel) for rel in _files(tmp)}
    atomic_write_json(tmp / STATE, state)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    keep_names = {p.name for p in protect}
    ckpts = list_checkpoints(final.parent.parent)
    for old in ckpts[:-keep] if keep > 0 else []:
        if old.name not in keep_names:
            shutil.rmtree(old, ignore_errors=True)


def verify_checkpoint(ckpt: Path) -> dict:
    """Check a checkpoint before it is read: state.json parses and holds every key, and every file matches the
    sha256 recorded when it was written (checkpoints written before checksums existed: state.json only). Raises
    ValueError naming the damaged file; returns the state.

    >>> import codi, tempfile
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=1, lora_r=2))
    >>> out = tempfile.mkdtemp() + "/run"
    >>> _ = codi.train(cm, codi.data.arithmetic(4), out, max_steps=1, batch_size=2, progress=False)
    >>> ckpt = list_checkpoints(train_dir(out))[-1]
    >>> verify_checkpoint(ckpt)["step"]
    1
    >>> with open(ckpt / "optimizer.safetensors", "r+b") as f:
    ...     _ = f.seek(-1, 2); _ = f.write(b"x")                       # one byte changed
    >>> verify_checkpoint(ckpt)
    Traceback (most recent call last):
    ...
    ValueError: ...optimizer.safetensors does not match the checksum recorded when it was written: ...
    """
    ckpt = Path(ckpt)
    st = read_state(ckpt)
    missing = [k for k in STATE_KEYS if k not in st] if isinstance(st, dict) else list(STATE_KEYS)
    if missing:
        raise ValueError(f"{ckpt / STATE} lacks {missing}: the file was edited or damaged.")
    verify_files(ckpt, st.get("checksums") or {}, what="the checkpoint",
                 fix="resume from an earlier checkpoint (codi.train does this by itself)")
    return st


def set_aside(ckpt: Path) -> Path:
    """Rename a damaged checkpoint to `<name>.damaged[-k]` (kept for inspection, never listed again).

    >>> import codi, tempfile
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=1, lora_r=2))
    >>> out = tempfile.mkdtemp() + "/run"
    >>> _ = codi.train(cm, codi.data.arithmetic(4), out, max_steps=1, batch_size=2, progress=False)
    >>> ckpt = list_checkpoints(train_dir(out))[-1]
    >>> set_aside(ckpt).name, [c.name for c in list_checkpoints(train_dir(out))]
    ('step_000001.damaged', ['step_000000'])
    """
    ckpt = Path(ckpt)
    k, aside = 1, ckpt.with_name(f"{ckpt.name}.damaged")
    while aside.exists():
        k += 1
        aside = ckpt.with_name(f"{ckpt.name}.damaged-{k}")
    os.replace(ckpt, aside)
    return aside


def mark_bad(ckpt: Path) -> None:
    """Record in `ckpt/state.json` that training diverged again right after rolling back to it.

    >>> import codi, tempfile
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=1, lora_r=2))
    >>> out = tempfile.mkdtemp() + "/run"
    >>> _ = codi.train(cm, codi.data.arithmetic(4), out, max_steps=1, batch_size=2, progress=False)
    >>> ckpt = list_checkpoints(train_dir(out))[-1]
    >>> mark_bad(ckpt); read_state(ckpt)["good"]
    False
    """
    st = read_state(ckpt)
    st["good"] = False
    atomic_write_json(Path(ckpt) / STATE, st)


def read_state(ckpt: Path) -> dict:
    """The checkpoint's state.json (a damaged file raises ValueError naming it).

    >>> import codi, tempfile
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=1, lora_r=2))
    >>> out = tempfile.mkdtemp() + "/run"
    >>> _ = codi.train(cm, codi.data.arithmetic(4), out, max_steps=1, batch_size=2, progress=False)
    >>> state = read_state(list_checkpoints(train_dir(out))[-1])
    >>> state["step"], state["lr_scale"], [sorted(e) for e in state["losses"]][0][:4]
    (1, 1.0, ['distill', 'grad_norm', 'latent_distill', 'lr'])
    """
    return read_json(Path(ckpt) / STATE)


def load_checkpoint(ckpt: Path, *, params: dict[str, torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                    rank: int) -> dict:
    """Verify `ckpt`, then restore parameters (in place), optimizer and this process's RNG; return its state.

    >>> import codi, tempfile
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=1, lora_r=2))
    >>> out = tempfile.mkdtemp() + "/run"
    >>> _ = codi.train(cm, codi.data.arithmetic(4), out, max_steps=1, batch_size=2, progress=False)
    >>> params = cm.trainable_parameters()                  # an optimizer laid out as codi.train's: two groups
    >>> opt = torch.optim.AdamW([{"params": [p for p in params.values() if p.ndim >= 2]},
    ...                          {"params": [p for p in params.values() if p.ndim < 2]}])
    >>> before = {n: p.detach().clone() for n, p in params.items()}
    >>> with torch.no_grad():
    ...     _ = [p.zero_() for p in params.values()]                    # lose the trained values
    >>> load_checkpoint(list_checkpoints(train_dir(out))[-1], params=params, optimizer=opt, rank=0)["step"]
    1
    >>> all(torch.equal(p, before[n]) for n, p in params.items()), len(opt.state) > 0
    (True, True)
    """
    ckpt = Path(ckpt)
    state = verify_checkpoint(ckpt)
    saved = load_file(str(ckpt / TRAINABLE))
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
    structure = read_json(ckpt / OPTIMIZER_JSON)
    tensors = load_file(str(ckpt / OPTIMIZER))
    optimizer.load_state_dict(_optimizer_from_flat(tensors, structure))
    rng_file = ckpt / f"rng_{rank}.safetensors"
    if rng_file.is_file():
        _set_rng_state(load_file(str(rng_file)), read_json(ckpt / f"rng_{rank}.json"))
    return state
