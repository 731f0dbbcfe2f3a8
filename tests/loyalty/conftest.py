from decimal import Decimal

import pytest

from loyalty.models import Tier
from tests.loyalty.helpers import program_set, usd_rule


@pytest.fixture
def tiers():
    """Bronze 0, Silver 100, Gold 500, Platinum 2000 (earn multipliers 1-2), a 30-day downgrade grace."""
    usd_rule("1")
    program_set(downgrade_grace_days=30)
    return {
        name: Tier.objects.create(name=name, threshold=Decimal(threshold), multiplier=Decimal(multiplier))
        for name, threshold, multiplier in [("Bronze", "0", "1"), ("Silver", "100", "1.25"), ("Gold", "500", "1.5"),
                                            ("Platinum", "2000", "2")]
    }
