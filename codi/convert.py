"""Import a checkpoint of the official CODI code (zhenyi4/codi) as a `CODIModel`, and export ours in its layout.

The official checkpoint is the whole `CODI` module state dict with no config: `pytorch_model.bin` (read here with
`torch.load(weights_only=True)` only) or `model.safetensors`. Its keys:
    codi.base_model.model.<HF names>.base_layer.weight      frozen base weights (checked against `base_model`)
    codi.base_model.model.<HF names>.lora_A/B.default.weight LoRA (rank read from the shapes)
    codi.base_model.model.<embeddings>.weight               [V + 3, d]: rows V+1 = <bot>, V+2 = <eot> (V = pad)
    prj.1.* / prj.3.* / prj.ln.*                            Linear, Linear, LayerNorm of the projection
LoRA alpha, the number of latents and the eos format are not stored: pass them (defaults = the official scripts).

    >>> import codi, tempfile
    >>> from safetensors.torch import save_file
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", lora_r=4))
    >>> path = tempfile.mkdtemp() + "/model.safetensors"
    >>> save_file(codi.official_state_dict(cm), path)
    >>> codi.convert(path, base_model="tiny-gpt2", lora_alpha=cm.config.lora_alpha).config.lora_r
    4
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from torch import Tensor

from argcheck import BadArgument, check_bool, check_float, check_int, check_out_folder, check_str
from codi.config import CODIConfig

__all__ = ["convert", "official_state_dict", "load_official"]

_PREFIXES = ("codi.", "coconut.")
_BUFFERS = (".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq")
_PRJ = {"1.weight": "fc_in.weight", "1.bias": "fc_in.bias", "3.weight": "fc_out.weight", "3.bias": "fc_out.bias",
        "ln.weight": "ln.weight", "ln.bias": "ln.bias"}


def load_official(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read an official state dict: a `.safetensors`/`.bin` file or a folder holding one (pickles: weights only).

    Anything else (a text file, a damaged file, a pickle of objects) raises ValueError naming the file.

    >>> import codi, tempfile
    >>> from safetensors.torch import save_file
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=2, lora_r=4))
    >>> folder = tempfile.mkdtemp()
    >>> save_file(official_state_dict(cm), folder + "/model.safetensors")
    >>> sd = load_official(folder)                       # the file, or a folder holding one
    >>> len(sd), sorted(k for k in sd if k.startswith("prj.1"))
    (51, ['prj.1.bias', 'prj.1.weight'])
    """
    from safetensors.torch import load_file

    if not isinstance(path, (str, os.PathLike)) or not str(path).strip() or not Path(path).exists():
        raise FileNotFoundError(f"path={str(path)!r}: no such file or folder. Fix: pass the official checkpoint's "
                                f"pytorch_model.bin / model.safetensors, or its folder.")
    path = Path(path)
    if path.is_dir():
        found = [path / n for n in ("model.safetensors", "pytorch_model.bin") if (path / n).exists()]
        if not found:
            raise FileNotFoundError(f"{path} holds neither model.safetensors nor pytorch_model.bin.")
        path = found[0]
    with open(path, "rb") as f:
        head = f.read(9)
    if path.suffix == ".safetensors" or (len(head) == 9 and head[8:9] == b"{"):
        try:
            sd = load_file(str(path))
        except Exception as err:  # SafetensorError names no file
            raise ValueError(f"{path} is not a readable safetensors file ({err}); pass an official CODI "
                             f"model.safetensors or pytorch_model.bin.") from None
    elif head[:2] == b"PK" or head[:1] == b"\x80":  # torch zip archive, or a legacy pickle
        try:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, AttributeError, KeyError, EOFError, ValueError) as err:
            raise ValueError(f"{path} cannot be read with torch.load(weights_only=True) ({err}). It holds more than "
                             f"tensors or is damaged; codi-lens never unpickles arbitrary objects. Re-save the state "
                             f"dict as safetensors in a trusted environment.") from None
    else:
        raise ValueError(f"{path} is neither a safetensors file nor a torch checkpoint (it starts with {head!r}); "
                         f"pass an official CODI model.safetensors or pytorch_model.bin.")
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, Tensor) for v in sd.values()):
        raise ValueError(f"{path} is not a flat state dict of tensors.")
    return sd


def _split(sd: dict[str, Tensor]) -> tuple[dict, dict, dict]:
    lora, prj, base = {}, {}, {}
    for key, val in sd.items():
        if key.startswith("prj."):
            prj[key[4:]] = val
            continue
        k = next((key[len(p):] for p in _PREFIXES if key.startswith(p)), None)
        if k is None:
            raise ValueError(f"unexpected key {key!r}: an official CODI state dict has keys 'codi.*' and 'prj.*'.")
        if ".lora_A." in k or ".lora_B." in k:
            lora[k] = val
        elif not k.endswith(_BUFFERS):
            base[k] = val
    if not lora:
        raise ValueError("the state dict has no LoRA weights (lora_A/lora_B); is it an official CODI checkpoint?")
    unknown = sorted(set(prj) - set(_PRJ))
    missing = sorted({"1.weight", "1.bias", "3.weight", "3.bias"} - set(prj)) if prj else []
    if unknown or missing:
        raise ValueError("the projection keys do not match the official layout prj.1 (Linear), prj.3 (Linear), "
                         "prj.ln (LayerNorm): " + (f"unknown {['prj.' + k for k in unknown]}" if unknown else "")
                         + ("; " if unknown and missing else "") + (f"missing {['prj.' + k for k in missing]}"
                                                                    if missing else "")
                         + ". Was a key renamed? Restore the original key names.")
    return lora, prj, base


