"""The CLV math (lifecycle.clv): published CDNOW estimates, simulation recovery,
Monte-Carlo checks of the closed forms, discounting, bad input and non-convergence."""

import csv
import pathlib

import numpy as np
import pytest
from scipy import integrate
from scipy.special import betaln

from lifecycle.clv import (
    BgNbdParams,
    GammaGammaParams,
    bgnbd_expected_purchases,
    bgnbd_fit,
    bgnbd_log_likelihood,
    bgnbd_p_alive,
    compress,
    gamma_gamma_expected_value,
    gamma_gamma_fit,
    gamma_gamma_log_likelihood,
    monthly_discount_rate,
    predicted_clv,
)
from lifecycle.clv import bgnbd as bgnbd_module
from lifecycle.clv import gamma_gamma as gamma_gamma_module
from lifecycle.clv.base import maximise_log_likelihood, newton_minimise, unique_int_rows, unique_inverse, unique_rows
from lifecycle.clv.bgnbd import bgnbd_expected_purchases_new_customer
from lifecycle.clv.predict import DAYS_PER_MONTH, PairMemo, bgnbd_forecast, compress_days
from lifecycle.clv.simulate import simulate_bgnbd, simulate_gamma_gamma

DATA = pathlib.Path(__file__).parent / "data" / "cdnow_customers_summary_with_transactions.csv"
# Fader, Hardie & Lee (2005), Marketing Science 24(2), CDNOW calibration (39 weeks)
PUBLISHED_BG = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
PUBLISHED_LL = -9582.4
# Fader & Hardie (2013) Gamma-Gamma note / FHL (2005) JMR, CDNOW repeat buyers
PUBLISHED_GG = GammaGammaParams(p=6.25, q=3.74, v=15.44)


@pytest.fixture(scope="module")
def cdnow():
    with DATA.open() as handle:
        rows = list(csv.DictReader(handle))
    return {key: np.array([float(row[key]) for row in rows]) for key in ("x", "t_x", "T", "zbar")}


@pytest.fixture(scope="module")
def cdnow_bg_fit(cdnow):
    return bgnbd_fit(cdnow["x"], cdnow["t_x"], cdnow["T"])


def _day_resolution_histories(params, n, seed, horizon=0.0):
    """Customers acquired over 78 weeks, times kept to whole days (as the job produces them)."""
    rng = np.random.default_rng(seed)
    T = rng.integers(1, 78 * 7 + 1, n) / 7.0
    sim = simulate_bgnbd(params, T, rng, horizon=horizon)
    return sim, np.floor(sim.recency * 7.0) / 7.0, rng


# --- (a) published CDNOW figures ---------------------------------------------------------


def test_cdnow_sample_is_the_published_one(cdnow):
    assert cdnow["x"].size == 2357
    assert int((cdnow["x"] > 0).sum()) == 946
    assert np.all(cdnow["T"] <= 39 + 1e-9)


def test_bgnbd_fit_reproduces_published_cdnow_estimates(cdnow_bg_fit):
    fit = cdnow_bg_fit
    assert fit.converged, fit.message
    assert fit.n == 2357
    p = fit.params
    # The paper reports three decimals; we agree to the last one.
    assert p.r == pytest.approx(PUBLISHED_BG.r, abs=6e-4)
    assert p.alpha == pytest.approx(PUBLISHED_BG.alpha, abs=6e-4)
    assert p.a == pytest.approx(PUBLISHED_BG.a, abs=6e-4)
    assert p.b == pytest.approx(PUBLISHED_BG.b, abs=6e-4)
    assert fit.log_likelihood == pytest.approx(PUBLISHED_LL, abs=0.1)


