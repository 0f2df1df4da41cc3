"""Estimators of log Z = log ∫ N(θ; μ, σ²I) e^{−E(θ)} dθ over parameter pytrees.

`estimate` is the one entry point (naive MC, tempered SMC from the prior or from the Laplace
approximation, AIS, reverse AIS / BDMC, thermodynamic integration, Laplace, nested sampling);
`tracking` follows log Z(θ₁) as θ₁ moves.
"""

from lprior.logz.api import METHODS, estimate, geometric_schedule
from lprior.logz.laplace import laplace
from lprior.logz.result import LogZResult

__all__ = ["METHODS", "LogZResult", "estimate", "geometric_schedule", "laplace"]