def _infer_config(base_model: str, lora: dict, prj: dict, **kw) -> CODIConfig:
    a_shapes = {v.shape[0] for k, v in lora.items() if ".lora_A." in k}
    if len(a_shapes) != 1:
        raise ValueError(f"LoRA ranks differ across layers ({sorted(a_shapes)}); not supported.")
    targets = []
    for k in lora:
        name = k.split(".lora_")[0].rsplit(".", 1)[-1]
        if name not in targets:
            targets.append(name)
    use_prj = bool(prj)
    prj_dim = int(prj["1.weight"].shape[0]) if use_prj else None
    return CODIConfig(base_model=base_model, lora_r=int(a_shapes.pop()), lora_target_modules=targets,
                      use_prj=use_prj, prj_dim=prj_dim, prj_layer_norm="ln.weight" in prj, **kw)


def _close(ours: Tensor, theirs: Tensor) -> bool:
    a, b = ours.to(theirs.dtype).float(), theirs.float()
    tol = 1e-5 if theirs.dtype == torch.float32 else 1e-2
    return bool((a - b).norm() <= tol * (b.norm() + 1e-12))


def _check_base(cm, base: dict[str, Tensor]) -> None:
    ours = {k: v for k, v in cm.model.state_dict().items() if ".lora_" not in k}
    legacy = {k.replace(".base_layer.", "."): k for k in ours}  # older peft had no base_layer in the key
    v = cm.vocab_size
    unknown, differ = [], []
    for k, theirs in base.items():
        mine = k if k in ours else legacy.get(k)
        if mine is None:
            unknown.append(k)
            continue
        ref = ours[mine]
        if theirs.dim() == 2 and theirs.shape[0] == v + 3 and ref.shape[0] == v:  # embeddings / LM head
            theirs = theirs[:v]
        if tuple(ref.shape) != tuple(theirs.shape) or not _close(ref, theirs):
            differ.append(f"{k} {tuple(theirs.shape)} vs base {tuple(ref.shape)}")
    if unknown or differ:
        raise ValueError(f"this checkpoint was not trained on base {cm.base_name!r}: "
                         + (f"{len(unknown)} keys unknown to it (e.g. {unknown[:3]}); " if unknown else "")
                         + (f"{len(differ)} base weights differ (e.g. {differ[:3]}). " if differ else "")
                         + "Pass the base model it was trained on.")
    seen = {k if k in ours else legacy.get(k) for k in base}
    emb, head = cm.model.get_input_embeddings().weight, cm.model.get_output_embeddings()
    tied = {k for k, t in ours.items() if head is not None and head.weight is emb and t.data_ptr() == emb.data_ptr()}
    lacking = sorted(k for k in ours if k not in seen and not k.endswith(_BUFFERS) and not (k in tied and tied & seen))
    if lacking:
        raise ValueError(f"the state dict lacks {len(lacking)} base weight(s) of {cm.base_name!r} (e.g. "
                         f"{lacking[:3]}): the file is incomplete or was edited. Use the complete official file.")


