"""Reproducible demo data: `demo_seed` fills an empty database, `demo_reset` removes what it made."""

from .params import STAFF
from .seed import DemoSeedResult, StaffLogin, demo_reset, demo_seed, demo_staff_ensure

__all__ = ["STAFF", "DemoSeedResult", "StaffLogin", "demo_reset", "demo_seed", "demo_staff_ensure"]
