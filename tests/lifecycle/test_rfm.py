import numpy as np
import pytest

from lifecycle.models import RfmSegment
from lifecycle.services.rfm import rfm_cutpoints, rfm_scores, rfm_segments


def scores(recency, frequency, monetary):
    cuts = rfm_cutpoints(recency_days=np.array(recency), frequency=np.array(frequency), monetary=np.array(monetary))
    return cuts, rfm_scores(recency_days=np.array(recency), frequency=np.array(frequency), monetary=np.array(monetary), cutpoints=cuts)


def test_distinct_values_fall_into_quintiles():
    values = np.arange(1, 101)
    cuts, (r, f, m) = scores(values, values, values)
    assert cuts["frequency"] == pytest.approx([20.8, 40.6, 60.4, 80.2])
    assert np.bincount(f)[1:].tolist() == [20, 20, 20, 20, 20]
    assert (m == f).all()
    # Recency: fewer days since the last purchase is better.
    assert r[0] == 5 and r[-1] == 1
    assert (r == 6 - f).all()


def test_ties_always_get_the_same_score():
    frequency = np.array([1] * 60 + [2] * 20 + [5] * 20)
    _, (_, f, _) = scores(np.zeros(100), frequency, frequency)
    assert set(f[:60].tolist()) == {1}  # one-time buyers all in the lowest tier
    assert len(set(f[60:80].tolist())) == 1 and len(set(f[80:].tolist())) == 1
    assert f[60] < f[80]


def test_scores_stay_between_1_and_5():
    rng = np.random.default_rng(1)
    recency, frequency, monetary = rng.integers(0, 900, 1000), rng.integers(1, 30, 1000), rng.integers(0, 10**6, 1000)
    _, (r, f, m) = scores(recency, frequency, monetary)
    for s in (r, f, m):
        assert s.min() >= 1 and s.max() <= 5


@pytest.mark.parametrize(
    ("r", "f", "segment"),
    [
        (5, 5, RfmSegment.CHAMPIONS),
        (5, 4, RfmSegment.CHAMPIONS),
        (4, 5, RfmSegment.LOYAL),
        (3, 4, RfmSegment.LOYAL),
        (5, 1, RfmSegment.NEW),
        (4, 1, RfmSegment.PROMISING),
        (5, 2, RfmSegment.POTENTIAL_LOYALISTS),
        (3, 3, RfmSegment.NEED_ATTENTION),
        (3, 1, RfmSegment.ABOUT_TO_SLEEP),
        (2, 4, RfmSegment.AT_RISK),
        (1, 5, RfmSegment.CANNOT_LOSE),
        (2, 1, RfmSegment.HIBERNATING),
        (1, 1, RfmSegment.LOST),
    ],
)
def test_segment_map(r, f, segment):
    assert rfm_segments(np.array([r]), np.array([f]))[0] == segment.value


def test_every_grid_cell_has_a_buyer_segment():
    r, f = np.meshgrid(np.arange(1, 6), np.arange(1, 6))
    segments = set(rfm_segments(r.ravel(), f.ravel()).tolist())
    assert RfmSegment.NO_PURCHASES.value not in segments
    assert segments == {s.value for s in RfmSegment} - {RfmSegment.NO_PURCHASES.value}


def test_no_buyers_no_cutpoints():
    assert rfm_cutpoints(recency_days=np.array([]), frequency=np.array([]), monetary=np.array([])) == {
        "recency": [],
        "frequency": [],
        "monetary": [],
    }


def test_scoring_codes_each_grid_cell_as_its_segment():
    from lifecycle.services.scoring import SEGMENT_CODE_GRID, SEGMENT_CODES

    r, f = np.meshgrid(np.arange(1, 6), np.arange(1, 6))
    names = rfm_segments(r.ravel(), f.ravel())
    codes = SEGMENT_CODE_GRID[r.ravel() - 1, f.ravel() - 1]
    assert codes.tolist() == [SEGMENT_CODES[name] for name in names]


def test_scores_count_the_cut_points_strictly_below_the_value():
    rng = np.random.default_rng(3)
    recency, frequency = rng.integers(0, 900, 5000), rng.integers(1, 40, 5000)
    monetary = rng.integers(0, 10**12, 5000)  # cents well beyond float32
    cuts = rfm_cutpoints(recency_days=recency, frequency=frequency, monetary=monetary)
    r, f, m = rfm_scores(recency_days=recency, frequency=frequency, monetary=monetary, cutpoints=cuts)
    for name, values, scores, expected in (
        ("recency", recency, r, lambda below: 5 - below),
        ("frequency", frequency, f, lambda below: 1 + below),
        ("monetary", monetary, m, lambda below: 1 + below),
    ):
        below = (values.astype(np.float64)[:, None] > np.array(cuts[name])[None, :]).sum(axis=1)
        assert scores.tolist() == expected(below).tolist()
    # a value equal to a cut point is not above it
    at_cut = np.array([cuts["frequency"][0]])
    assert rfm_scores(recency_days=at_cut, frequency=at_cut, monetary=at_cut, cutpoints=cuts)[1][0] == 1