def test_bgnbd_log_likelihood_at_published_parameters(cdnow):
    ll = bgnbd_log_likelihood(PUBLISHED_BG, cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert ll == pytest.approx(PUBLISHED_LL, abs=0.1)


def test_fit_on_compressed_triples_equals_fit_on_all_rows(cdnow, cdnow_bg_fit):
    uf, ur, uT, weights, inverse = compress(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert uf.size < cdnow["x"].size
    assert weights.sum() == cdnow["x"].size
    np.testing.assert_array_equal(uf[inverse], cdnow["x"])
    np.testing.assert_array_equal(ur[inverse], cdnow["t_x"])
    np.testing.assert_array_equal(uT[inverse], cdnow["T"])
    compressed = bgnbd_fit(uf, ur, uT, weights)
    assert compressed.converged
    assert compressed.n == cdnow_bg_fit.n
    assert compressed.log_likelihood == pytest.approx(cdnow_bg_fit.log_likelihood, abs=1e-6)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(compressed.params, name) == pytest.approx(getattr(cdnow_bg_fit.params, name), rel=1e-5)


def test_gamma_gamma_fit_reproduces_published_cdnow_estimates(cdnow):
    fit = gamma_gamma_fit(cdnow["x"], cdnow["zbar"])
    assert fit.converged, fit.message
    assert fit.n == 946  # repeat buyers only
    assert fit.params.p == pytest.approx(PUBLISHED_GG.p, abs=0.005)
    assert fit.params.q == pytest.approx(PUBLISHED_GG.q, abs=0.005)
    assert fit.params.v == pytest.approx(PUBLISHED_GG.v, abs=0.01)
    assert fit.log_likelihood == pytest.approx(gamma_gamma_log_likelihood(fit.params, cdnow["x"], cdnow["zbar"]))


def test_conditional_expectation_matches_hardie_spreadsheet():
    # FHL (2005) spreadsheet: x=2, t_x=30.43, T=38.86 expects 1.226 purchases in the next 39 weeks.
    value = bgnbd_expected_purchases(PUBLISHED_BG, 39, [2], [30.43], [38.86])
    assert value[0] == pytest.approx(1.226, abs=5e-4)


DERIVATIVE_CASES = [
    (bgnbd_module, np.log([0.3, 5.0, 0.9, 2.0]), ("x", "t_x", "T")),
    (bgnbd_module, np.log([1.1, 0.06, 0.008, 226.0]), ("x", "t_x", "T")),  # a ridge like the 1M benchmark's optimum
    (gamma_gamma_module, np.log([5.0, 3.0, 12.0]), ("x", "zbar")),
]


def _prepared_on_cdnow(cdnow, module, columns):
    arrays = [cdnow[c] for c in columns]
    if module is gamma_gamma_module:
        used = arrays[0] > 0
        arrays = [a[used] for a in arrays]
    return module._Prepared(*arrays, np.ones(arrays[0].size))


@pytest.mark.parametrize(("module", "params", "columns"), DERIVATIVE_CASES)
def test_analytic_gradient_matches_finite_differences(cdnow, module, params, columns):
    prepared = _prepared_on_cdnow(cdnow, module, columns)
    _, grad = prepared.nll_and_grad(params)
    step = 1e-6
    numeric = [
        (prepared.nll_and_grad(params + step * e)[0] - prepared.nll_and_grad(params - step * e)[0]) / (2 * step)
        for e in np.eye(params.size)
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(("module", "params", "columns"), DERIVATIVE_CASES)
def test_analytic_hessian_matches_finite_differences_of_the_gradient(cdnow, module, params, columns):
    prepared = _prepared_on_cdnow(cdnow, module, columns)
    value, grad, hessian = prepared.nll_grad_hess(params)
    # the same value and gradient as without the Hessian
    assert (value, grad.tolist()) == (prepared.nll_and_grad(params)[0], prepared.nll_and_grad(params)[1].tolist())
    step = 1e-5
    numeric = np.array(
        [
            (prepared.nll_and_grad(params + step * e)[1] - prepared.nll_and_grad(params - step * e)[1]) / (2 * step)
            for e in np.eye(params.size)
        ]
    )
    np.testing.assert_allclose(hessian, hessian.T, rtol=0, atol=1e-15)
    np.testing.assert_allclose(hessian, numeric, rtol=1e-6, atol=1e-9)


def test_fast_likelihood_equals_the_plain_equation(cdnow):
    # The per-x/per-T regrouped evaluation used in the fit vs eq. (6) row by row.
    params = BgNbdParams(r=0.3, alpha=5.0, a=0.9, b=2.0)
    prepared = bgnbd_module._Prepared(cdnow["x"], cdnow["t_x"], cdnow["T"], np.ones(cdnow["x"].size))
    value, _ = prepared.nll_and_grad(np.log([0.3, 5.0, 0.9, 2.0]))
    plain = bgnbd_log_likelihood(params, cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert -value * cdnow["x"].size == pytest.approx(plain, rel=1e-12)



def _routes(prepared, start, names):
    newton = maximise_log_likelihood(prepared, start, names)
    lbfgs = maximise_log_likelihood(prepared, start, names, newton=False)
    return newton, lbfgs


def test_newton_and_lbfgs_reach_the_same_optimum(cdnow):
    bg = bgnbd_module._Prepared(cdnow["x"], cdnow["t_x"], cdnow["T"], np.ones(cdnow["x"].size))
    repeat = cdnow["x"] > 0
    gg = gamma_gamma_module._Prepared(cdnow["x"][repeat], cdnow["zbar"][repeat] / 35.0, np.ones(int(repeat.sum())))
    for prepared, names in ((bg, bgnbd_module._NAMES), (gg, gamma_gamma_module._NAMES)):
        crude = np.zeros(len(names))
        lbfgs = maximise_log_likelihood(prepared, crude, names, newton=False)
        assert lbfgs[2] and not lbfgs[3].startswith("Newton"), lbfgs[3]
        # from the crude start (whichever route finishes) and from near the optimum (where the
        # subsample warm-up starts it), the same optimum
        for start in (crude, lbfgs[0] + 0.2):
            newton = maximise_log_likelihood(prepared, start, names)
            assert newton[2], newton[3]
            np.testing.assert_allclose(newton[0], lbfgs[0], rtol=0, atol=1e-5)
        assert newton[3].startswith("Newton")
        # Newton's point is at least as good and has a (near) zero gradient
        assert newton[1] <= lbfgs[1] + 1e-13
        assert np.max(np.abs(prepared.nll_and_grad(newton[0])[1])) < 1e-9  # L-BFGS's gtol


def test_a_large_fit_takes_the_newton_route_from_the_warm_up():
    truth = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
    sim, recency, _ = _day_resolution_histories(truth, 300_000, seed=21)
    uf, ur, uT, weights, _ = compress(sim.frequency, recency, sim.T)
    assert uf.size > 40_000  # large enough for the subsample warm-up
    fit = bgnbd_fit(uf, ur, uT, weights)
    assert fit.converged, fit.message
    assert fit.message.startswith("Newton") and fit.iterations <= 6
    # the L-BFGS route on the same data: the same optimum
    scale = float(np.dot(weights, uT) / weights.sum())
    prepared = bgnbd_module._Prepared(uf, ur / scale, uT / scale, weights)
    u = np.log([fit.params.r, fit.params.alpha / scale, fit.params.a, fit.params.b])
    lbfgs = maximise_log_likelihood(prepared, u + 0.05, bgnbd_module._NAMES, newton=False)
    assert lbfgs[2]
    np.testing.assert_allclose(u, lbfgs[0], rtol=0, atol=1e-5)
    assert prepared.nll_and_grad(u)[0] <= lbfgs[1] + 1e-14


def test_newton_gives_way_to_lbfgs_when_the_likelihood_has_no_interior_maximum():
    # The data of test_fit_without_heterogeneity_or_dropout_is_not_converged: Newton cannot
    # finish (the optimum is at the edge), and the L-BFGS route reports the drift as before.
    rng = np.random.default_rng(2)
    T = np.full(1000, 52.0)
    x = rng.poisson(0.2 * T).astype(float)
    recency = np.where(x > 0, T * rng.beta(np.maximum(x, 1), 1), 0.0)
    prepared = bgnbd_module._Prepared(x, recency / 52.0, T / 52.0, np.ones(1000))
    start = np.log([1.0, 0.1, 1.0, 1.0])
    assert newton_minimise(prepared.nll_grad_hess, start) is None
    newton, lbfgs = _routes(prepared, start, bgnbd_module._NAMES)
    assert newton[2:4] == lbfgs[2:4] and "ran off" in newton[3]
    np.testing.assert_array_equal(newton[0], lbfgs[0])


def test_integer_rows_compress_like_float_rows():
    rng = np.random.default_rng(4)
    T_days = rng.integers(1, 1100, 50_000)
    x = rng.integers(0, 30, 50_000)
    recency_days = np.where(x > 0, (rng.random(50_000) * T_days).astype(np.int64), 0)
    uf, ur, uT, weights, _ = compress(x, recency_days / 7.0, T_days / 7.0)
    df, dr, dT, dw = compress_days(x, recency_days, T_days, 7.0)
    for a, b in ((uf, df), (ur, dr), (uT, dT), (weights, dw)):
        np.testing.assert_array_equal(a, b)  # same values in the same order
    (a, b, c), counts, inverse = unique_int_rows(x, recency_days, T_days)
    (fa, fb, fc), fcounts, finverse = unique_rows(x, recency_days, T_days)
    for left, right in ((a, fa), (b, fb), (c, fc), (counts, fcounts), (inverse, finverse)):
        np.testing.assert_array_equal(left, right)
    assert unique_int_rows(x, T_days, return_inverse=False)[2] is None
    with pytest.raises(ValueError):
        unique_int_rows(np.array([1, -1]), np.array([2, 3]))
    with pytest.raises(ValueError):
        unique_int_rows(np.array([1.5, 1.0]), np.array([2, 3]))
    empty = compress_days(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    assert all(part.size == 0 for part in empty)



@pytest.mark.parametrize(
    "values",
    [
        np.arange(600) % 37 / 7.0,  # days in weeks: the sort
        np.repeat(np.arange(50.0), 3),  # sorted: the runs
        (np.arange(1000) * 7919) % 300 * 1.0,  # whole numbers as floats: the table
        (np.arange(1000) * 7919) % 300 - 5,  # integers, some negative: the table
        (np.arange(1000) % 7) * 2**40,  # integers of a wide range: the sort
        np.array([2.5]),
        np.array([], dtype=float),
    ],
)
def test_unique_inverse_is_np_unique(values):
    distinct, inverse = unique_inverse(values)
    expected, expected_inverse = np.unique(values, return_inverse=True)
    np.testing.assert_array_equal(distinct, expected)
    assert distinct.dtype == expected.dtype
    np.testing.assert_array_equal(inverse, expected_inverse)
    np.testing.assert_array_equal(distinct[inverse], values)

@pytest.mark.parametrize("params", [PUBLISHED_BG, BgNbdParams(r=2.0, alpha=3.0, a=1.0, b=0.4)])
@pytest.mark.parametrize(("horizon_months", "unit_days"), [(12, 7.0), (24, 7.0), (12, 1.0), (0, 7.0)])
def test_forecast_equals_p_alive_expected_purchases_and_predicted_clv(params, horizon_months, unit_days):
    rng = np.random.default_rng(9)
    T_days = rng.integers(1, 800, 20_000)
    x = rng.integers(0, 40, 20_000)
    recency_days = np.where(x > 0, (rng.random(20_000) * T_days).astype(np.int64), 0)
    args = (x.astype(float), recency_days / unit_days, T_days / unit_days)
    kwargs = {"horizon_months": horizon_months, "annual_discount_rate": 0.1, "time_unit_days": unit_days}
    forecast = bgnbd_forecast(params, *args, **kwargs)
    np.testing.assert_array_equal(forecast.p_alive, bgnbd_p_alive(params, *args))
    horizon = horizon_months * DAYS_PER_MONTH / unit_days
    np.testing.assert_array_equal(forecast.expected_purchases, bgnbd_expected_purchases(params, horizon, *args))
    per_unit = predicted_clv(params, np.ones(x.size), *args, **kwargs)
    np.testing.assert_allclose(forecast.discounted_purchases, per_unit, rtol=1e-13, atol=1e-300)
    from_days = bgnbd_forecast(params, *args, **kwargs, T_days=T_days)
    for name in ("p_alive", "expected_purchases", "discounted_purchases"):
        np.testing.assert_array_equal(getattr(from_days, name), getattr(forecast, name))
    with pytest.raises(ValueError):
        bgnbd_forecast(params, *args, **kwargs, T_days=T_days + 1)



def test_a_memo_carries_pairs_across_chunks_without_changing_a_figure():
    rng = np.random.default_rng(12)
    T_days = rng.integers(1, 300, 30_000)
    x = rng.integers(0, 12, 30_000)
    recency_days = np.where(x > 0, (rng.random(30_000) * T_days).astype(np.int64), 0)
    args = (x.astype(float), recency_days / 7.0, T_days / 7.0)
    memo = PairMemo()
    for params in (PUBLISHED_BG, PUBLISHED_BG, BgNbdParams(r=0.5, alpha=6.0, a=0.8, b=2.5)):
        for chunk in np.array_split(np.arange(x.size), 3):  # chunks share most pairs
            part = [a[chunk] for a in args]
            alone = bgnbd_forecast(params, *part)
            remembered = bgnbd_forecast(params, *part, T_days=T_days[chunk], memo=memo)
            for name in ("p_alive", "expected_purchases", "discounted_purchases"):
                np.testing.assert_array_equal(getattr(remembered, name), getattr(alone, name))
    # the memo holds each pair once, for the last parameters only
    assert memo._keys.size == np.unique((x << 32) + T_days).size and np.all(np.diff(memo._keys) > 0)
    with pytest.raises(ValueError):
        bgnbd_forecast(PUBLISHED_BG, *args, memo=memo)

def test_forecast_of_nobody_is_empty():
    forecast = bgnbd_forecast(PUBLISHED_BG, [], [], [])
    assert forecast.p_alive.size == forecast.expected_purchases.size == forecast.discounted_purchases.size == 0

# --- (b) recovery of known parameters ------------------------------------------------------


def test_bgnbd_recovers_simulated_parameters():
    truth = BgNbdParams(r=0.6, alpha=8.0, a=0.7, b=3.0)
    sim, recency, _ = _day_resolution_histories(truth, 20_000, seed=11)
    uf, ur, uT, weights, _ = compress(sim.frequency, recency, sim.T)
    fit = bgnbd_fit(uf, ur, uT, weights)
    assert fit.converged, fit.message
    assert fit.params.r == pytest.approx(truth.r, rel=0.08)
    assert fit.params.alpha == pytest.approx(truth.alpha, rel=0.10)
    assert fit.params.a == pytest.approx(truth.a, rel=0.20)
    assert fit.params.b == pytest.approx(truth.b, rel=0.25)
    # the truth is not better than the optimum
    assert fit.log_likelihood >= bgnbd_log_likelihood(truth, uf, ur, uT, weights)


def test_gamma_gamma_recovers_simulated_parameters():
    truth = GammaGammaParams(p=4.0, q=5.0, v=40.0)
    rng = np.random.default_rng(5)
    frequency = rng.integers(0, 8, 20_000).astype(float)
    monetary = simulate_gamma_gamma(truth, frequency, rng)
    fit = gamma_gamma_fit(frequency, monetary)
    assert fit.converged, fit.message
    assert fit.n == int((frequency > 0).sum())
    assert fit.params.p == pytest.approx(truth.p, rel=0.08)
    assert fit.params.q == pytest.approx(truth.q, rel=0.10)
    assert fit.params.v == pytest.approx(truth.v, rel=0.12)
    assert fit.params.population_mean == pytest.approx(truth.population_mean, rel=0.03)


# --- (c) P(alive), expectations, discounting ----------------------------------------------


def test_p_alive_properties():
    p = PUBLISHED_BG
    # no repeat purchase: the BG/NBD customer cannot have dropped out yet
    np.testing.assert_array_equal(bgnbd_p_alive(p, [0, 0], [0, 0], [1.0, 500.0]), [1.0, 1.0])
    # more time since the last purchase -> less likely alive
    by_T = bgnbd_p_alive(p, [3] * 4, [10.0] * 4, [10.0, 20.0, 40.0, 80.0])
    assert np.all(np.diff(by_T) < 0)
    # a more recent last purchase -> more likely alive
    by_recency = bgnbd_p_alive(p, [3] * 4, [5.0, 15.0, 25.0, 35.0], [39.0] * 4)
    assert np.all(np.diff(by_recency) > 0)
    # bought at the very end: P(alive) = 1 / (1 + a / (b + x - 1))
    assert bgnbd_p_alive(p, [2], [39.0], [39.0])[0] == pytest.approx(1 / (1 + p.a / (p.b + 1)))
    many = bgnbd_p_alive(p, np.arange(1, 200), np.full(199, 1.0), np.full(199, 1000.0))
    assert np.all((many >= 0) & (many <= 1))


def test_p_alive_and_expectation_match_monte_carlo():
    truth = BgNbdParams(r=0.5, alpha=6.0, a=0.8, b=2.5)
    rng = np.random.default_rng(3)
    T = np.full(200_000, 30.0)
    sim = simulate_bgnbd(truth, T, rng, horizon=26.0)
    p_alive = bgnbd_p_alive(truth, sim.frequency, sim.recency, sim.T)
    expected = bgnbd_expected_purchases(truth, 26.0, sim.frequency, sim.recency, sim.T)
    # E[alive | history] and E[future | history] averaged over any group defined by the
    # observed history equal the simulated group means.
    for group in (sim.frequency == 0, sim.frequency == 1, (sim.frequency >= 2) & (sim.recency < 15), sim.frequency >= 2):
        assert group.sum() > 5000
        assert p_alive[group].mean() == pytest.approx(sim.alive[group].mean(), abs=0.01)
        assert expected[group].mean() == pytest.approx(sim.future[group].mean(), rel=0.04)


def test_expected_purchases_of_new_customer_matches_monte_carlo():
    truth = BgNbdParams(r=0.5, alpha=6.0, a=0.8, b=2.5)
    sim = simulate_bgnbd(truth, np.full(200_000, 26.0), np.random.default_rng(8))
    expected = bgnbd_expected_purchases_new_customer(truth, [26.0])[0]
    assert expected == pytest.approx(sim.frequency.mean(), rel=0.02)


def test_expected_purchases_grow_with_horizon_and_stay_finite_for_heavy_buyers():
    p = PUBLISHED_BG
    x = np.array([0.0, 1.0, 5.0, 60.0, 400.0])
    t_x = np.array([0.0, 20.0, 30.0, 38.0, 38.5])
    T = np.full(5, 39.0)
    previous = bgnbd_expected_purchases(p, 0.0, x, t_x, T)
    np.testing.assert_allclose(previous, 0.0, atol=1e-12)
    for t in (1.0, 4.0, 13.0, 52.0, 520.0):
        current = bgnbd_expected_purchases(p, t, x, t_x, T)
        assert np.all(np.isfinite(current))
        assert np.all(current > previous)
        previous = current


def _expected_purchases_by_quadrature(params, t, x, t_x, T):
    """Eq. (10) by another route: P(alive) x E[(1 - exp(-lambda p t)) / p] with the
    posterior of an alive customer, lambda ~ Gamma(r+x, alpha+T), p ~ Beta(a, b+x);
    the lambda expectation in closed form, the p one by quadrature."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b

    def inner(p):
        if p == 0:
            return (r + x) * t / (alpha + T)
        return -np.expm1(-(r + x) * np.log1p(p * t / (alpha + T))) / p

    value, _ = integrate.quad(inner, 0, 1, weight="alg", wvar=(a - 1, b + x - 1), epsabs=0, epsrel=1e-11, limit=200)
    return bgnbd_p_alive(params, [x], [t_x], [T])[0] * value / np.exp(betaln(a, b + x))


@pytest.mark.parametrize("params", [PUBLISHED_BG, BgNbdParams(r=2.0, alpha=3.0, a=1.8, b=0.4)])
@pytest.mark.parametrize(
    ("x", "t_x", "T", "t"),
    [(0, 0, 39, 13), (2, 30.43, 38.86, 39), (5, 20, 39, 52), (60, 38, 39, 520), (400, 39, 39, 1), (1000, 100, 100, 10), (3, 20, 39, 1e4)],
)
def test_expected_purchases_match_an_independent_quadrature(params, x, t_x, T, t):
    # large x and long horizons are where a naive 2F1 evaluation breaks down
    closed_form = bgnbd_expected_purchases(params, t, [x], [t_x], [T])[0]
    assert closed_form == pytest.approx(_expected_purchases_by_quadrature(params, t, x, t_x, T), rel=1e-8)


def test_expected_purchases_is_continuous_through_a_equal_one():
    args = (13.0, [0.0, 3.0], [0.0, 20.0], [39.0, 39.0])
    at_one = bgnbd_expected_purchases(BgNbdParams(0.5, 6.0, 1.0, 2.5), *args)
    near = bgnbd_expected_purchases(BgNbdParams(0.5, 6.0, 1.001, 2.5), *args)
    assert np.all(np.isfinite(at_one))
    np.testing.assert_allclose(at_one, near, rtol=1e-3)


def test_gamma_gamma_expected_value_shrinks_towards_population_mean():
    params = PUBLISHED_GG
    population = params.p * params.v / (params.q - 1)
    values = gamma_gamma_expected_value(params, [0, 1, 10, 1000], [0.0, 100.0, 100.0, 100.0])
    assert values[0] == pytest.approx(population)
    assert population < values[1] < values[2] < values[3] < 100.0
    assert values[3] == pytest.approx(100.0, rel=0.01)
    # (q-1)/(px+q-1) * population + px/(px+q-1) * m
    x, m = 1, 100.0
    weight = params.p * x / (params.p * x + params.q - 1)
    assert values[1] == pytest.approx((1 - weight) * population + weight * m)


def test_monthly_discount_rate_compounds_to_the_annual_rate():
    d = monthly_discount_rate(0.10)
    assert (1 + d) ** 12 == pytest.approx(1.10)
    assert monthly_discount_rate(0.0) == 0.0


def test_predicted_clv_discounting_and_horizon():
    p = PUBLISHED_BG
    x = np.array([0.0, 2.0, 7.0])
    t_x = np.array([0.0, 30.43, 35.0])
    T = np.full(3, 38.86)
    value = np.array([35.0, 50.0, 20.0])
    undiscounted = predicted_clv(p, value, x, t_x, T, horizon_months=12, annual_discount_rate=0.0)
    twelve_months = 12 * (365.25 / 12) / 7.0
    np.testing.assert_allclose(undiscounted, bgnbd_expected_purchases(p, twelve_months, x, t_x, T) * value, rtol=1e-10)
    discounted = predicted_clv(p, value, x, t_x, T, horizon_months=12, annual_discount_rate=0.10)
    assert np.all(discounted < undiscounted)
    assert np.all(discounted > undiscounted / 1.10)
    longer = predicted_clv(p, value, x, t_x, T, horizon_months=24)
    assert np.all(longer >= discounted)
    np.testing.assert_array_equal(predicted_clv(p, value, x, t_x, T, horizon_months=0), 0.0)
    # days as the time unit give the same money as weeks
    in_days = predicted_clv(p, value, x, t_x * 7, T * 7, time_unit_days=1.0, horizon_months=12)
    scaled = BgNbdParams(r=p.r, alpha=p.alpha * 7, a=p.a, b=p.b)
    np.testing.assert_allclose(predicted_clv(scaled, value, x, t_x * 7, T * 7, time_unit_days=1.0), discounted, rtol=1e-9)
    assert not np.allclose(in_days, discounted)  # the unit matters when the parameters are not rescaled


# --- (d) bad input and fits that must not be used ----------------------------------------------


@pytest.mark.parametrize(
    ("frequency", "recency", "T"),
    [
        ([], [], []),
        ([-1], [0], [10]),
        ([1], [-1], [10]),
        ([1], [11], [10]),
        ([0], [3], [10]),
        ([1, 2], [1], [10, 10]),
        ([np.nan], [0], [10]),
    ],
)
def test_bgnbd_rejects_bad_input(frequency, recency, T):
    with pytest.raises(ValueError):
        bgnbd_fit(frequency, recency, T)


def test_bad_weights_and_spend_are_rejected():
    with pytest.raises(ValueError):
        bgnbd_fit([1, 2], [3, 4], [10, 10], weights=[1, -1])
    with pytest.raises(ValueError):
        bgnbd_fit([1, 2], [3, 4], [10, 10], weights=[1])
    with pytest.raises(ValueError):
        gamma_gamma_fit([1, 2], [10.0, -5.0])
    with pytest.raises(ValueError):
        gamma_gamma_fit([0, 0], [0.0, 0.0])  # nobody with a repeat purchase
    with pytest.raises(ValueError):
        gamma_gamma_expected_value(GammaGammaParams(p=2.0, q=0.9, v=10.0), [1], [10.0])


def test_fit_without_any_repeat_purchase_is_not_converged():
    fit = bgnbd_fit(np.zeros(500), np.zeros(500), np.linspace(1, 50, 500))
    assert fit.converged is False
    assert fit.message


def test_fit_on_a_single_customer_is_not_converged():
    # four parameters from one history: the likelihood has no strict maximum
    fit = bgnbd_fit([3], [20.0], [39.0])
    assert fit.converged is False
    assert "identif" in fit.message or "converge" in fit.message


def test_fit_without_heterogeneity_or_dropout_is_not_converged():
    # Everyone buys at the same Poisson rate and nobody drops out: the MLE sits at the edge of
    # the parameter space (a -> 0, b -> infinity), so the fit must not be used.
    rng = np.random.default_rng(2)
    T = np.full(1000, 52.0)
    x = rng.poisson(0.2 * T).astype(float)
    recency = np.where(x > 0, T * rng.beta(np.maximum(x, 1), 1), 0.0)
    fit = bgnbd_fit(x, recency, T)
    assert fit.converged is False
    assert "ran off" in fit.message


def test_gamma_gamma_with_one_spend_level_for_everyone_is_not_converged():
    # The spread of these means is what within-customer noise alone would give: no
    # heterogeneity between customers is left to estimate (q -> infinity).
    x = np.array([1, 1, 1, 2, 2, 3, 4, 6, 8, 12], dtype=float)
    monetary = np.array([20.01, 35.01, 18.01, 27.01, 41.01, 22.01, 30.01, 25.01, 33.01, 29.01])
    fit = gamma_gamma_fit(x, monetary)
    assert fit.converged is False
    assert "q ran off" in fit.message


def test_gamma_gamma_whose_likelihood_rises_towards_infinite_p_is_not_converged():
    rows = np.loadtxt(DATA.parent / "gamma_gamma_p_runs_off.csv", delimiter=",", skiprows=1)
    fit = gamma_gamma_fit(rows[:, 0], rows[:, 1])
    assert fit.converged is False
    assert "ran off" in fit.message
    # the likelihood really does keep rising along the ridge p -> infinity, p v constant
    base = GammaGammaParams(p=50.0, q=fit.params.q, v=fit.params.p * fit.params.v / 50.0)
    further = GammaGammaParams(p=5000.0, q=fit.params.q, v=fit.params.p * fit.params.v / 5000.0)
    assert gamma_gamma_log_likelihood(further, rows[:, 0], rows[:, 1]) > gamma_gamma_log_likelihood(base, rows[:, 0], rows[:, 1])


def test_gamma_gamma_fit_on_a_single_repeat_buyer_is_not_converged():
    fit = gamma_gamma_fit([0, 2], [0.0, 30.0])
    assert fit.converged is False


def test_zero_spend_repeat_buyers_are_left_out_of_the_spend_fit(cdnow):
    monetary = cdnow["zbar"].copy()
    free = np.flatnonzero(cdnow["x"] > 0)[:3]
    monetary[free] = 0.0
    fit = gamma_gamma_fit(cdnow["x"], monetary)
    assert fit.converged
    assert fit.n == 946 - 3
    values = gamma_gamma_expected_value(fit.params, cdnow["x"][free], monetary[free])
    assert np.all(values > 0) and np.all(values < fit.params.population_mean)
