"""Privacy accounting for the Gaussian mechanism: (epsilon, delta) of a run, and calibration.

Each federated round releases one noisy aggregate: a Gaussian mechanism with noise
multiplier z (noise std = z x the L2 sensitivity). Two accountants, both written here:

* `gaussian_epsilon` -- exact. Composing Gaussian mechanisms with multipliers z_1..z_R
  is exactly one Gaussian mechanism with multiplier (sum 1/z_r^2)^(-1/2), i.e. mu-GDP with
  mu = sqrt(sum 1/z_r^2) (Dong, Roth & Su 2019), whose tight (epsilon, delta) curve is
  delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2)  (Balle & Wang 2018).
  This is what a run reports: fedlingua samples clients without amplification (the
  sample is known to the server), so every round counts at full strength.
* `rdp_epsilon` -- Renyi DP of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar
  & Zhang 2019), integer and fractional orders, composed over steps and converted to
  (epsilon, delta). It is an upper bound, needed when the sampling rate q < 1 amplifies
  privacy (DP-SGD); `conversion="classic"` is the conversion eps = rdp + log(1/delta)/(a-1)
  of the moments-accountant era, `"improved"` the tighter one of Balle et al. (2020).

`calibrate_noise` finds the smallest noise multiplier that meets a target epsilon.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

_SQRT2 = math.sqrt(2.0)
DEFAULT_ORDERS: tuple[float, ...] = tuple(
    [1 + x / 10 for x in range(1, 100)] + list(range(11, 64)) + [64, 80, 96, 128, 256, 512]
)


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


# ---- Renyi DP of the sampled Gaussian mechanism -------------------------------------------
def _logsub(a: float, b: float) -> float:
    """log(exp(a) - exp(b)) for a >= b."""
    if b == -math.inf:
        return a
    if b > a:
        raise ValueError("log of a negative number")
    if a == b:
        return -math.inf
    return a + math.log(-math.expm1(b - a))


def _logsumexp(values: list[float]) -> float:
    top = max(values, default=-math.inf)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values))


def _log_a_integer(q: float, sigma: float, alpha: int) -> float:
    """log E_{x~N(0,s^2)}[((1-q) + q e^{(2x-1)/(2s^2)})^alpha] for integer alpha (binomial sum)."""
    terms = [
        math.lgamma(alpha + 1)
        - math.lgamma(k + 1)
        - math.lgamma(alpha - k + 1)
        + k * math.log(q)
        + (alpha - k) * math.log1p(-q)
        + (k * k - k) / (2 * sigma**2)
        for k in range(alpha + 1)
    ]
    return _logsumexp(terms)


def _log_a_fractional(q: float, sigma: float, alpha: float, max_terms: int = 1_000_000) -> float:
    """The same moment for fractional alpha.

    Split the real line at z0, where the two mixture components are equal. Below z0
    expand ((1-q) + q e^..)^alpha as a binomial series in powers of the second term,
    above z0 in powers of the first; each series term integrates in closed form against
    the N(0, s^2) density (completing the square leaves exp((j^2-j)/(2s^2)) times a
    normal tail probability). The binomial coefficients C(alpha, k) alternate in sign
    once k > alpha and the terms shrink, so the sums stop when both terms fall below e^-30.
    """
    z0 = sigma**2 * math.log(1 / q - 1) + 0.5
    log_q, log_1q = math.log(q), math.log1p(-q)
    pos: list[float] = []
    neg: list[float] = []
    log_binom, sign = 0.0, 1  # log |C(alpha, k)| and its sign, updated term by term
    for k in range(max_terms):
        m = alpha - k
        below = (
            log_binom
            + k * log_q
            + m * log_1q
            + (k * k - k) / (2 * sigma**2)
            + _log_ndtr((z0 - k) / sigma)
        )
        above = (
            log_binom
            + m * log_q
            + k * log_1q
            + (m * m - m) / (2 * sigma**2)
            + _log_ndtr((m - z0) / sigma)
        )
        (pos if sign > 0 else neg).extend((below, above))
        if k > alpha and max(below, above) < -30:
            break
        factor = (alpha - k) / (k + 1)  # C(alpha, k+1) = C(alpha, k) * (alpha-k)/(k+1)
        if factor == 0:  # integer alpha: the series is a finite sum
            break
        if factor < 0:
            sign = -sign
        log_binom += math.log(abs(factor))
    return _logsub(_logsumexp(pos), _logsumexp(neg))


def rdp_sampled_gaussian(q: float, noise_multiplier: float, order: float) -> float:
    """Renyi DP at `order` of one step of the Poisson-subsampled Gaussian mechanism."""
    if not 0 < q <= 1:
        raise ValueError(f"sampling rate q={q} must be in (0, 1]")
    if order <= 1:
        raise ValueError("Renyi orders must be > 1")
    if noise_multiplier <= 0:
        return math.inf
    if q == 1.0:
        return order / (2 * noise_multiplier**2)
    if float(order).is_integer():
        log_a = _log_a_integer(q, noise_multiplier, int(order))
    else:
        log_a = _log_a_fractional(q, noise_multiplier, order)
    return log_a / (order - 1)


def rdp_to_epsilon(
    rdp: Sequence[float], orders: Sequence[float], delta: float, conversion: str = "improved"
) -> tuple[float, float]:
    """(epsilon, best order) from RDP values at `orders`."""
    best, best_order = math.inf, math.nan
    for r, a in zip(rdp, orders, strict=True):
        if math.isinf(r):
            continue
        if conversion == "classic":
            eps = r + math.log(1 / delta) / (a - 1)
        elif conversion == "improved":
            eps = r + math.log1p(-1 / a) - (math.log(delta) + math.log(a)) / (a - 1)
        else:
            raise ValueError(f"conversion={conversion!r}: 'classic' or 'improved'")
        if eps < best:
            best, best_order = eps, a
    return max(best, 0.0), best_order


def rdp_epsilon(
    q: float,
    noise_multiplier: float,
    steps: int,
    delta: float,
    *,
    orders: Sequence[float] = DEFAULT_ORDERS,
    conversion: str = "improved",
) -> float:
    """epsilon at `delta` after `steps` compositions of the subsampled Gaussian mechanism."""
    if steps == 0:
        return 0.0
    rdp = [steps * rdp_sampled_gaussian(q, noise_multiplier, a) for a in orders]
    return rdp_to_epsilon(rdp, orders, delta, conversion)[0]


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
