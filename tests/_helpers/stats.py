"""Tolerances of the statistical assertions (TESTING.md: 4 sigma)."""


def four_sigma(p: float, n: int) -> float:
    """4 standard deviations of the kept fraction of n Bernoulli(1-p) draws."""
    return 4 * (p * (1 - p) / n) ** 0.5
