"""``python -m demo``: run the Level 4 closed loop (see :mod:`demo.run`)."""

from __future__ import annotations

from demo.run import main

raise SystemExit(main())
