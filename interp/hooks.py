"""Hooks on the residual stream of any decoder-only Hugging Face model. All hook registration lives here.

    >>> import interp, torch
    >>> m = interp.load_model("tiny-llama")
    >>> ids = m.tokenizer(["hello world"], return_tensors="pt")
    >>> with interp.hooks.record_residuals(m.model, layers=[0, 2], stop=True) as rec:
    ...     m.model(**ids)                      # stops right after block 1; the LM head never runs
    >>> [tuple(t.shape) for t in rec.residuals[2]]
    [(1, 9, 64)]

Layers are integers `0..n_layers`: 0 is the input of the first decoder block (the embedding output, after any
position embedding or scaling), `l` is the output of decoder block `l-1` (un-normed residual stream, TransformerLens
`blocks.{l-1}.hook_resid_post`). Layer 0 is read at the input of block 0, not at the embedding module, because the
embedding module does not run when a model is called with `inputs_embeds=` (CODI's latent steps) and GPT-2 adds its
position embeddings after it.

The decoder blocks are found structurally (the `nn.ModuleList` holding `num_hidden_layers` identical blocks), so
GPT-2, Llama, Gemma3, Qwen2, peft-wrapped models and models wrapped by a TransformerBridge all work without tables.
Every context manager removes its hooks on exit, also when the forward raised. Early stop follows the idea of
baukit's `nethook`: a private exception raised after the last needed layer, swallowed by the context manager.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from basemodels.facts import text_config

__all__ = ["n_layers_of", "decoder_layers", "embedding_module", "residual_modules", "record_residuals",
           "edit_residual", "Recording", "CallClock"]


class _StopForward(Exception):
    """Raised by a hook after the last requested layer; caught by `record_residuals`."""


def _text_config(model: nn.Module):
    cfg = getattr(model, "config", None)
    if cfg is None:
        raise TypeError(f"{type(model).__name__} has no `.config`; pass a Hugging Face causal LM (or interp.Model).")
    return text_config(cfg)


def n_layers_of(model: nn.Module) -> int:
    """Number of decoder blocks (`num_hidden_layers` of the text config).

    >>> import interp
    >>> n_layers_of(interp.load_model("tiny-gpt2").model)
    2
    """
    cfg = _text_config(model)
    for key in ("num_hidden_layers", "n_layer", "num_layers"):
        if getattr(cfg, key, None) is not None:
            return int(getattr(cfg, key))
    raise TypeError(f"cannot read the number of layers from the config of {type(model).__name__}.")


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The `nn.ModuleList` of decoder blocks, found by structure: the first ModuleList (outermost first) whose
    length is the model's layer count and whose entries share one class. Skips vision/audio towers by name.

    >>> import interp
    >>> len(decoder_layers(interp.load_model("tiny-llama").model))
    2
    """
    n = n_layers_of(model)
    candidates = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) == n and len({type(b) for b in mod}) == 1:
            if any(k in name.lower() for k in ("vision", "audio", "encoder.", "visual")):
                continue
            candidates.append((name, mod))
    if not candidates:
        raise TypeError(
            f"could not find the {n} decoder blocks of {type(model).__name__} (no nn.ModuleList of length {n}). "
            "interp supports decoder-only Hugging Face causal LMs (GPT-2, Llama, Gemma3, Qwen2, ...)."
        )
    return candidates[0][1]


def embedding_module(model: nn.Module) -> nn.Module:
    """The token embedding module (`get_input_embeddings()`).

    >>> import interp
    >>> embedding_module(interp.load_model("tiny-llama").model)
    Embedding(512, 64, padding_idx=0)
    """
    return model.get_input_embeddings()


def residual_modules(model: nn.Module) -> list[nn.Module]:
    """`n_layers + 1` modules: [embedding, block_0, ..., block_{n-1}]. Residual `l >= 1` is the OUTPUT of entry
    `l`; residual 0 is read at the INPUT of block 0 (see the module docstring for why), not at the embedding.

    >>> import interp
    >>> len(residual_modules(interp.load_model("tiny-gpt2").model))
    3
    """
    return [embedding_module(model), *decoder_layers(model)]


def _check_layers(layers: Sequence[int], n: int) -> list[int]:
    out = sorted({int(layer) for layer in layers})
    bad = [layer for layer in out if not 0 <= layer <= n]
    if bad:
        raise ValueError(f"layers {bad} are out of range: this model has {n} layers, so valid layers are 0..{n} "
                         f"(0 = embeddings, {n} = after the last block).")
    return out


