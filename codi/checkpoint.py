"""CODI checkpoint folders: written atomically, read with strict key checks.

Layout (`CODIModel.save_pretrained(folder)`):
    codi_config.json              CODIConfig (base model name, shapes of the base, every setting)
    adapter/                      peft adapter folder (adapter_config.json + adapter_model.safetensors);
                                  `peft.PeftModel.from_pretrained(base, folder / "adapter")` loads it
    model/                        instead of adapter/ when `finetune="full"`: the whole trained base as a plain
                                  Hugging Face folder (config.json + model.safetensors + tokenizer)
    projection.safetensors        prj weights (keys fc_in.*, fc_out.*, ln.*)
    special_tokens.safetensors    "bot" [d], "eot" [d]
    tokenizer/                    the tokenizer
    (training_record.json, ...)   extra files (e.g. the training record) passed as `extra_files`
    checksums.json                sha256 of every file above, checked on load (a changed, cut or swapped file is
                                  refused with its name; folders written before checksums existed load unchecked)
The folder is built under a project temporary name beside `folder` and renamed into place when complete; a killed
save leaves only that temporary, which the next save to the same folder removes.

    >>> import codi, tempfile
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", lora_r=4))
    >>> folder = cm.save_pretrained(tempfile.mkdtemp() + "/ckpt")
    >>> codi.CODIModel.from_pretrained(folder).config == cm.config
    True
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from argcheck import BadArgument
from codi.config import CODIConfig
from formats import (
    atomic_save_safetensors,
    atomic_write_bytes,
    atomic_write_json,
    file_sha256,
    read_json,
    staged_folder,
    verify_files,
)

__all__ = ["save_checkpoint", "load_checkpoint", "key_diff", "load_tensors", "verify_checksums", "FORMAT"]

FORMAT = "codi-lens-checkpoint/1"
CONFIG, ADAPTER, PROJ, SPECIAL, TOKENIZER = ("codi_config.json", "adapter", "projection.safetensors",
                                             "special_tokens.safetensors", "tokenizer")
CHECKSUMS = "checksums.json"
MODEL = "model"  # the whole base, for finetune="full"
_MODEL_FILES = {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                "tokenizer_config.json", "special_tokens_map.json"}
_ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors", "README.md"}
_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".safetensors", ".gguf")


def key_diff(expected: dict[str, tuple], found: dict[str, tuple], what: str) -> str | None:
    """A readable difference between two {key: shape} maps, or None when they match.

    >>> print(key_diff({"a": (2,), "b": (3,)}, {"a": (2,), "b": (4,), "c": (1,)}, "prj.safetensors"))
    prj.safetensors does not match the model:
    unexpected keys (1):
      c
    shape mismatches (1):
      b: expected (3,), found (4,)
    >>> key_diff({"a": (2,)}, {"a": (2,)}, "x") is None
    True
    """
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = [f"  {k}: expected {expected[k]}, found {found[k]}" for k in sorted(set(expected) & set(found))
              if tuple(expected[k]) != tuple(found[k])]
    if not (missing or unexpected or shapes):
        return None

    def block(title: str, rows: list[str]) -> str:
        more = f"\n  ... and {len(rows) - 8} more" if len(rows) > 8 else ""
        return f"{title} ({len(rows)}):\n" + "\n".join(f"  {r}" for r in rows[:8]) + more

    out = [f"{what} does not match the model:"]
    if missing:
        out.append(block("missing keys", missing))
    if unexpected:
        out.append(block("unexpected keys", unexpected))
    if shapes:
        out.append(f"shape mismatches ({len(shapes)}):\n" + "\n".join(shapes[:8]))
    return "\n".join(out)


def _is_checkpoint(folder: Path) -> bool:
    return (folder / CONFIG).exists()


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file as tensors; a damaged file raises ValueError naming it (not a bare SafetensorError),
    and so do NaN/inf values (a checkpoint with them would load and generate nonsense).

    >>> import tempfile, pathlib
    >>> from formats import atomic_save_safetensors
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.safetensors"
    >>> _ = atomic_save_safetensors({"bot": torch.zeros(4)}, p)
    >>> load_tensors(p)["bot"].shape
    torch.Size([4])
    >>> _ = atomic_save_safetensors({"bot": torch.tensor([1.0, float("nan")])}, p)
    >>> load_tensors(p)
    Traceback (most recent call last):
    ...
    ValueError: ...t.safetensors holds NaN/inf values in ['bot']: the model was saved from a diverged run or ...
    """
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except Exception as err:  # SafetensorError, OSError: the message names neither the file nor the fix
        raise ValueError(f"{path} cannot be read as safetensors ({type(err).__name__}: {err}); the file is damaged "
                         f"or not a safetensors file. Re-save the checkpoint.") from None
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ValueError(f"{path} holds NaN/inf values in {bad[:5]}: the model was saved from a diverged run or the "
                         f"file was edited. Use an earlier checkpoint.")
    return tensors


