"""Text format and tokenisation of CODI training batches (teacher and student sequences, distillation positions).

Teacher:  prompt [eos] + cot [eos] + answer + eos                  (one causal LM pass)
Student:  prompt [eos] + <bot> | k latents | <eot> [eos] + answer + eos
`[eos]` only when `CODIConfig.eos_separators`. Each part is tokenised on its own (like the official code), so the
answer part is the same token sequence in teacher and student. The distillation position is the token right
before the first token of the answer number (the one whose next-token prediction is the answer), found from
character offsets of `answer_marker` in the answer text, so it works for any fast tokenizer.

    >>> from basemodels import load_model
    >>> tok = load_model("tiny-gpt2").tokenizer
    >>> ids, pos = answer_tokens(tok, "The answer is: 18", "The answer is:")
    >>> tok.convert_ids_to_tokens(ids)[pos]
    ':'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from basemodels.facts import pad_id  # the one pad fallback (re-exported: codi.batch.pad_id)
from codi.config import CODIConfig

__all__ = ["CODIBatch", "make_batch", "answer_tokens", "prompt_token_ids", "extract_answer", "same_answer", "left_pad",
           "right_pad", "pad_id", "response_lead", "answer_response", "text_response"]

IGNORE = -100
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


@dataclass
class CODIBatch:
    """Tensors of one training batch. Teacher rows are right-padded, student prompts left-padded.

    >>> from basemodels import load_model
    >>> tok = load_model("tiny-gpt2").tokenizer
    >>> b = make_batch(tok, CODIConfig("tiny-gpt2"), [dict(question="1+2?", cot="<<1+2=3>>", answer="3"),
    ...     dict(question="Tom has 3 bags of 4 apples. How many?", cot="<<3*4=12>>", answer="12")])
    >>> len(b), b.ids, tuple(b.teacher_ids.shape), tuple(b.prompt_ids.shape), b.n_tokens
    (2, ['0', '1'], (2, 19), (2, 12), 66)
    >>> tok.decode(b.response_ids[1][b.response_mask[1].bool()])       # fed after <eot>
    'The answer is: 12<|endoftext|>'
    """

    teacher_ids: Int[Tensor, "batch t"]
    teacher_mask: Int[Tensor, "batch t"]
    teacher_labels: Int[Tensor, "batch t"]  # -100 on the prompt and padding
    teacher_pos: Int[Tensor, " batch"]  # distillation position in the teacher sequence
    prompt_ids: Int[Tensor, "batch p"]  # prompt without <bot>, left-padded
    prompt_mask: Int[Tensor, "batch p"]
    response_ids: Int[Tensor, "batch m"]  # [eos] + answer + eos, right-padded, fed after <eot>
    response_mask: Int[Tensor, "batch m"]
    student_pos: Int[Tensor, " batch"]  # distillation position inside the <eot> call (0 = <eot>)
    ids: list[str] = field(default_factory=list)
    teacher_cot: Int[Tensor, "batch 2"] | None = None  # (start, length) of the CoT tokens in the teacher sequence

    def to(self, device) -> CODIBatch:
        kw = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in self.__dict__.items()}
        return CODIBatch(**kw)

    def __len__(self) -> int:
        return self.teacher_ids.shape[0]

    @property
    def n_tokens(self) -> int:
        """Real tokens processed in one step: teacher + student prompt (+<bot>) + latents + <eot> + response."""
        return int(self.teacher_mask.sum() + self.prompt_mask.sum() + self.response_mask.sum()) + 2 * len(self)


def _field(p: Any, name: str) -> str:
    val = p.get(name) if isinstance(p, dict) else getattr(p, name, None)
    if val is None:
        raise ValueError(f"problem {p!r} has no {name!r}; every problem needs question, cot and answer.")
    return str(val)


def _tok(tokenizer, text: str, special: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def answer_tokens(tokenizer, text: str, marker: str) -> tuple[list[int], int]:
    """Token ids of an answer text and the index of the token right before the answer (the distillation position).

    Raises ValueError showing the text when the marker is missing, nothing follows it, or the tokenizer merges
    the end of the marker with the answer into one token.

    >>> from basemodels import load_model
    >>> tok = load_model("tiny-gpt2").tokenizer
    >>> ids, pos = answer_tokens(tok, "The answer is: 18", "The answer is:")
    >>> tok.convert_ids_to_tokens(ids), pos                        # ':' predicts the answer ' 18'
    (['T', 'he', 'Ġanswer', 'Ġis', ':', 'Ġ18'], 4)
    """
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except (NotImplementedError, TypeError) as err:
        raise ValueError("finding the distillation position needs a fast tokenizer (offset mapping); "
                         f"{type(tokenizer).__name__} has none.") from err
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    start = text.rfind(marker)
    if start < 0:
        raise ValueError(f"answer marker {marker!r} not found in the answer text {text!r}; set "
                         f"CODIConfig.answer_marker to text that answer_template always contains.")
    end = start + len(marker)
    rest = text[end:]
    first = end + len(rest) - len(rest.lstrip())
    if first >= len(text):
        raise ValueError(f"nothing follows the answer marker {marker!r} in {text!r}: the answer is empty.")
    hit = next((i for i, (s, e) in enumerate(offsets) if e > first), None)
    if hit is None or hit == 0:
        raise ValueError(f"could not locate the answer token after {marker!r} in {text!r} "
                         f"(tokens: {tokenizer.convert_ids_to_tokens(ids)}).")
    if offsets[hit][0] < end:
        toks = tokenizer.convert_ids_to_tokens(ids)
        raise ValueError(f"the tokenizer merges the end of the answer marker {marker!r} with the answer into one "
                         f"token {toks[hit]!r} in {text!r} (tokens: {toks}), so no token sits right before the "
                         f"answer. Change answer_template/answer_marker, e.g. put a space after the marker.")
    return ids, hit - 1


def prompt_token_ids(tokenizer, cfg: CODIConfig, question: str) -> list[int]:
    """Student/teacher prompt ids: the formatted question (with the tokenizer's BOS if it adds one) [+ eos].

    >>> from basemodels import load_model
    >>> tok = load_model("tiny-gpt2").tokenizer
    >>> prompt_token_ids(tok, CODIConfig("tiny-gpt2", eos_separators=True), "1+2?")[-1] == tok.eos_token_id
    True
    """
    ids = _tok(tokenizer, cfg.prompt_template.format(question=question), special=True)
    return ids + [tokenizer.eos_token_id] if cfg.eos_separators else ids


def response_lead(tokenizer, cfg: CODIConfig) -> list[int]:
    """What every response starts with after <eot>: [eos] when `cfg.eos_separators`, else nothing.

    >>> from basemodels import load_model
    >>> response_lead(load_model("tiny-gpt2").tokenizer, CODIConfig("tiny-gpt2", eos_separators=False))
    []
    """
    return [tokenizer.eos_token_id] if cfg.eos_separators else []


def answer_response(tokenizer, cfg: CODIConfig, answer: str) -> tuple[list[int], int, int]:
    """The reference response of `answer` as trained: `[eos] + answer_template(answer) + eos`, and where the
    answer's own tokens start and end (exclusive) in it.

    >>> from basemodels import load_model
    >>> tok = load_model("tiny-gpt2").tokenizer
    >>> ids, start, end = answer_response(tok, CODIConfig("tiny-gpt2"), "18")
    >>> tok.decode(ids[start:end])
    ' 18'
    """
    ids, before = answer_tokens(tokenizer, cfg.answer_template.format(answer=str(answer).strip()), cfg.answer_marker)
    lead = response_lead(tokenizer, cfg)
    return lead + ids + [tokenizer.eos_token_id], len(lead) + before + 1, len(lead) + len(ids)


def text_response(tokenizer, cfg: CODIConfig, text: str) -> list[int]:
    """A free-text response to teacher force after <eot>: `[eos] + text` (no closing eos: generation may go on).

    >>> from basemodels import load_model
    >>> tok = load_model("tiny-gpt2").tokenizer
    >>> text_response(tok, CODIConfig("tiny-gpt2", eos_separators=True), "hi")[0] == tok.eos_token_id
    True
    """
    return response_lead(tokenizer, cfg) + _tok(tokenizer, text, special=False)


def _cot_text(cfg: CODIConfig, cot: str) -> str:
    steps = cot.split()
    if not cfg.include_last_cot_step:
        steps = steps[:-1]
    return cfg.cot_template.format(cot=" ".join(steps)) if steps else ""


def left_pad(rows: list[list[int]], pad: int) -> tuple[Tensor, Tensor]:
    """Ids and mask of token rows padded on the LEFT with `pad` (prompts: the latent loop needs them so).

    >>> [t.tolist() for t in left_pad([[5, 6], [7]], 0)]
    [[[5, 6], [0, 7]], [[1, 1], [0, 1]]]
    """
    n = max(len(r) for r in rows)
    ids = torch.tensor([[pad] * (n - len(r)) + r for r in rows], dtype=torch.long)
    mask = torch.tensor([[0] * (n - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
    return ids, mask


def right_pad(rows: list[list[int]], pad: int) -> tuple[Tensor, Tensor]:
    """Ids and mask of token rows padded on the RIGHT with `pad` (responses, teacher sequences).

    >>> [t.tolist() for t in right_pad([[5, 6], [7]], 0)]
    [[[5, 6], [7, 0]], [[1, 1], [1, 0]]]
    """
    n = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad] * (n - len(r)) for r in rows], dtype=torch.long)
    mask = torch.tensor([[1] * len(r) + [0] * (n - len(r)) for r in rows], dtype=torch.long)
    return ids, mask


def make_batch(tokenizer, cfg: CODIConfig, problems: list[Any]) -> CODIBatch:
    """Tokenise problems (objects or dicts with question, cot, answer) into a `CODIBatch`.

    >>> from basemodels import load_model
    >>> tok = load_model("tiny-gpt2").tokenizer
    >>> b = make_batch(tok, CODIConfig("tiny-gpt2"), [dict(question="1+2?", cot="<<1+2=3>>", answer="3")])
    >>> tok.decode(b.teacher_ids[0, b.teacher_pos[0]])
    ':'
    """
    if not problems:
        raise ValueError("make_batch got no problems.")
    eos, pad = tokenizer.eos_token_id, pad_id(tokenizer)
    teacher, labels, t_pos, prompts, responses, s_pos, names, cots = [], [], [], [], [], [], [], []
    for i, p in enumerate(problems):
        q, cot, ans = _field(p, "question"), _field(p, "cot"), _field(p, "answer").strip()
        name = str(p.get("id", i) if isinstance(p, dict) else getattr(p, "id", i))
        prompt = prompt_token_ids(tokenizer, cfg, q)
        cot_ids = _tok(tokenizer, _cot_text(cfg, cot), special=False)
        if cfg.eos_separators:
            cot_ids = cot_ids + [eos]
        try:
            response, start, _ = answer_response(tokenizer, cfg, ans)
        except ValueError as err:
            raise ValueError(f"problem {name!r}: {err}") from None
        lead = len(response_lead(tokenizer, cfg))
        ans_ids, ans_pos = response[lead:], start - lead - 1  # answer + eos; the token right before the answer
        seq = prompt + cot_ids + ans_ids
        if len(seq) > cfg.max_length:
            raise ValueError(f"problem {name!r} has {len(seq)} teacher tokens > max_length={cfg.max_length}; "
                             f"drop it or raise CODIConfig.max_length.")
        teacher.append(seq)
        labels.append([IGNORE] * len(prompt) + seq[len(prompt):])
        t_pos.append(len(prompt) + len(cot_ids) + ans_pos)
        cots.append([len(prompt), len(cot_ids)])
        prompts.append(prompt)
        responses.append(response)
        s_pos.append(start)  # inside the <eot> call: <eot> is column 0, response token r is column 1 + r
        names.append(name)
    t_ids, t_mask = right_pad(teacher, pad)
    t_labels = torch.tensor([r + [IGNORE] * (t_ids.shape[1] - len(r)) for r in labels], dtype=torch.long)
    p_ids, p_mask = left_pad(prompts, pad)
    r_ids, r_mask = right_pad(responses, pad)
    return CODIBatch(t_ids, t_mask, t_labels, torch.tensor(t_pos), p_ids, p_mask, r_ids, r_mask,
                     torch.tensor(s_pos), names, torch.tensor(cots, dtype=torch.long))


def same_answer(pred: str, gold: str) -> bool:
    """Whether a predicted answer is the gold one: equal numbers when both read as numbers (commas ignored, so
    "12" is "12.0" and "1,200" is "1200"), else equal text after stripping spaces; an empty answer is never right.

    >>> same_answer("12", "12.0"), same_answer("1,200", "1200"), same_answer("", "3"), same_answer("x", "3")
    (True, True, False, False)
    >>> same_answer(" seven", "seven")
    True
    """
    a, b = str(pred).strip(), str(gold).strip()
    if not a or not b:
        return False
    try:
        return abs(float(a.replace(",", "")) - float(b.replace(",", ""))) < 1e-6
    except ValueError:
        return a == b


def extract_answer(text: str, marker: str) -> str:
    """The number after the last `marker` in `text` (else the last number in it), commas removed; "" if none.

    >>> extract_answer("The answer is: 1,200 apples", "The answer is:")
    '1200'
    """
    cut = text.rfind(marker)
    if cut >= 0:
        found = _NUMBER.search(text[cut + len(marker):])
        if found:
            return found.group(0).replace(",", "")
    nums = _NUMBER.findall(text)
    return nums[-1].replace(",", "") if nums else ""
