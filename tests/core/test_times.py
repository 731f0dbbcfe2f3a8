import datetime as dt

import pytest

from core.times import as_utc


def test_any_offset_python_allows_comes_out_in_utc():
    far = dt.datetime(2025, 1, 1, 0, 0, tzinfo=dt.timezone(-dt.timedelta(hours=23, minutes=3)))
    assert as_utc(far) == far and as_utc(far).utcoffset() == dt.timedelta(0)
    assert as_utc(far).isoformat() == "2025-01-01T23:03:00+00:00"


@pytest.mark.parametrize(
    "moment",
    [
        dt.datetime(1, 1, 1, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=5))),
        dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.timezone(-dt.timedelta(hours=5))),
    ],
)
def test_a_moment_utc_cannot_express_is_a_value_error(moment):
    with pytest.raises(ValueError, match="outside the years UTC can express"):
        as_utc(moment)