def _write_adapter(cm, dest: Path) -> None:
    from peft import get_peft_model_state_dict

    cm.model.save_pretrained(str(dest))
    written = load_tensors(dest / "adapter_model.safetensors")
    expected = get_peft_model_state_dict(cm.model)
    diff = key_diff({k: tuple(v.shape) for k, v in expected.items()},
                    {k: tuple(v.shape) for k, v in written.items()}, "the adapter peft wrote")
    if diff:
        raise RuntimeError(diff)


def _file_list(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS)


def save_checkpoint(cm, folder: str | os.PathLike, extra_files: dict[str, str | bytes] | None = None) -> Path:
    """Write `cm` into `folder` via a temporary sibling folder and a rename (never half-written), with the sha256
    of every file in checksums.json.

    An existing CODI checkpoint at `folder` is replaced; any other non-empty folder raises before writing.

    >>> import codi, tempfile
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=2, lora_r=4))
    >>> folder = save_checkpoint(cm, tempfile.mkdtemp() + "/ckpt", extra_files={"notes.txt": "first run"})
    >>> sorted(p.name for p in folder.iterdir())
    ['adapter', 'checksums.json', 'codi_config.json', 'notes.txt', 'projection.safetensors',
     'special_tokens.safetensors', 'tokenizer']
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not _is_checkpoint(folder))):
        raise FileExistsError(f"{folder} exists and is not a CODI checkpoint; refusing to overwrite it. "
                              f"Choose a new folder or delete it.")
    for name in extra_files or {}:
        if "/" in name or name in {CONFIG, ADAPTER, MODEL, PROJ, SPECIAL, TOKENIZER, CHECKSUMS} or \
                name.endswith(_WEIGHT_SUFFIXES):
            raise ValueError(f"extra file name {name!r} is reserved or looks like weights; use e.g. "
                             f"'training_record.json'.")
    text = json.dumps(dict(cm.config.to_dict(), format=FORMAT), indent=2)  # fails before anything is written
    with staged_folder(folder, replace=True) as tmp:
        if cm.config.finetune == "full":
            cm.model.save_pretrained(str(tmp / MODEL), safe_serialization=True)
            cm.tokenizer.save_pretrained(str(tmp / MODEL))
        else:
            _write_adapter(cm, tmp / ADAPTER)
        prj = {k: v.detach().cpu().contiguous() for k, v in cm.prj.state_dict().items()}
        atomic_save_safetensors(prj, tmp / PROJ, metadata={"format": FORMAT})
        sp = cm.special.detach().cpu()
        atomic_save_safetensors({"bot": sp[0].contiguous(), "eot": sp[1].contiguous()}, tmp / SPECIAL,
                                metadata={"format": FORMAT})
        cm.tokenizer.save_pretrained(str(tmp / TOKENIZER))
        for name, content in (extra_files or {}).items():
            atomic_write_bytes(tmp / name, content.encode() if isinstance(content, str) else content)
        atomic_write_bytes(tmp / CONFIG, text.encode())
        atomic_write_json(tmp / CHECKSUMS, {rel: file_sha256(tmp / rel) for rel in _file_list(tmp)})
    return folder


def verify_checksums(folder: str | os.PathLike) -> bool:
    """Check every file listed in `folder/checksums.json` (ValueError naming a changed or missing file); False
    when the folder has no checksums (written before they existed).

    >>> import codi, tempfile
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=2, lora_r=4))
    >>> folder = cm.save_pretrained(tempfile.mkdtemp() + "/ckpt")
    >>> verify_checksums(folder)
    True
    >>> _ = (folder / "codi_config.json").write_text("{}")
    >>> verify_checksums(folder)
    Traceback (most recent call last):
    ...
    ValueError: ...codi_config.json does not match the checksum recorded when it was written: ...
    """
    folder = Path(folder)
    if not (folder / CHECKSUMS).is_file():
        return False
    sums = read_json(folder / CHECKSUMS)
    if not isinstance(sums, dict):
        raise ValueError(f"{folder / CHECKSUMS} is not a JSON object of file -> sha256: the file was edited.")
    verify_files(folder, sums, what=f"the checkpoint ({CHECKSUMS} records it)",
                 fix="re-save the checkpoint with CODIModel.save_pretrained (or restore the file)")
    return True


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; pass the folder written by CODIModel.save_pretrained.")
    names = {p.name for p in folder.iterdir()}
    if CONFIG not in names:
        if names & {"pytorch_model.bin", "model.safetensors"}:
            raise ValueError(f"{folder} holds an official-CODI style state dict, not a codi-lens checkpoint. Import "
                             f"it with codi.convert({str(folder)!r}, base_model=...).")
        if "config.json" in names:
            raise ValueError(f"{folder} is a plain Hugging Face model folder; load it with interp.load_model.")
        raise FileNotFoundError(f"{folder} has no {CONFIG}: it is not a CODI checkpoint (files: {sorted(names)}).")
    weights = MODEL if MODEL in names and ADAPTER not in names else ADAPTER
    missing = [n for n in (weights, PROJ, SPECIAL, TOKENIZER) if n not in names]
    if weights == MODEL:
        missing += [f"{MODEL}/{n}" for n in ("config.json", "model.safetensors") if not (folder / MODEL / n).exists()]
    if ADAPTER in names:
        missing += [f"{ADAPTER}/{n}" for n in ("adapter_config.json", "adapter_model.safetensors")
                    if not (folder / ADAPTER / n).exists()]
    if missing:
        raise FileNotFoundError(f"checkpoint {folder} is incomplete: missing {missing}. Re-save it with "
                                f"CODIModel.save_pretrained.")
    foreign = [n for n in names if n.endswith(_WEIGHT_SUFFIXES) and n not in (PROJ, SPECIAL)]
    sub, allowed = (MODEL, _MODEL_FILES) if weights == MODEL else (ADAPTER, _ADAPTER_FILES)
    foreign += [f"{sub}/{p.name}" for p in (folder / sub).iterdir() if p.name not in allowed]
    if foreign:
        raise ValueError(f"checkpoint {folder} contains foreign files {sorted(foreign)} that would be ignored; "
                         f"remove them or move them out of the folder.")


def _load_strict(module: torch.nn.Module, tensors: dict, what: str) -> None:
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    diff = key_diff(expected, {k: tuple(v.shape) for k, v in tensors.items()}, what)
    if diff:
        raise ValueError(diff)
    module.load_state_dict(tensors, strict=True)


def load_checkpoint(cls, folder: str | os.PathLike, device=None, dtype=None):
    """Build the base from the saved config, then load adapter, prj, <bot>/<eot> rows and tokenizer strictly
    (`CODIModel.from_pretrained(folder)` calls this with `cls=CODIModel`).

    >>> import codi, tempfile
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=2, lora_r=4))
    >>> back = load_checkpoint(codi.CODIModel, cm.save_pretrained(tempfile.mkdtemp() + "/ckpt"))
    >>> back.config == cm.config, torch.equal(back.special, cm.special)
    (True, True)
    """
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    if not isinstance(folder, (str, os.PathLike)) or not str(folder).strip():
        raise BadArgument("folder", folder, "must be the path of a folder written by CODIModel.save_pretrained",
                          "pass e.g. 'runs/codi-smol'")
    folder = Path(folder)
    _check_folder(folder)
    verify_checksums(folder)
    raw = read_json(folder / CONFIG)
    if not isinstance(raw, dict):
        raise ValueError(f"{folder / CONFIG} holds a JSON {type(raw).__name__}, not a config object.")
    fmt = raw.pop("format", None)
    if fmt != FORMAT:
        raise ValueError(f"{folder / CONFIG} has format {fmt!r}; this codi-lens reads {FORMAT!r}.")
    cfg = CODIConfig.from_dict(raw)
    if cfg.finetune == "full":
        return _load_full(cls, folder, cfg, device, dtype)
    adapter_cfg = read_json(folder / ADAPTER / "adapter_config.json")
    if adapter_cfg.get("r") != cfg.lora_r or sorted(adapter_cfg.get("target_modules") or []) != sorted(
            cfg.lora_target_modules or []):
        raise ValueError(f"{folder}: adapter_config.json (r={adapter_cfg.get('r')}, targets="
                         f"{adapter_cfg.get('target_modules')}) disagrees with {CONFIG} (r={cfg.lora_r}, targets="
                         f"{cfg.lora_target_modules}); the folder mixes files of two models.")
    try:
        cm = cls.from_config(cfg, device=device, dtype=dtype)
    except ValueError as err:
        raise ValueError(f"{folder}: {err}") from None
    adapter = load_tensors(folder / ADAPTER / "adapter_model.safetensors")
    expected = get_peft_model_state_dict(cm.model)
    diff = key_diff({k: tuple(v.shape) for k, v in expected.items()},
                    {k: tuple(v.shape) for k, v in adapter.items()}, f"{folder / ADAPTER}")
    if diff:
        raise ValueError(diff)
    set_peft_model_state_dict(cm.model, adapter)
    return _load_rest(cm, folder)


def _load_full(cls, folder: Path, cfg: CODIConfig, device, dtype):
    """A finetune="full" checkpoint: the base comes from `folder/model`, then prj, <bot>/<eot> and tokenizer."""
    if not (folder / MODEL).is_dir():
        raise FileNotFoundError(f"{folder / CONFIG} says finetune='full' but {folder / MODEL} is missing.")
    try:
        cm = cls.from_config(cfg, device=device, dtype=dtype, weights=folder / MODEL)
    except ValueError as err:
        raise ValueError(f"{folder}: {err}") from None
    bad = [n for n, p in cm.model.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad:
        raise ValueError(f"{folder / MODEL} holds NaN/inf weights in {bad[:5]}: use an earlier checkpoint.")
    return _load_rest(cm, folder)


def _load_rest(cm, folder: Path):
    from transformers import AutoTokenizer

    _load_strict(cm.prj, load_tensors(folder / PROJ), f"{folder / PROJ}")
    special = load_tensors(folder / SPECIAL)
    diff = key_diff({"bot": (cm.d_model,), "eot": (cm.d_model,)}, {k: tuple(v.shape) for k, v in special.items()},
                    f"{folder / SPECIAL}")
    if diff:
        raise ValueError(diff)
    with torch.no_grad():
        cm.special.copy_(torch.stack([special["bot"], special["eot"]]).to(cm.special))
    cm.tokenizer = AutoTokenizer.from_pretrained(str(folder / TOKENIZER))
    if cm.tokenizer.pad_token is None:
        cm.tokenizer.pad_token = cm.tokenizer.eos_token
    cm.eval()
    return cm
