"""Demo data: a regional MRO distributor's ERP/WMS/TMS snapshot, generated deterministically.

    generate(engine, *, orders=10_000, seed=7, as_of=None, progress=None, chunk_orders=2_000) -> SeedReport
    reset(engine) -> None

What it looks like: nine warehouses in four regions and three countries (two regions span US + CA,
one US + MX, so stock can move across a border); ~2,000 SKUs in 12 families with list prices,
costs, suppliers, approved and unapproved substitutes, ~1.5 % discontinued and ~2 % export
controlled; ~300 accounts per 10,000 orders in three tiers with credit, flags and price contracts;
6 carriers (one disrupted, one constrained), 40 suppliers, purchase orders; 90 days of closed
orders whose outcomes follow latent drivers (supplier reliability, demand spikes, carrier
reliability, credit utilisation) with resolved ``exceptions`` rows; and an open book of the last
two weeks.

How exceptions get there: every open order is built clean, then the plan (``plan.py``) injects a
scenario into about one order in nine (``inject.py``): each exception type of domain.md §2,
several at once on some orders, and RECURRING_ANOMALY where a pattern is meant (a SKU in a demand
spike short on 3+ orders, an account in credit trouble with 3+ orders). Shared facts (stock of
tight pairs, their first purchase order, account standing) are fixed up front so nothing spills
onto a clean order; a budget keeps accidental recurrences out.

Same (seed, as_of, orders) -> byte-identical rows. Orders stream in chunks (memory stays flat);
``writer.py`` writes with executemany (SQLite) or COPY (PostgreSQL) in one transaction.
"""

from tools.demo.generator import GENERATOR_VERSION, DemoDataError, SeedReport, generate, reset

__all__ = ["GENERATOR_VERSION", "DemoDataError", "SeedReport", "generate", "reset"]
