"""The privacy accountant against published values, numerical integration and its own bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedlingua.privacy.accounting import (
    _log_a_fractional,
    _log_a_integer,
    calibrate_noise,
    gaussian_delta,
    gaussian_epsilon,
    rdp_epsilon,
)

# TensorFlow Privacy's MNIST DP-SGD tutorial (tutorials/README.md, "Select Parameters"):
# 60,000 examples, batches of 256 (q = 256/60000), delta = 1e-5, RDP accountant with the
# moments-accountant conversion eps = rdp + log(1/delta)/(alpha-1); steps = epochs * 60000 // 256.
TF_PRIVACY_TUTORIAL = [  # (noise multiplier, epochs, published epsilon)
    (1.12, 60, 2.92),
    (0.6, 30, 9.74),
    (1.2, 10, 1.20),
]


@pytest.mark.parametrize(("z", "epochs", "published"), TF_PRIVACY_TUTORIAL)
def test_rdp_accountant_reproduces_the_published_dp_sgd_epsilons(z, epochs, published):
    eps = rdp_epsilon(256 / 60000, z, epochs * 60000 // 256, 1e-5, conversion="classic")
    # the table prints two decimals; its 30-epoch row used ~0.5% fewer steps than this formula
    assert eps == pytest.approx(published, abs=0.015)
    # the improved conversion (Balle et al. 2020) is never looser
    assert rdp_epsilon(256 / 60000, z, epochs * 60000 // 256, 1e-5) < eps


def _log_a_quadrature(q: float, sigma: float, alpha: float) -> float:
    """log E_{x~N(0,s^2)}[((1-q) + q exp((2x-1)/(2 s^2)))^alpha] by the trapezoid rule."""
    x = np.linspace(-40 * sigma, 40 * sigma + 60, 2_000_001)
    log_density = -(x**2) / (2 * sigma**2) - math.log(sigma * math.sqrt(2 * math.pi))
    log_mix = np.logaddexp(math.log1p(-q), math.log(q) + (2 * x - 1) / (2 * sigma**2))
    f = log_density + alpha * log_mix
    top = f.max()
    return top + math.log(np.trapezoid(np.exp(f - top), x))


@pytest.mark.parametrize(
    ("q", "sigma", "alpha"),
    [(256 / 60000, 0.6, 3.5), (0.01, 1.1, 2.5), (0.1, 2.0, 10.5), (0.3, 0.8, 1.5), (0.05, 1.0, 4)],
)
def test_sampled_gaussian_moments_match_numerical_integration(q, sigma, alpha):
    series = (
        _log_a_integer(q, sigma, alpha)
        if float(alpha).is_integer()
        else _log_a_fractional(q, sigma, alpha)
    )
    assert series == pytest.approx(_log_a_quadrature(q, sigma, alpha), rel=1e-6, abs=1e-9)


def _delta_by_integration(epsilon: float, mu: float) -> float:
    """delta(eps) = integral of max(0, p(x) - e^eps q(x)), p = N(mu, 1), q = N(0, 1)."""
    x = np.linspace(-30, 30 + mu, 2_000_001)
    p = np.exp(-((x - mu) ** 2) / 2) / math.sqrt(2 * math.pi)
    q = np.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)
    return float(np.trapezoid(np.maximum(p - math.exp(epsilon) * q, 0), x))


@pytest.mark.parametrize(("epsilon", "mu"), [(0.0, 1.0), (1.0, 1.0), (3.0, 2.0), (0.5, 0.3)])
def test_gaussian_delta_is_the_tight_curve(epsilon, mu):
    assert gaussian_delta(epsilon, mu) == pytest.approx(
        _delta_by_integration(epsilon, mu), abs=1e-7
    )


def test_known_gaussian_pair_and_composition():
    # 1-GDP at epsilon = 1: delta = Phi(-1/2) - e Phi(-3/2) = 0.126937
    assert gaussian_delta(1.0, 1.0) == pytest.approx(0.126937, abs=1e-6)
    # R releases with multiplier z are one release with multiplier z / sqrt(R)
    assert gaussian_epsilon([2.0] * 9, 1e-5) == pytest.approx(gaussian_epsilon([2 / 3], 1e-5))
    # and the exact curve is never above the RDP bound (q = 1)
    for z, releases in [(0.5, 1), (1.0, 5), (2.0, 50), (0.8, 20)]:
        exact = gaussian_epsilon([z] * releases, 1e-5)
        assert exact <= rdp_epsilon(1.0, z, releases, 1e-5) + 1e-9
    assert gaussian_epsilon([], 1e-5) == 0.0
    assert math.isinf(gaussian_epsilon([1.0, 0.0], 1e-5))


@pytest.mark.parametrize("target", [0.5, 1.0, 4.0, 16.0])
@pytest.mark.parametrize("releases", [1, 5, 30])
def test_calibrated_noise_meets_the_target_and_is_the_smallest(target, releases):
    z = calibrate_noise(target, releases, 1e-5)
    assert gaussian_epsilon([z] * releases, 1e-5) <= target
    assert gaussian_epsilon([z * 0.999] * releases, 1e-5) > target * 0.999
    assert calibrate_noise(target, releases + 1, 1e-5) > z  # more releases need more noise
