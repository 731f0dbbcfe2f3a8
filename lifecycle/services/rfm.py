"""RFM scores (quintiles 1-5) and named segments, vectorised.

- R = days from the last purchase day to the as-of day (fewer is better),
  F = purchase days (transactions, same-day orders merged), M = historic value (paid, in cents).
- Quintile cut points are the 20/40/60/80th percentiles (numpy "linear") over the customers with at
  least one paid order, computed once per run and stored on it, so every chunk scores alike.
- Ties are deterministic: equal values always get the same score. For F and M the score is 1 + the
  number of cut points strictly below the value; for R it is 5 - the number of cut points strictly
  below it. A heavy tie (most customers bought once) therefore lands in the lowest tier it touches.
- Segments come from the classic R x F grid (the map used by most RFM tools, with "lost" split off
  from "hibernating" for R = 1):

      F:    1              2              3               4          5
  R=5  new            potential_loy. potential_loy.  champions  champions
  R=4  promising      potential_loy. potential_loy.  loyal      loyal
  R=3  about_to_sleep about_to_sleep need_attention  loyal      loyal
  R=2  hibernating    hibernating    at_risk         at_risk    cannot_lose
  R=1  lost           lost           at_risk         at_risk    cannot_lose

  Customers without a paid order have no scores and the segment "no_purchases".
"""

from __future__ import annotations

import numpy as np

from lifecycle.models import RfmSegment

QUANTILES = (0.2, 0.4, 0.6, 0.8)

_S = RfmSegment
# SEGMENT_GRID[r - 1][f - 1]
SEGMENT_GRID = (
    (_S.LOST, _S.LOST, _S.AT_RISK, _S.AT_RISK, _S.CANNOT_LOSE),
    (_S.HIBERNATING, _S.HIBERNATING, _S.AT_RISK, _S.AT_RISK, _S.CANNOT_LOSE),
    (_S.ABOUT_TO_SLEEP, _S.ABOUT_TO_SLEEP, _S.NEED_ATTENTION, _S.LOYAL, _S.LOYAL),
    (_S.PROMISING, _S.POTENTIAL_LOYALISTS, _S.POTENTIAL_LOYALISTS, _S.LOYAL, _S.LOYAL),
    (_S.NEW, _S.POTENTIAL_LOYALISTS, _S.POTENTIAL_LOYALISTS, _S.CHAMPIONS, _S.CHAMPIONS),
)
_GRID = np.array([[s.value for s in row] for row in SEGMENT_GRID], dtype=object)


def rfm_cutpoints(*, recency_days: np.ndarray, frequency: np.ndarray, monetary: np.ndarray) -> dict[str, list[float]]:
    """The quintile cut points of buyers' R, F and M (empty lists when there is no buyer)."""
    if len(recency_days) == 0:
        return {"recency": [], "frequency": [], "monetary": []}
    return {
        name: [float(x) for x in np.quantile(np.asarray(values, dtype=np.float64), QUANTILES)]
        for name, values in (("recency", recency_days), ("frequency", frequency), ("monetary", monetary))
    }


def _higher_is_better(values: np.ndarray, cuts: list[float]) -> np.ndarray:
    """1 + the number of cut points strictly below each value (what searchsorted(side="left")
    gives for sorted cuts; four comparisons cost a third of the binary searches). Integer values
    are compared as float64, exactly as they were converted before."""
    values = np.asarray(values)
    score = np.ones(values.shape, dtype=np.int64)
    for cut in cuts:
        score += values > cut
    return score


def rfm_scores(
    *, recency_days: np.ndarray, frequency: np.ndarray, monetary: np.ndarray, cutpoints: dict[str, list[float]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = 6 - _higher_is_better(recency_days, cutpoints["recency"])
    f = _higher_is_better(frequency, cutpoints["frequency"])
    m = _higher_is_better(monetary, cutpoints["monetary"])
    return r.astype(np.int16), f.astype(np.int16), m.astype(np.int16)


def rfm_segments(r: np.ndarray, f: np.ndarray) -> np.ndarray:
    return _GRID[np.asarray(r) - 1, np.asarray(f) - 1]
