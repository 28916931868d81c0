"""The privacy accountant against numerical integration, a known pair and an upper bound."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedlingua.privacy.accounting import calibrate_noise, gaussian_delta, gaussian_epsilon


def _rdp_bound(z: float, releases: int, delta: float) -> float:
    """An upper bound on epsilon: Renyi DP of `releases` Gaussian releases (alpha R / (2 z^2)
    at order alpha) with the conversion of Balle et al. (2020), minimised over orders."""
    orders = [1 + x / 10 for x in range(1, 100)] + list(range(11, 64)) + [64, 80, 96, 128, 256, 512]
    return min(
        a * releases / (2 * z * z) + math.log1p(-1 / a) - (math.log(delta) + math.log(a)) / (a - 1)
        for a in orders
    )


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
        assert exact <= max(_rdp_bound(z, releases, 1e-5), 0.0) + 1e-9
    assert gaussian_epsilon([], 1e-5) == 0.0
    assert math.isinf(gaussian_epsilon([1.0, 0.0], 1e-5))


@pytest.mark.parametrize("target", [0.5, 1.0, 4.0, 16.0])
@pytest.mark.parametrize("releases", [1, 5, 30])
def test_calibrated_noise_meets_the_target_and_is_the_smallest(target, releases):
    z = calibrate_noise(target, releases, 1e-5)
    assert gaussian_epsilon([z] * releases, 1e-5) <= target
    assert gaussian_epsilon([z * 0.999] * releases, 1e-5) > target * 0.999
    assert calibrate_noise(target, releases + 1, 1e-5) > z  # more releases need more noise
