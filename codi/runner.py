"""What a trained CODI model and its merged copy share: the projection, <bot>/<eot> rows, `run` and `generate`.

`CODIModel` (LoRA via peft) and `MergedCODI` (LoRA folded in) both subclass `CODIRunner`, so tokenisation and the
calls into `codi.loop.latent_loop` exist once.

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=2, lora_r=4))
    >>> out = cm.generate(["Tom has 3 bags of 4 apples. How many?"], max_new_tokens=5, return_latents=True)
    >>> out.latents.shape
    torch.Size([1, 2, 64])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from codi.batch import extract_answer, left_pad, pad_id, prompt_token_ids, response_lead, right_pad, text_response
from codi.config import CODIConfig
from codi.loop import LatentRun, PromptState, latent_loop

__all__ = ["Projection", "CODIRunner", "GenerateOutput"]


class Projection(nn.Module):
    """prj: Dropout -> Linear(d, hidden) -> GELU -> Linear(hidden, d) [-> LayerNorm(d)] (the official layout).

    >>> prj = Projection(64, 32)
    >>> tuple(prj(torch.randn(2, 64)).shape), [n for n, _ in prj.named_children()]
    ((2, 64), ['dropout', 'fc_in', 'act', 'fc_out', 'ln'])
    """

    def __init__(self, d: int, hidden: int, layer_norm: bool = True, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc_in = nn.Linear(d, hidden)
        self.act = nn.GELU()
        self.fc_out = nn.Linear(hidden, d)
        self.ln = nn.LayerNorm(d) if layer_norm else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.fc_out(self.act(self.fc_in(self.dropout(x))))
        return self.ln(x) if self.ln is not None else x


@dataclass
class GenerateOutput:
    """Answers and, on request, the latents (before/after prj) and their top tokens through the LM head.

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=2, lora_r=4))
    >>> out = cm.generate(["Tom has 3 apples. He buys 2."], max_new_tokens=4, return_latents=True)
    >>> len(out.answers), len(out.texts), tuple(out.latent_inputs.shape), out.top_tokens is None
    (1, 1, (1, 2, 64), True)
    >>> torch.equal(out.latents, out.run.latents)                    # the whole LatentRun is kept too
    True
    """

    answers: list[str]  # the number after the answer marker ("" when none)
    texts: list[str]  # decoded generated text
    run: LatentRun
    latents: Tensor | None = None  # [batch, k, d] before prj
    latent_inputs: Tensor | None = None  # [batch, k, d] after prj
    top_tokens: list[list[list[str]]] | None = None  # [batch][k][top_k] decoded tokens
    top_token_ids: Tensor | None = None  # [batch, k, top_k]
    top_token_probs: Tensor | None = None  # [batch, k, top_k]


class CODIRunner(nn.Module):
    """Base of CODIModel and MergedCODI. Subclasses set `.model`, `.prj`, `.special`, `.tokenizer`, `.config`.

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4))
    >>> isinstance(cm, CODIRunner) and isinstance(cm.merge(), CODIRunner)
    True
    >>> cm.base_name, cm.n_layers, cm.d_model, cm.vocab_size, tuple(cm.bot_embeds.shape)
    ('tiny-llama', 2, 64, 512, (64,))
    """

    IS_CODI_RUNNER = True  # what `basemodels.facts.is_codi` reads: the one "is this a CODI model?" test

    model: nn.Module
    prj: nn.Module
    special: nn.Parameter  # [2, d]: row 0 = <bot>, row 1 = <eot>
    tokenizer: object
    config: CODIConfig
    base_path: Path | None

    @property
    def base_name(self) -> str:
        return self.config.base_model

    @property
    def n_layers(self) -> int:
        return int(self.config.base_n_layers)

    @property
    def d_model(self) -> int:
        return int(self.config.base_d_model)

    @property
    def vocab_size(self) -> int:
        return int(self.config.base_vocab_size)

    @property
    def device(self) -> torch.device:
        return self.special.device

    @property
    def dtype(self) -> torch.dtype:
        return self.special.dtype

    @property
    def bot_embeds(self) -> Tensor:
        return self.special[0]

    @property
    def eot_embeds(self) -> Tensor:
        return self.special[1]

    @property
    def path(self) -> Path | None:  # interp tools that reload a base architecture from its folder read `.path`
        return self.base_path

    def tokenize_prompts(self, questions: list[str]) -> tuple[Tensor, Tensor]:
        """Left-padded prompt ids (without <bot>) and mask for `questions`, formatted with the config's template."""
        if isinstance(questions, str):
            raise TypeError("pass a list of questions, e.g. [question], not a single string.")
        if not questions:
            raise ValueError("no questions given.")
        ids, mask = left_pad([prompt_token_ids(self.tokenizer, self.config, q) for q in questions],
                             pad_id(self.tokenizer))
        return ids.to(self.device), mask.to(self.device)

    def tokenize_responses(self, responses: list[str] | None, batch: int) -> tuple[Tensor | None, Tensor | None]:
        """Right-padded ids and mask of free-text `responses` to teacher force after <eot> (`[eos] + text`), or of
        the lead alone ([eos], or None when the config has no separators) when `responses` is None.

        >>> import codi
        >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=1, lora_r=4))
        >>> ids, mask = cm.tokenize_responses(["7", "12 apples"], 2)     # right-padded, no lead (eos_separators off)
        >>> mask.sum(1).tolist() == [len(cm.tokenizer(r)["input_ids"]) for r in ["7", "12 apples"]]
        True
        """
        if responses is None:
            lead = response_lead(self.tokenizer, self.config)
            if not lead:
                return None, None
            rows = [lead] * batch
        else:
            if len(responses) != batch:
                raise ValueError(f"{len(responses)} responses for {batch} questions.")
            rows = [text_response(self.tokenizer, self.config, r) for r in responses]
        ids, mask = right_pad(rows, pad_id(self.tokenizer))
        return ids.to(self.device), mask.to(self.device)


    def run_ids(self, prompt_ids: Tensor, prompt_mask: Tensor, response_ids: Tensor | None = None,
                response_mask: Tensor | None = None, max_new_tokens: int = 0,
                latent_input_fn: Callable[[int, Tensor], Tensor] | None = None, num_latents: int | None = None,
                prompt_state: PromptState | None = None, **kwargs) -> LatentRun:
        """`latent_loop` with this model's projection, <bot>/<eot> rows, eos and vocabulary.

        Prompt reuse: `keep_prompt_state=True` keeps the prompt call's KV cache and last hidden state in
        `run.prompt_state`; `prompt_state=` hands one back to skip that call (see `codi.loop`), `on_call=` numbers
        the calls for hooks.

        >>> import codi
        >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4))
        >>> ids, mask = cm.tokenize_prompts(["1 + 2 = ?", "3 + 4 = ?"])
        >>> full = cm.run_ids(ids, mask, max_new_tokens=3, keep_prompt_state=True)
        >>> again = cm.run_ids(ids, mask, max_new_tokens=3, prompt_state=full.prompt_state.rows(torch.arange(2)))
        >>> torch.equal(again.response_ids, full.response_ids)
        True
        """
        return latent_loop(
            self.model, prompt_ids, prompt_mask, prj=self.prj if self.config.use_prj else nn.Identity(),
            num_latents=self.config.num_latents if num_latents is None else num_latents,
            eot_embeds=self.eot_embeds, bot_embeds=self.bot_embeds, response_ids=response_ids,
            response_mask=response_mask, max_new_tokens=max_new_tokens, latent_input_fn=latent_input_fn,
            eos_token_id=self.tokenizer.eos_token_id, pad_token_id=pad_id(self.tokenizer),
            vocab_size=self.vocab_size, prompt_state=prompt_state, **kwargs)

    def run(self, questions: list[str], responses: list[str] | None = None, max_new_tokens: int = 0,
            latent_input_fn: Callable[[int, Tensor], Tensor] | None = None, **kwargs) -> LatentRun:
        """Tokenise `questions` and run the latent loop; `responses` are teacher forced after <eot>.

        >>> import codi
        >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=3, lora_r=4))
        >>> run = cm.run(["1 + 2 = ?"], responses=["The answer is: 3"])
        >>> [s.kind for s in run.segments]
        ['prompt', 'latent', 'latent', 'latent', 'eot', 'response']
        """
        ids, mask = self.tokenize_prompts(questions)
        r_ids, r_mask = self.tokenize_responses(responses, len(questions))
        return self.run_ids(ids, mask, r_ids, r_mask, max_new_tokens, latent_input_fn, **kwargs)

    @torch.no_grad()
    def generate(self, questions: list[str], max_new_tokens: int = 32, return_latents: bool = False,
                 top_k_tokens: int = 0, temperature: float = 0.0, seed: int | None = None,
                 latent_input_fn: Callable[[int, Tensor], Tensor] | None = None,
                 num_latents: int | None = None) -> GenerateOutput:
        """Answer `questions` (greedy unless `temperature > 0`); optionally return latents and their top tokens.

        >>> import codi
        >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-gpt2", num_latents=2, lora_r=4))
        >>> out = cm.generate(["2 + 2 = ?"], max_new_tokens=4, top_k_tokens=3)
        >>> len(out.top_tokens[0]), len(out.top_tokens[0][0])
        (2, 3)

        `num_latents` runs that many thoughts instead of the config's (0 = answer right after <bot><eot>).
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={max_new_tokens}: generate needs at least 1 new token.")
        gen = None
        if seed is not None:
            gen = torch.Generator(device=self.device).manual_seed(seed)
        run = self.run(questions, None, max_new_tokens, latent_input_fn, temperature=temperature, generator=gen,
                       keep_logits=False, num_latents=num_latents)
        new = run.response_ids[:, run.n_forced:]
        keep = run.response_mask[:, run.n_forced:].bool() & (new != self.tokenizer.eos_token_id)
        texts = [self.tokenizer.decode(row[k].tolist(), skip_special_tokens=True) for row, k in zip(new, keep)]
        out = GenerateOutput(answers=[extract_answer(t, self.config.answer_marker) for t in texts], texts=texts,
                             run=run)
        if return_latents or top_k_tokens:
            out.latents, out.latent_inputs = run.latents, run.latent_inputs
        if top_k_tokens:
            out.top_token_ids, out.top_token_probs, out.top_tokens = self.latent_top_tokens(run.latents, top_k_tokens)
        return out

    @torch.no_grad()
    def latent_top_tokens(self, latents: Tensor, k: int = 5) -> tuple[Tensor, Tensor, list[list[list[str]]]]:
        """Top-k tokens of each latent through the LM head (latents are already after the final norm)."""
        head = self.model.get_output_embeddings()
        probs = torch.softmax(head(latents.to(self.dtype)).float()[..., : self.vocab_size], dim=-1)
        top_p, top_i = probs.topk(k, dim=-1)
        names = [[[self.tokenizer.decode([t]) for t in step] for step in row] for row in top_i.tolist()]
        return top_i, top_p, names
