"""CLUB (Cheng et al., ICML 2020): a variational upper bound on I(x; y), with its own optimiser.

q(y | x) = N(mu(x), diag exp(logvar(x))). fit() maximises log q on DETACHED pairs for a few inner steps
with its own Adam (as Uni-Code does, 5 steps at lr 1e-3 per batch); forward() returns the bound

    E_{p(x, y)}[log q(y | x)] - E_{p(x)} E_{p(y)}[log q(y | x)]

(the second mean over all pairs of the batch, in closed form), which the main loss minimises.
For jointly Gaussian x, y with correlation rho per dimension and the exact conditional, the bound is
rho^2 / (1 - rho^2) per dimension, above the true -0.5 * log(1 - rho^2): an upper bound, not an estimate.

The q-network is the authors' (haihuangcode/CMG, CLUB.py `CLUBSample_group`, read, not copied): mu and
logvar each an MLP of 4 linear layers, hidden // 2 units wide with ReLU between (hidden = 256 in their
pretraining: 128 units), logvar ending in tanh. Departures: the bound is the CLUB paper's over every pair
of rows (here: steps) in closed form; the authors' `mi_est` averages each sequence over its steps and
takes one random permutation of the sequences as negatives (a sampled, noisier estimate of the same
quantity), and they run the networks in float64.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor


def q_network(x_dim: int, y_dim: int, width: int) -> nn.Sequential:
    """4 linear layers x_dim -> width -> width -> width -> y_dim with ReLU between (the authors' p_mu)."""
    return nn.Sequential(nn.Linear(x_dim, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, width), nn.ReLU(), nn.Linear(width, y_dim))


class CLUB(nn.Module):
    def __init__(self, x_dim: int, y_dim: int, hidden: int = 256, lr: float = 1e-3):
        super().__init__()
        if min(x_dim, y_dim) <= 0 or hidden < 2:
            raise ValueError(f"CLUB dimensions must be positive and hidden >= 2 (layers are hidden // 2 wide), got "
                             f"x_dim={x_dim}, y_dim={y_dim}, hidden={hidden}")
        self.mu = q_network(x_dim, y_dim, hidden // 2)
        self.logvar = nn.Sequential(*q_network(x_dim, y_dim, hidden // 2), nn.Tanh())
        self.lr = lr
        self._opt: torch.optim.Optimizer | None = None

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        if self._opt is None:  # built on first use, after the module has moved to its device
            self._opt = torch.optim.Adam(self.parameters(), lr=self.lr)
        return self._opt

    def log_likelihood(self, x: Tensor, y: Tensor) -> Tensor:
        """Mean Gaussian log q(y | x) up to a constant. x (M, x_dim), y (M, y_dim) -> scalar."""
        mu, logvar = self.mu(x), self.logvar(x)
        return (-(mu - y) ** 2 / logvar.exp() - logvar).sum(1).mean() / 2

    def fit(self, x: Tensor, y: Tensor, steps: int) -> float:
        """`steps` Adam steps maximising log q(y | x) on detached x, y; returns the last log-likelihood."""
        x, y = x.detach(), y.detach()
        ll = torch.zeros(())
        for _ in range(steps):
            self.optimizer.zero_grad(set_to_none=True)
            ll = self.log_likelihood(x, y)
            (-ll).backward()
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(ll.detach())

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """The CLUB bound on I(x; y) for a batch (differentiable in x and y). x (M, x_dim), y (M, y_dim)."""
        mu, var = self.mu(x), self.logvar(x).exp()
        positive = (-(mu - y) ** 2 / var).sum(1) / 2  # (M,)
        # mean over j of (y_j - mu_i)^2 = E[y^2] - 2 mu_i E[y] + mu_i^2
        y_mean, y_sq = y.mean(0, keepdim=True), (y * y).mean(0, keepdim=True)
        negative = (-(y_sq - 2 * mu * y_mean + mu * mu) / var).sum(1) / 2
        return (positive - negative).mean()
