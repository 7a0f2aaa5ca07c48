"""The cost of one forward call of a replicated intervention pass: fixed part + per-row part (`ROWS_PER_CALL`).

    python benchmarks/bench_pass_cost.py                                # smollm2-135m, 56-token prompt
    python benchmarks/bench_pass_cost.py --model tiny-llama --rows 4 32 128 256

`interp.interventions.engine.run_cells` packs edit groups into passes that start at the first call they edit; a
group joins an earlier pass when the calls its rows would recompute there cost less than the calls a pass of its
own would run. That needs one number: a call's fixed cost (weights read once per call, Python and hooks) in rows
of that call. Here one latent step (one token per row, after a prompt's KV cache, no LM head, as in the latent
loop) is timed at several row counts, median of `--repeats` runs, and `seconds = fixed + per_row * rows` is fitted
by least squares; fixed / per_row is the row equivalent that `ROWS_PER_CALL` should be near. The same call with
the LM head at its one position (what the loop computed before it skipped the head there) is timed beside it.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent

from machine import describe, write_result  # noqa: E402  (benchmarks/ is the script's folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompt-tokens", type=int, default=56)
    ap.add_argument("--rows", type=int, nargs="+", default=[4, 32, 128, 256])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(HERE / "results" / "pass_cost.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from basemodels import load_model
    from interp.interventions.engine import ROWS_PER_CALL

    m = load_model(args.model)
    model, d, p = m.model.eval(), m.d_model, args.prompt_tokens
    none = torch.zeros(0, dtype=torch.long)
    heads = {"no LM head": none, "LM head at the last position": 1}  # what the loop did before it skipped the head
    times: dict[tuple[str, int], list[float]] = {(h, n): [] for h in heads for n in args.rows}
    load0 = os.getloadavg()[0]
    with torch.no_grad():
        for _ in range(args.repeats):
            for n in args.rows:  # interleaved: every row count and both heads in every round
                for head, keep in heads.items():
                    g = torch.Generator().manual_seed(n)
                    ids = torch.randint(0, min(1000, model.config.vocab_size), (n, p), generator=g)
                    cache = model(input_ids=ids, use_cache=True, logits_to_keep=none).past_key_values
                    x = torch.randn(n, 1, d, generator=g)
                    mask = torch.ones(n, p + 1, dtype=torch.long)
                    t = time.perf_counter()
                    model(inputs_embeds=x, attention_mask=mask, past_key_values=cache, use_cache=True,
                          output_hidden_states=True, logits_to_keep=keep)
                    times[(head, n)].append(time.perf_counter() - t)
    load1 = os.getloadavg()[0]
    med = {k: float(np.median(v)) for k, v in times.items()}
    per_row, fixed = np.polyfit(args.rows, [med[("no LM head", n)] for n in args.rows], 1)
    lines = ["| rows | no LM head: median s [min-max] | LM head at the last position: median s [min-max] | "
             "no head / head |", "|---:|---:|---:|---:|"]
    for n in args.rows:
        a, b = times[("no LM head", n)], times[("LM head at the last position", n)]
        lines.append(f"| {n} | {med[('no LM head', n)]:.4f} [{min(a):.4f}-{max(a):.4f}] | "
                     f"{med[('LM head at the last position', n)]:.4f} [{min(b):.4f}-{max(b):.4f}] | "
                     f"{med[('no LM head', n)] / med[('LM head at the last position', n)]:.2f} |")
    text = (
        "# Pass cost: one latent step of a replicated intervention pass\n\n"
        f"Machine: {describe()}, load average {load0:.1f} before, {load1:.1f} after; torch {torch.__version__}, "
        f"{args.threads} thread(s). Command: `python benchmarks/bench_pass_cost.py {' '.join(os.sys.argv[1:])}`\n\n"
        f"Model: {args.model}, one token per row after a {p}-token prompt cache, the latent loop's call without "
        "the LM head (`codi.loop` now) and with it at the one position (before); "
        f"{args.repeats} interleaved rounds, medians.\n\n" + "\n".join(lines) + "\n\n"
        f"Fit without the head (least squares over the medians): {fixed:.4f} s fixed + {per_row * 1e3:.2f} ms a "
        f"row: a call's fixed cost equals {fixed / per_row:.1f} rows; `engine.ROWS_PER_CALL` = {ROWS_PER_CALL}.\n"
    )
    write_result(text, args.out)


if __name__ == "__main__":
    main()
