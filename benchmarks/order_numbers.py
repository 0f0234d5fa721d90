"""Reading order numbers from text: the shape reader against the regular expressions it replaced.

The old reader (kept below, verbatim, as the baseline) had adjacent ``\\s*`` runs around an
optional group after the word "order": on "order" + n spaces + "x" Python's backtracking engine
tries every way to split the spaces between them, and its time grows with the cube of n. The new
reader (``agent.triage.order_numbers``) cuts the text into tokens in one pass and matches each
bounded token against the policy's shapes with RE2.

Measured in one run, on the same texts: per text, the best of ``--repeat`` runs of each reader and
the ratio old / new; for the adversarial texts, the time at two sizes and its growth (linear: the
size ratio; the old reader's: about its cube). Normal text is a realistic e-mail repeated to
10 KB and 100 KB.

    .venv/bin/python benchmarks/order_numbers.py            # sizes of 200 and 400 spaces for the old reader
    .venv/bin/python benchmarks/order_numbers.py --repeat 7 --spaces 300
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.triage.order_numbers import order_mentions

# --- the baseline: the order-number expressions as they were --------------------------------------
_SO = re.compile(r"(?<![A-Za-z0-9])SO[-_ #]?(\d{1,12})(?![A-Za-z0-9-])", re.IGNORECASE)
_ORDER = re.compile(
    r"\b(?:sales\s+)?orders?\s*(?:(?:no\.?|nr\.?|number|num\.?)\s*[:#]?|#|:)?\s*#?\s*(\d{4,12})(?![A-Za-z0-9-])",
    re.IGNORECASE,
)
_MORE = re.compile(r"\s*(?:,|and|&|/|\+)\s*#?(\d{4,12})(?![A-Za-z0-9-])", re.IGNORECASE)


def old_reader(text: str) -> list[str]:
    found = [m.group(1) for m in _SO.finditer(text)]
    for m in _ORDER.finditer(text):
        found.append(m.group(1))
        end = m.end()
        while more := _MORE.match(text, end):
            found.append(more.group(1))
            end = more.end()
    return found


def new_reader(text: str) -> list[str]:
    return [m.canonical for m in order_mentions(text)]


EMAIL = (
    "From: purchasing@acme.test\nSubject: late orders\n\nHello team,\n\ncould you check where our "
    "orders SO-100042, SO-100043 and SO-100044 stand? Order no. 100045 also looks wrongly priced, "
    "and our SAP reference 4500098761 for ORD-2025-1193 has no delivery date yet. Please ship what "
    "you have of 500 units and the rest by 2026-12-01.\n\nThanks,\nDana\n\n"
)


def best(fn, text: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        fn(text)
        times.append(time.process_time() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (the best counts)")
    parser.add_argument("--spaces", type=int, default=200, help="spaces after 'order' (and twice that)")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, best of {args.repeat}\n")

    print("| text | size | old reader | new reader | old / new |")
    print("|---|---:|---:|---:|---:|")
    rows = []
    for n in (args.spaces, 2 * args.spaces):
        rows.append((f"'order' + {n:,} spaces + 'x'", "order" + " " * n + "x"))
    for kb in (10, 100):
        rows.append((f"an e-mail, repeated to {kb} KB", (EMAIL * (kb * 1024 // len(EMAIL) + 1))[: kb * 1024]))
    for label, text in rows:
        old, new = best(old_reader, text, args.repeat), best(new_reader, text, args.repeat)
        print(f"| {label} | {len(text):,} | {old * 1000:.2f} ms | {new * 1000:.3f} ms | {old / new:,.1f} |")

    print("\nGrowth of the time with the size (linear: the size ratio)\n")
    print("| text | small | large | size ratio | old: time ratio | new: time ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    small, large = "order" + " " * args.spaces + "x", "order" + " " * (2 * args.spaces) + "x"
    growth_old = best(old_reader, large, args.repeat) / best(old_reader, small, args.repeat)
    growth_new = best(new_reader, large, args.repeat) / best(new_reader, small, args.repeat)
    print(
        f"| 'order' + spaces + 'x' | {len(small):,} | {len(large):,} | {len(large) / len(small):.1f} "
        f"| {growth_old:.1f} | {growth_new:.1f} |"
    )
    small, large = "order" + " " * 10_000 + "x", "order" + " " * 100_000 + "x"
    growth_new = best(new_reader, large, args.repeat) / best(new_reader, small, args.repeat)
    print(
        f"| 'order' + spaces + 'x' (new only: the old one takes hours) | {len(small):,} | {len(large):,} "
        f"| {len(large) / len(small):.1f} | — | {growth_new:.1f} |"
    )


if __name__ == "__main__":
    main()
