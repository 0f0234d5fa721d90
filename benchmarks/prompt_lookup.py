"""Prompt-lookup decoding against plain greedy decoding on the local model, for an explanation.

An explanation copies ids and numbers from its facts, so llama-cpp-python's
``LlamaPromptLookupDecoding`` (draft tokens looked up in the prompt, verified in one batch) might
write it faster. Each variant loads the pinned model with the same threads, explains the same
credit-hold facts twice (the second time with the prompt's head already evaluated) and prints the
time to first token, the total and the generated tokens per second.

    .venv/bin/python benchmarks/prompt_lookup.py                  # plain, then 2 and 10 draft tokens
    .venv/bin/python benchmarks/prompt_lookup.py --drafts 0 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

FACTS = """Order SO-100231 (status held)
- CREDIT_HOLD: customer CUST-0042 overdue balance 5429.31; credit limit 45000.00; open exposure 47210.50 exceeds the limit by 2210.50
Recommended action: RELEASE_CREDIT_HOLD(order_id=SO-100231), risk medium, approver credit_manager. Why: the overage is below 10% of the limit"""
PASSAGES = (
    "[SOP-CREDIT-001 §3.2] Credit holds: an order is held when the customer's exposure exceeds the credit "
    "limit or an invoice is overdue more than 30 days. The credit manager may release a hold when the "
    "overage is below 10 % of the limit."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", type=int, nargs="+", default=[0, 2, 10], help="0: no draft model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=120)
    parser.add_argument("--var-dir", default=os.environ.get("COPILOT_VAR_DIR", "var"))
    args = parser.parse_args()

    from llama_cpp import Llama
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    from agent.llm.local_model import ensure_model
    from prompts import load

    path = ensure_model(Path(args.var_dir))
    messages = load("explain").messages(facts=FACTS, passages=PASSAGES, label="[SOP-CREDIT-001 §3.2]")
    prompt = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    prompt += "<|im_start|>assistant\n"
    rows = []
    for drafts in args.drafts:
        extra = {"draft_model": LlamaPromptLookupDecoding(num_pred_tokens=drafts)} if drafts else {}
        llama = Llama(
            model_path=str(path),
            n_ctx=4096,
            n_threads=args.threads,
            n_threads_batch=args.threads,
            verbose=False,
            seed=0,
            **extra,
        )
        tokens = llama.tokenize(prompt.encode(), add_bos=True, special=True)
        for attempt in ("cold", "head cached"):
            started, first, count, text = time.perf_counter(), None, 0, ""
            for chunk in llama.create_completion(
                tokens, max_tokens=args.max_tokens, temperature=0.0, stream=True, stop=["<|im_end|>"]
            ):
                first = first or time.perf_counter() - started
                count += 1
                text += chunk["choices"][0]["text"]
            total = time.perf_counter() - started
            rows.append(
                {
                    "draft_tokens": drafts,
                    "prompt": attempt,
                    "prompt_tokens": len(tokens),
                    "ttft_s": round(first or 0.0, 2),
                    "total_s": round(total, 2),
                    "generated": count,
                    "tokens_per_s": round(count / max(total - (first or 0.0), 1e-9), 1),
                    "load_avg_1m": round(os.getloadavg()[0], 1),
                }
            )
            print(rows[-1], file=sys.stderr)
            tokens = tokens[:-1] + llama.tokenize(b"\n", add_bos=False, special=True) + tokens[-1:]
        llama.close()
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