def convert(path: str | os.PathLike, base_model: str, *, num_latents: int = 6, lora_alpha: float = 32.0,
            eos_separators: bool = False, config: CODIConfig | None = None, out: str | os.PathLike | None = None,
            device=None, dtype=None):
    """Import an official CODI `pytorch_model.bin` / `model.safetensors` trained on `base_model` as a CODIModel.

    Rank, LoRA targets and projection size are read from the tensors; `num_latents`, `lora_alpha` and
    `eos_separators` (official `--remove_eos False`) are not stored in the file. The base weights in the file must
    match `base_model` (else an error). `out`: also save the result there with `save_pretrained`.

    >>> import codi, tempfile
    >>> from safetensors.torch import save_file
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=2, lora_r=4))
    >>> path = tempfile.mkdtemp() + "/model.safetensors"
    >>> save_file(official_state_dict(cm), path)
    >>> back = convert(path, base_model="tiny-gpt2", num_latents=2)
    >>> back.config.lora_r, back.config.lora_target_modules, torch.equal(back.special, cm.special)
    (4, ['c_attn', 'c_proj', 'c_fc'], True)
    >>> convert(path, base_model="tiny-llama")
    Traceback (most recent call last):
    ...
    ValueError: wrong base model: the checkpoint's LoRA adapts layers ['c_attn', 'c_proj', 'c_fc'], which ...
    """
    from codi.checkpoint import key_diff
    from codi.model import CODIModel

    _check_args(base_model, num_latents, lora_alpha, eos_separators, config, out)
    sd = load_official(path)
    try:
        lora, prj, base = _split(sd)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    inferred = _infer_config(base_model, lora, prj, num_latents=num_latents, lora_alpha=lora_alpha,
                             eos_separators=eos_separators)
    if config is not None:
        for f in ("lora_r", "use_prj", "prj_dim", "prj_layer_norm"):
            if getattr(config, f) != getattr(inferred, f) and not (f == "prj_dim" and config.prj_dim is None):
                raise ValueError(f"config.{f}={getattr(config, f)!r} but the checkpoint has {getattr(inferred, f)!r}.")
        inferred = config
    cm = _build(CODIModel, inferred, device, dtype)
    ours = {k: v for k, v in cm.model.named_parameters() if ".lora_" in k}
    diff = key_diff({k: tuple(v.shape) for k, v in ours.items()}, {k: tuple(v.shape) for k, v in lora.items()},
                    f"the LoRA weights of {path}")
    if diff:
        raise ValueError(diff + f"\nWrong base model? The checkpoint was not trained on {base_model!r}.")
    emb_key = next(k for k, p in cm.model.named_parameters() if p is cm.model.get_input_embeddings().weight)
    if emb_key not in base or base[emb_key].shape[0] != cm.vocab_size + 3:
        shape = tuple(base[emb_key].shape) if emb_key in base else None
        raise ValueError(f"expected {emb_key} with {cm.vocab_size} + 3 rows (pad, <bot>, <eot>) for base "
                         f"{base_model!r}; found {shape}. Wrong base model?")
    try:
        _check_base(cm, base)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    with torch.no_grad():
        for k, p in ours.items():
            p.copy_(lora[k].to(p))
        if inferred.use_prj:
            mapped = {_PRJ.get(k, k): v for k, v in prj.items()}
            diff = key_diff({k: tuple(v.shape) for k, v in cm.prj.state_dict().items()},
                            {k: tuple(v.shape) for k, v in mapped.items()}, f"the projection of {path}")
            if diff:
                raise ValueError(diff)
            cm.prj.load_state_dict({k: v.to(cm.dtype) for k, v in mapped.items()})
        rows = base[emb_key][cm.vocab_size + 1: cm.vocab_size + 3]
        cm.special.copy_(rows.to(cm.special))
    if out is not None:
        cm.save_pretrained(out)
    return cm


def _check_args(base_model, num_latents, lora_alpha, eos_separators, config, out) -> None:
    check_str("base_model", base_model, fix="pass the base the checkpoint was trained on, e.g. 'gpt2-124m'")
    check_int("num_latents", num_latents, min=1)
    check_float("lora_alpha", lora_alpha, min=0, min_open=True)
    check_bool("eos_separators", eos_separators)
    if config is not None and not isinstance(config, CODIConfig):
        raise BadArgument("config", config, "must be a CODIConfig or None")
    if out is not None:
        check_out_folder("out", out)


def _build(cls, cfg: CODIConfig, device, dtype):
    """`cls.from_config(cfg)`; LoRA targets that the base lacks mean a checkpoint of another architecture."""
    try:
        return cls.from_config(cfg, device=device, dtype=dtype)
    except ValueError as err:
        if "not found in the base model" not in str(err):  # peft: the LoRA targets are not layers of this base
            raise
        raise ValueError(f"wrong base model: the checkpoint's LoRA adapts layers {cfg.lora_target_modules}, which "
                         f"{cfg.base_model!r} does not have. Pass the base model it was trained on.") from None


def official_state_dict(cm, dtype: torch.dtype | None = None) -> dict[str, Tensor]:
    """`cm` in the official CODI layout (embeddings padded to V + 3 rows; <bot> at V+1, <eot> at V+2).

    Tensors are cloned (tied weights become separate copies) so the dict can be written with safetensors.

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=2, lora_r=4))
    >>> sd = official_state_dict(cm)
    >>> emb = sd["codi.base_model.model.transformer.wte.weight"]          # V + 3 rows: pad, <bot>, <eot>
    >>> tuple(emb.shape), cm.vocab_size, torch.equal(emb[cm.vocab_size + 1:], cm.special.detach())
    ((515, 64), 512, True)
    """
    v = cm.vocab_size
    emb = cm.model.get_input_embeddings().weight
    head = cm.model.get_output_embeddings()
    out = {}
    for k, t in cm.model.state_dict().items():
        t = t.detach()
        if t.data_ptr() == emb.data_ptr() or (head is not None and t.data_ptr() == head.weight.data_ptr()):
            extra = torch.zeros(3, t.shape[1], dtype=t.dtype, device=t.device)
            if t.data_ptr() == emb.data_ptr():
                extra[1:] = cm.special.detach().to(t)
            t = torch.cat([t[:v], extra])
        out["codi." + k] = t.to(dtype or t.dtype).cpu().clone().contiguous()
    if cm.config.use_prj:
        back = {ours: theirs for theirs, ours in _PRJ.items()}
        for k, t in cm.prj.state_dict().items():
            out["prj." + back[k]] = t.detach().to(dtype or t.dtype).cpu().clone().contiguous()
    return out
