"""SOP ingestion throughput and retrieval latency with the real local embedding model.

Measures, in one run: ingest of the shipped corpus (chunks/s), ingest of N generated documents
(default 1,000: SOP-like documents assembled from the corpus's own sections under new ids, three
sections each), the re-ingest of the same unchanged folder (the baseline the incremental path must
beat: everything is skipped by content hash), and query latency p50/p95 over the full index with and
without the exception-type filter.

    .venv/bin/python benchmarks/knowledge_ingest.py [--docs 1000] [--queries 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

from _harness import ROOT

SEED = 11


def _sections(text: str) -> tuple[dict, list[str]]:
    import yaml

    _, front, body = text.split("---", 2)
    parts = re.split(r"(?m)^(?=### \d)", body)
    return yaml.safe_load(front), [p.strip() for p in parts if p.startswith("### ")]


def generate_docs(folder: Path, count: int, rng: random.Random) -> None:
    corpus = [_sections(p.read_text()) for p in sorted((ROOT / "knowledge" / "sops").glob("*.md"))]
    for i in range(count):
        meta, sections = corpus[i % len(corpus)]
        picked = rng.sample(sections, min(3, len(sections)))
        body = "\n\n".join(re.sub(r"^### \d+\.(\d+)", f"### 3.{n}", s) for n, s in enumerate(picked, 1))
        applies = ", ".join(meta["applies_to"])
        (folder / f"gen-{i:04d}.md").write_text(
            f"---\nid: SOP-GEN-{i:04d}\ntitle: {meta['title']} (site variant {i})\napplies_to: [{applies}]\n"
            f'owner_role: {meta["owner_role"]}\nversion: "1.0"\neffective_date: 2026-01-01\n---\n\n'
            f"## 3. Procedure\n\n{body}\n"
        )


def timed_ingest(collection, paths) -> tuple[float, object]:
    from knowledge.ingest import ingest

    started = time.perf_counter()
    report = ingest(collection, paths, echo=lambda _line: None, progress=False)
    return time.perf_counter() - started, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    from knowledge.embeddings import MiniLMEmbeddingFunction
    from knowledge.quality import load_questions
    from knowledge.retrieve import retrieve
    from knowledge.store import open_collection

    rng = random.Random(SEED)
    started = time.perf_counter()
    ef = MiniLMEmbeddingFunction()
    load_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="kbench-") as tmp:
        collection = open_collection(ef, var_dir=Path(tmp) / "index")
        corpus_s, corpus = timed_ingest(collection, None)
        docs = Path(tmp) / "docs"
        docs.mkdir()
        generate_docs(docs, args.docs, rng)
        gen_s, gen = timed_ingest(collection, [docs])
        again_s, again = timed_ingest(collection, [docs])
        questions = load_questions()
        sample = [rng.choice(questions) for _ in range(args.queries)]
        plain, filtered = [], []
        for q in sample:
            t = time.perf_counter()
            retrieve(q.question, None, k=4, collection=collection)
            plain.append(time.perf_counter() - t)
            if q.type:
                t = time.perf_counter()
                retrieve(q.question, [q.type], k=4, collection=collection)
                filtered.append(time.perf_counter() - t)
        total_chunks = collection.count()

    def pct(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))] * 1000

    print(
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}; model load {load_s:.2f} s\n"
    )
    print("| ingest | documents | chunks written | seconds | chunks/s | vs full ingest |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| shipped corpus | {len(corpus.added)} | {corpus.chunks_written} | {corpus_s:.1f} | "
        f"{corpus.chunks_written / corpus_s:.1f} | |"
    )
    print(
        f"| {args.docs:,} generated | {len(gen.added)} | {gen.chunks_written} | {gen_s:.1f} | "
        f"{gen.chunks_written / gen_s:.1f} | 1.0× |"
    )
    print(
        f"| same {args.docs:,}, unchanged (incremental) | {len(again.unchanged)} unchanged | {again.chunks_written} | "
        f"{again_s:.1f} | | {gen_s / again_s:.0f}× faster |"
    )
    print(f"\nquery latency over {total_chunks:,} chunks, k=4, {len(plain)} queries:")
    print("| query | p50 ms | p95 ms | mean ms |")
    print("|---|---:|---:|---:|")
    print(
        f"| no filter | {pct(plain, 0.5):.1f} | {pct(plain, 0.95):.1f} | {statistics.mean(plain) * 1000:.1f} |"
    )
    if filtered:
        print(
            f"| exception-type filter | {pct(filtered, 0.5):.1f} | {pct(filtered, 0.95):.1f} | "
            f"{statistics.mean(filtered) * 1000:.1f} |"
        )


if __name__ == "__main__":
    main()
