"""CLUB tracks the mutual information of correlated Gaussians (an upper bound, tight to its analytic value)."""
import math

import pytest
import torch

from workbench.methods.codebook import CLUB

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: see conftest


def _pairs(rho: float, n: int, d: int, gen: torch.Generator):
    x = torch.randn(n, d, generator=gen)
    y = rho * x + math.sqrt(1 - rho * rho) * torch.randn(n, d, generator=gen)
    return x, y


def test_club_estimate_tracks_the_mutual_information_of_correlated_gaussians():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    d, estimates = 2, []
    for rho in (0.0, 0.4, 0.7):
        club = CLUB(d, d, hidden=32, lr=1e-2)
        x, y = _pairs(rho, 3000, d, gen)
        club.fit(x, y, steps=300)
        xt, yt = _pairs(rho, 3000, d, gen)  # a fresh sample
        with torch.no_grad():
            est = float(club(xt, yt))
        true_mi = -0.5 * d * math.log(1 - rho * rho)
        bound = d * rho * rho / (1 - rho * rho)  # CLUB's value with the exact conditional
        assert est >= true_mi - 0.05, (rho, est, true_mi)  # an upper bound (up to sampling error)
        assert abs(est - bound) <= 0.1 * bound + 0.05, (rho, est, bound)
        estimates.append(est)
    assert estimates == sorted(estimates), estimates  # grows with the dependence


def test_club_inner_steps_leave_its_inputs_without_gradients_and_the_bound_differentiable():
    club = CLUB(3, 3, hidden=8)
    x = torch.randn(16, 3, requires_grad=True)
    y = torch.randn(16, 3)
    club.fit(x, y, steps=2)
    assert x.grad is None
    club(x, y).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
