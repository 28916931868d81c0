"""Privacy accounting for the Gaussian mechanism: (epsilon, delta) of a run, and calibration.

Each federated round releases one noisy aggregate: a Gaussian mechanism with noise
multiplier z (noise std = z x the L2 sensitivity). `gaussian_epsilon` accounts exactly:
composing Gaussian mechanisms with multipliers z_1..z_R is exactly one Gaussian mechanism
with multiplier (sum 1/z_r^2)^(-1/2), i.e. mu-GDP with mu = sqrt(sum 1/z_r^2) (Dong, Roth
& Su 2019), whose tight (epsilon, delta) curve is
delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2)  (Balle & Wang 2018).
This is what a run reports: fedlingua samples clients without amplification (the sample
is known to the server), so every round counts at full strength.

`calibrate_noise` finds the smallest noise multiplier that meets a target epsilon.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

_SQRT2 = math.sqrt(2.0)


# ---- exact accounting of (composed) Gaussian mechanisms ------------------------------------
def _log_ndtr(x: float) -> float:
    """log Phi(x), accurate in the far lower tail (where Phi underflows)."""
    if x > -30:
        return (
            math.log(0.5 * math.erfc(-x / _SQRT2))
            if x < 5
            else math.log1p(-0.5 * math.erfc(x / _SQRT2))
        )
    # asymptotic series: Phi(x) = phi(x)/|x| * (1 - 1/x^2 + 3/x^4 - 15/x^6 + 105/x^8 ...)
    x2 = x * x
    series = 1 - 1 / x2 + 3 / x2**2 - 15 / x2**3 + 105 / x2**4
    return -x2 / 2 - math.log(-x) - 0.5 * math.log(2 * math.pi) + math.log(series)


def gaussian_delta(epsilon: float, mu: float) -> float:
    """delta(epsilon) of mu-GDP: the tight curve of a Gaussian mechanism with sensitivity/std mu."""
    if mu <= 0:
        return 0.0
    if math.isinf(mu):
        return 1.0
    a = _log_ndtr(-epsilon / mu + mu / 2)
    b = epsilon + _log_ndtr(-epsilon / mu - mu / 2)
    if b >= a:  # only rounding can make the difference negative
        return 0.0
    return math.exp(a) * -math.expm1(b - a)


def composed_mu(noise_multipliers: Iterable[float]) -> float:
    """mu of the composition of Gaussian mechanisms with these noise multipliers."""
    total = 0.0
    for z in noise_multipliers:
        if z <= 0:
            return math.inf
        total += 1.0 / (z * z)
    return math.sqrt(total)


def gaussian_epsilon(noise_multipliers: Sequence[float], delta: float) -> float:
    """Exact epsilon at `delta` of R composed Gaussian releases (inf if any has no noise)."""
    mu = composed_mu(noise_multipliers)
    if mu == 0:
        return 0.0
    if math.isinf(mu):
        return math.inf
    if gaussian_delta(0.0, mu) <= delta:
        return 0.0
    lo, hi = 0.0, 1.0
    while gaussian_delta(hi, mu) > delta:
        hi *= 2
        if hi > 1e6:
            return math.inf
    for _ in range(200):
        mid = (lo + hi) / 2
        if gaussian_delta(mid, mu) > delta:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10 * max(1.0, hi):
            break
    return hi


# ---- calibration ---------------------------------------------------------------------------
def calibrate_noise(
    target_epsilon: float, releases: int, delta: float, *, tolerance: float = 1e-4
) -> float:
    """Smallest noise multiplier z whose `releases` Gaussian releases give <= target epsilon."""
    if target_epsilon <= 0:
        raise ValueError("target epsilon must be > 0")
    if releases < 1:
        raise ValueError("releases must be >= 1")

    def eps(z: float) -> float:
        return gaussian_epsilon([z] * releases, delta)

    lo, hi = 1e-3, 1.0
    while eps(hi) > target_epsilon:
        lo, hi = hi, hi * 2
        if hi > 1e6:
            raise ValueError(f"epsilon={target_epsilon} needs an unbounded noise multiplier")
    while hi - lo > tolerance * hi:
        mid = (lo + hi) / 2
        if eps(mid) > target_epsilon:
            lo = mid
        else:
            hi = mid
    return hi
