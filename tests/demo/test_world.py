"""The demo world's clock: each batch is stamped after the previous one and never in the future."""

from __future__ import annotations

from airflow_mlops.core.snapshot import utc_now
from demo.world import World


def test_batches_right_after_each_other_are_stamped_in_order() -> None:
    world = World("host=unused")
    first, second = world.batch(5), world.batch(5)  # well within a second of the world's start
    assert first["updated_at"].max() <= second["updated_at"].min()
    assert second["updated_at"].max() <= utc_now()
    assert list(second["customer_id"]) == [6, 7, 8, 9, 10]
