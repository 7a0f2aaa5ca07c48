"""Exact-match accuracy of the final number: CODI (latent thoughts) vs no reasoning vs written reasoning.

    >>> import codi
    >>> cm, make = codi.organisms.load("pointer3")      # a shipped tiny CODI model whose thoughts do the work
    >>> res = codi.evaluate(cm, make(20, seed=0), progress=False, max_new_tokens=3, cot_max_new_tokens=7)
    >>> res["cot"]["accuracy"], res["codi"]["accuracy"] > 0.5 > res["no_cot"]["accuracy"]
    (1.0, True)

A trained model of your own: `codi.evaluate(codi.CODIModel.from_pretrained("runs/codi-smol"), test)`.

Modes (all greedy, same weights, same held-out problems):
- `codi`: question + <bot>, k continuous thoughts, <eot>, answer (`CODIModel.generate`).
- `cot`: teacher mode, written reasoning: the LoRA model reads the question in the teacher's template, writes its
  chain of thought and then "The answer is: N" (the CoT-SFT column of the CODI paper).
- `no_cot`: answer directly: the question in the teacher's template followed at once by the answer marker
  ("The answer is:"), so the model cannot write any reasoning. The CODI paper's No-CoT-SFT column is a separate
  model fine-tuned on answers only; pass such a model as `no_cot_model=` to evaluate that instead.
The predicted number is `codi.batch.extract_answer` of the generated text (the number after the last answer marker,
else the last number); it counts when it equals the reference numerically.
"""

from __future__ import annotations

import time

import torch
from tqdm.auto import tqdm

from argcheck import BadArgument, check_bool, check_choice, check_int
from codi.batch import answer_tokens, extract_answer, left_pad, pad_id, prompt_token_ids, same_answer

MODES = ("codi", "no_cot", "cot")


@torch.no_grad()
def _hf_generate(cm, rows: list[list[int]], max_new_tokens: int) -> list[str]:
    """Greedy continuation of token rows by the (LoRA) model itself, left padded, stopping at eos."""
    tok = cm.tokenizer
    pad = pad_id(tok)
    ids, mask = left_pad(rows, pad)
    out = cm.model.generate(input_ids=ids.to(cm.device), attention_mask=mask.to(cm.device),
                            max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
                            eos_token_id=tok.eos_token_id)
    return tok.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)


def _texts(cm, mode: str, questions: list[str], max_new_tokens: int) -> list[str]:
    """Generated text per question: after <eot> (codi), after the prompt (cot), after the answer marker (no_cot)."""
    cfg, tok = cm.config, cm.tokenizer
    if mode == "codi":
        return cm.generate(questions, max_new_tokens=max_new_tokens).texts
    rows = [prompt_token_ids(tok, cfg, q) for q in questions]  # the teacher's own prompt tokens
    if mode == "no_cot":  # the teacher's answer tokens up to and including the marker, e.g. "The answer is:"
        ans_ids, pos = answer_tokens(tok, cfg.answer_template.format(answer="0"), cfg.answer_marker)
        marker = tok.decode(ans_ids[:pos + 1])
        return [marker + t for t in _hf_generate(cm, [r + ans_ids[:pos + 1] for r in rows], max_new_tokens)]
    return _hf_generate(cm, rows, max_new_tokens)


def evaluate(cm, problems: list, batch_size: int = 16, modes: tuple[str, ...] = MODES, *,
             max_new_tokens: int = 16, cot_max_new_tokens: int = 96, no_cot_model=None,
             progress: bool = True) -> dict:
    """Accuracy per mode on `problems` (codi.data.Problem list) -> {mode: {accuracy, correct, n, seconds,
    examples, predictions}}: `examples` holds the first 5 (question, reference, generated text, predicted) rows,
    `predictions` the extracted number (text, "" when none) of every problem.

        >>> import codi
        >>> cm, make = codi.organisms.load("pointer3")
        >>> res = evaluate(cm, make(8, seed=0), modes=("cot",), progress=False, cot_max_new_tokens=7)
        >>> ex = res["cot"]["examples"][0]
        >>> ex["question"], ex["text"], ex["pred"], ex["answer"]
        ('9>12 3>7 2>3 12>10 10>4 7>1 4>2 1>9 | 1', '<bot> 9 12 10 <eot> = 10', '10', '10')
        >>> res["cot"]["correct"], res["cot"]["n"], len(res["cot"]["predictions"])
        (8, 8, 8)
    """
    if isinstance(modes, str) or not modes:
        raise BadArgument("modes", modes, f"must be a non-empty tuple of modes from {MODES}", "e.g. modes=('codi',)")
    for m in modes:
        check_choice("modes", m, MODES)
    if isinstance(problems, (str, bytes)) or not problems:
        raise BadArgument("problems", problems, "must be a non-empty list of problems",
                          "pass a held-out split, e.g. codi.data.split(...)[1]")
    check_int("batch_size", batch_size, min=1)
    check_int("max_new_tokens", max_new_tokens, min=1)
    check_int("cot_max_new_tokens", cot_max_new_tokens, min=1)
    check_bool("progress", progress)
    results = {}
    for mode in modes:
        model = no_cot_model if (mode == "no_cot" and no_cot_model is not None) else cm
        was_training = getattr(model, "training", False)
        if hasattr(model, "eval"):
            model.eval()
        n_tok = cot_max_new_tokens if mode == "cot" else max_new_tokens
        correct, examples, preds, t0 = 0, [], [], time.time()
        for s in tqdm(range(0, len(problems), batch_size), desc=f"eval {mode}", disable=not progress):
            chunk = problems[s:s + batch_size]
            texts = _texts(model, mode, [p.question for p in chunk], n_tok)
            for p, t in zip(chunk, texts):
                pred = extract_answer(t, model.config.answer_marker)
                preds.append(pred)
                correct += same_answer(pred, p.answer)
                if len(examples) < 5:
                    examples.append({"question": p.question, "answer": p.answer, "text": t, "pred": pred})
        if was_training:
            model.train()
        results[mode] = {"accuracy": correct / len(problems), "correct": correct, "n": len(problems),
                         "seconds": round(time.time() - t0, 2), "examples": examples, "predictions": preds}
    return results