def _hidden_from_args(args: tuple, kwargs: dict) -> Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _hidden_from_output(output) -> Tensor:
    return output if isinstance(output, Tensor) else output[0]


def _replace_output(output, new: Tensor):
    if isinstance(output, Tensor):
        return new
    return (new, *output[1:])


@contextmanager
def _hooks(handles: list) -> Iterator[None]:
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class CallClock:
    """The number of the forward call in progress, told by whoever drives the calls and read by the hooks.

    Without a clock a hook numbers the forward calls it sees itself (0, 1, 2, ...). A driver that skips a call
    (codi's latent loop given the prompt call's state, `prompt_state=`) tells the hooks the true number instead:
    pass the same clock as the loop's `on_call=` and as the hooks' `clock=`, and call numbers mean the same thing
    with and without the skipped call (they are `Segment.call` of the run).

    >>> clock = CallClock(); clock(3); clock.call
    3
    """

    def __init__(self) -> None:
        self.call = -1

    def __call__(self, call: int) -> None:
        self.call = int(call)


def _counter_hook(layers: nn.ModuleList, counter: list[int], prepend: bool, clock: CallClock | None = None,
                  seen: list[int] | None = None):
    def count(_mod, _args, _kwargs):
        counter[0] = clock.call if clock is not None else counter[0] + 1
        if seen is not None:
            seen.append(counter[0])
    return layers[0].register_forward_pre_hook(count, with_kwargs=True, prepend=prepend)


Select = Int[Tensor, "batch pos"] | Callable[[int, Tensor], "Tensor | None"] | None


@dataclass
class Recording:
    """What `record_residuals` collected: `residuals[layer]` is a list with one tensor per forward call,
    `[batch, seq_of_this_call, d_model]` (or `[batch, n_selected, d_model]` with `select=`).

    >>> import interp, torch
    >>> m = interp.load_model("tiny-llama")
    >>> with record_residuals(m.model, [0, 2]) as rec:
    ...     _ = m.model(torch.tensor([[3, 4, 5]]))
    ...     _ = m.model(torch.tensor([[6]]))
    >>> rec.layers, rec.n_calls, [tuple(t.shape) for t in rec.residuals[2]]
    ([0, 2], 2, [(1, 3, 64), (1, 1, 64)])
    """

    layers: list[int]
    residuals: dict[int, list[Tensor]] = field(default_factory=dict)
    n_calls: int = 0
    calls: list[int] = field(default_factory=list)  # the call number of each recorded forward, in order

    def stacked(self, call: int = -1) -> Float[Tensor, "batch layer pos d_model"]:
        """All recorded layers of one forward call stacked on dim 1 (on the model's device).

        >>> import interp, torch
        >>> m = interp.load_model("tiny-llama")
        >>> with record_residuals(m.model, [0, 1, 2]) as rec:
        ...     _ = m.model(torch.tensor([[3, 4, 5]]))
        >>> rec.stacked(0).shape                  # [batch, layer, pos, d_model]
        torch.Size([1, 3, 3, 64])
        """
        return torch.stack([self.residuals[layer][call] for layer in self.layers], dim=1)

    def at(self, layer: int, call: int) -> Tensor:
        """The residual at `layer` recorded in forward call number `call` (a `CallClock`'s number when the hooks
        had one; the same as `residuals[layer][call]` when every call ran).

        >>> import interp, torch
        >>> m = interp.load_model("tiny-llama")
        >>> clock = CallClock()
        >>> with record_residuals(m.model, [1], clock=clock) as rec:
        ...     clock(7); _ = m.model(torch.tensor([[3, 4]]))
        >>> rec.calls, tuple(rec.at(1, 7).shape)
        ([7], (1, 2, 64))
        """
        if call not in self.calls:
            raise KeyError(f"forward call {call} was not recorded; recorded calls: {self.calls}")
        return self.residuals[layer][self.calls.index(call)]


def _apply_select(select, call: int, h: Tensor) -> Tensor:
    if select is None:
        return h.detach()
    index = select(call, h) if callable(select) else select
    if index is None:
        return h.detach()
    index = index.to(h.device)
    rows = torch.arange(h.shape[0], device=h.device)[:, None]
    return h.detach()[rows, index]


