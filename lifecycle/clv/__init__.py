"""Pure-numpy/scipy customer-lifetime-value models (no Django).

- ``bgnbd``: BG/NBD purchase model (fit, P(alive), conditional expected purchases)
- ``gamma_gamma``: Gamma-Gamma spend model (fit, expected order value)
- ``predict``: compression to distinct triples, discounting, predicted CLV
"""

from .base import FitResult
from .bgnbd import (
    BgNbdParams,
    bgnbd_expected_purchases,
    bgnbd_fit,
    bgnbd_log_likelihood,
    bgnbd_p_alive,
)
from .gamma_gamma import GammaGammaParams, gamma_gamma_expected_value, gamma_gamma_fit, gamma_gamma_log_likelihood
from .predict import compress, monthly_discount_rate, predicted_clv

__all__ = [
    "BgNbdParams",
    "FitResult",
    "GammaGammaParams",
    "bgnbd_expected_purchases",
    "bgnbd_fit",
    "bgnbd_log_likelihood",
    "bgnbd_p_alive",
    "compress",
    "gamma_gamma_expected_value",
    "gamma_gamma_fit",
    "gamma_gamma_log_likelihood",
    "monthly_discount_rate",
    "predicted_clv",
]
