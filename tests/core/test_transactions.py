"""core.transactions.rolled_back: what the block writes is gone after it, the block's own reads see
it, an error in the block propagates, and inside an outer transaction only the block is undone."""

import pytest
from django.db import transaction

from core.transactions import rolled_back
from customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_the_blocks_writes_are_seen_inside_and_gone_after():
    with rolled_back():
        CustomerFactory()
        assert Customer.objects.count() == 1
    assert not Customer.objects.exists()


def test_an_error_in_the_block_propagates_and_rolls_back():
    with pytest.raises(ZeroDivisionError), rolled_back():
        CustomerFactory()
        1 / 0  # noqa: B018
    assert not Customer.objects.exists()


def test_nested_it_undoes_only_its_own_block():
    with transaction.atomic():
        kept = CustomerFactory()
        with rolled_back():
            CustomerFactory()
        assert list(Customer.objects.values_list("pk", flat=True)) == [kept.pk]
    assert Customer.objects.count() == 1
