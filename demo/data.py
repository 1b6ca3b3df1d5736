"""A synthetic customer-churn dataset with numeric, categorical and timestamp columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

PLANS = ("basic", "standard", "premium")
REGIONS = ("eu", "us", "apac")


def customers(
    rows: int = 3000,
    *,
    seed: int = 7,
    start: datetime | None = None,
    end: datetime | None = None,
    drift: float = 0.0,
) -> pd.DataFrame:
    """``rows`` customers; ``churned`` depends on tenure, usage, support calls and plan.

    ``updated_at`` spreads the rows over one day per 1000 rows from ``start``, or evenly between
    ``start`` and ``end`` when ``end`` is given. ``drift`` (0 to 1) moves the world: usage, support
    calls, prices and the premium share rise (covariate shift, 4 of the 6 features) and customers
    in ``apac`` start to churn much more (concept shift), so a model trained before the drift loses
    accuracy after it.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    tenure = rng.gamma(2.0, 12.0, rows).round(1)
    usage = rng.normal(50 + 25 * drift, 15, rows).round(2)
    calls = rng.poisson(1.5 + drift, rows)
    plan = rng.choice(PLANS, rows, p=[0.5 - 0.2 * drift, 0.35, 0.15 + 0.2 * drift])
    region = rng.choice(REGIONS, rows)
    price = 20 + 8 * drift + 15 * (plan == "standard") + 40 * (plan == "premium")
    monthly = (price + rng.normal(0, 3, rows)).round(2)
    logit = 0.2 - 0.06 * tenure - 0.025 * (usage - 50) + 0.55 * calls + 0.6 * (plan == "basic")
    logit = logit + drift * (4.0 * (region == "apac") - 1.0 * (region == "eu"))
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    span = (end - start).total_seconds() if end is not None else 86400 * max(rows / 1000, 1)
    seconds = np.sort(rng.uniform(0, span, rows))
    updated = [start + timedelta(seconds=float(s)) for s in seconds]
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, rows + 1),
            "tenure_months": tenure,
            "monthly_usage": usage,
            "support_calls": calls,
            "monthly_charge": monthly,
            "plan": plan,
            "region": region,
            "updated_at": pd.to_datetime(updated, utc=True),
            "churned": churned,
        }
    )
