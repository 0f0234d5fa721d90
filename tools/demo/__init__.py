"""Demo data: a regional MRO distributor's ERP/WMS/TMS snapshot, generated deterministically.

    generate(engine, orders=10_000, seed=7, as_of=None, progress=None, chunk_orders=2_000) -> SeedReport
    reset(engine) -> None

The same (seed, as_of, orders) gives byte-identical rows. See ``generator.py`` for how it streams,
``plan.py``/``inject.py`` for the exceptions injected into the open book, ``history.py`` for the
closed orders a risk model learns from, and ``writer.py`` for the bulk writers.
"""

from tools.demo.generator import GENERATOR_VERSION, DemoDataError, SeedReport, generate, reset

__all__ = ["GENERATOR_VERSION", "DemoDataError", "SeedReport", "generate", "reset"]