@contextmanager
def record_residuals(model: nn.Module, layers: Sequence[int] | str = "all", *, select: Select = None,
                     stop: bool = False, clock: CallClock | None = None) -> Iterator[Recording]:
    """Record the residual stream at `layers` on every forward call of `model` while the block is active.

    `select`: a LongTensor `[batch, pos]` of columns to keep (gathered on the device, before any host copy), or
    `fn(call_index, hidden) -> LongTensor [batch, pos] | None` to choose per forward call (None keeps all).
    `stop=True` ends the forward right after the last requested layer (the rest of the model and the LM head never
    run; the model call then returns nothing, which the context manager swallows). `clock`: take call numbers
    from the driver of the calls (see `CallClock`); `Recording.calls` lists them. Hooks are removed on exit.

    >>> import interp, torch
    >>> m = interp.load_model("tiny-llama")
    >>> ids = m.tokenizer(["hello world"], return_tensors="pt")
    >>> with record_residuals(m.model, [1], select=torch.tensor([[0, 3]])) as rec:
    ...     _ = m.model(**ids)
    >>> rec.residuals[1][0].shape      # [batch, 2 selected positions, d_model]
    torch.Size([1, 2, 64])
    """
    blocks = decoder_layers(model)
    n = len(blocks)
    wanted = list(range(n + 1)) if layers == "all" else _check_layers(layers, n)
    rec = Recording(layers=wanted, residuals={layer: [] for layer in wanted})
    last = max(wanted)
    counter = [-1]

    def keep(layer: int, h: Tensor) -> None:
        rec.residuals[layer].append(_apply_select(select, counter[0], h))
        rec.n_calls = counter[0] + 1
        if stop and layer == last:
            raise _StopForward

    handles = [_counter_hook(blocks, counter, True, clock, rec.calls)]  # runs before every other hook on block 0
    if 0 in wanted:
        handles.append(blocks[0].register_forward_pre_hook(
            lambda _m, args, kwargs: keep(0, _hidden_from_args(args, kwargs)), with_kwargs=True))
    for layer in wanted:
        if layer >= 1:
            def post(_m, _args, output, layer=layer):
                keep(layer, _hidden_from_output(output))
            handles.append(blocks[layer - 1].register_forward_hook(post))
    with _hooks(handles):
        try:
            yield rec
        except _StopForward:
            pass


@contextmanager
def edit_residual(model: nn.Module, layer: int,
                  fn: Callable[[Float[Tensor, "batch pos d_model"], int], Tensor], *,
                  clock: CallClock | None = None) -> Iterator[None]:
    """Replace the residual at `layer` with `fn(residual, call_index)` on every forward call (patching, ablation,
    steering). Edits run before any recording hook, so `record_residuals` sees the edited stream. `clock`: take
    call numbers from the driver of the calls (see `CallClock`) instead of counting them.

    >>> import interp, torch
    >>> m = interp.load_model("tiny-llama")
    >>> ids = torch.tensor([[3, 4, 5]])
    >>> with edit_residual(m.model, 1, lambda h, call: h * 0):
    ...     with record_residuals(m.model, [1]) as rec:
    ...         _ = m.model(ids)
    >>> bool((rec.residuals[1][0] == 0).all())      # the recording sees the edited stream
    True
    >>> with edit_residual(m.model, 1, lambda h, call: h * 0):
    ...     edited = m.model(ids).logits
    >>> bool(torch.allclose(edited, m.model(ids).logits))       # the edit changed the output; hooks are gone
    False
    """
    blocks = decoder_layers(model)
    layer = _check_layers([layer], len(blocks))[0]
    counter = [-1]
    if layer == 0:
        def pre(_m, args, kwargs):
            new = fn(_hidden_from_args(args, kwargs), counter[0])
            if args:
                return (new, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": new}
        handles = [blocks[0].register_forward_pre_hook(pre, with_kwargs=True, prepend=True)]
    else:
        def post(_m, _args, output):
            return _replace_output(output, fn(_hidden_from_output(output), counter[0]))
        handles = [blocks[layer - 1].register_forward_hook(post, prepend=True)]
    handles.append(_counter_hook(blocks, counter, True, clock))  # registered last + prepend = runs first
    with _hooks(handles):
        yield
