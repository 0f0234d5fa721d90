"""Purchase orders: 90 days of receipts, and the open POs that triage reads.

Open POs of ordinary pairs arrive within the supplier's lead time. Tight pairs get the earliest
open PO the plan fixed for them: before the promise of the orders short there (no procurement
delay), weeks later (a delay; some of those already expedited) or none at all. Discontinued items
are not replenished.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

from tools.demo.plan import HISTORY_DAYS, Plan
from tools.demo.world import World

__all__ = ["purchase_orders"]


def purchase_orders(world: World, plan: Plan, rng: random.Random) -> Iterator[tuple]:
    """Rows of purchase_orders (COLUMNS order), PO ids ascending."""
    day = dt.timedelta
    as_of, n = world.as_of, 300001
    lines_per_pop = world.orders * 3.5 / (world.cum_all[-1] or 1)
    for item in world.items:
        supplier = world.suppliers[item.supplier]
        lead = supplier.lead_time_days
        for wh in item.stocked:
            rows = []
            demand = lines_per_pop * item.pop / len(item.stocked)  # lines at this pair in 90 days
            for _ in range(min(6, int(demand / 6 + rng.random()))):
                expected = as_of - day(rng.randint(2, HISTORY_DAYS))
                status = "cancelled" if rng.random() < 0.05 else "received"
                rows.append((expected, status, False))
            if item.discontinued:
                pass
            elif (item.idx, wh) in plan.po_dates:
                planned = plan.po_dates[(item.idx, wh)]
                if planned is not None:
                    late = planned > as_of + day(14)
                    rows.append((planned, "open", late and rng.random() < 0.3))
                    if rng.random() < 0.3:  # a second, later PO changes nothing: the earliest counts
                        rows.append((planned + day(rng.randint(7, 30)), "open", False))
            elif rng.random() < 0.35:
                rows.append((as_of + day(rng.randint(1, lead + 5)), "open", rng.random() < 0.03))
            rows.sort(key=lambda r: r[0])
            for expected, status, expedite in rows:
                qty = max(5, round(item.typical_qty * rng.uniform(15, 60)))
                placed = expected - day(max(1, round(lead * rng.uniform(0.8, 1.3))))
                yield (f"PO-{n}", supplier.supplier_id, item.sku, wh, qty, expected, status, expedite, placed)
                n += 1
