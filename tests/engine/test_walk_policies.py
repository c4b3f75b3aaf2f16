"""The walk policies' parts (engine/policies/walk.py): tangent projection, rank, random streams,
and the bookkeeping of every proposal (accepted, or rejected for exactly one reason)."""

from __future__ import annotations

import pytest
import torch

import fiberscope as fs
from fiberscope.engine.policies.walk import Noise, chain_seed, numerical_rank, project_tangent


def test_project_tangent_is_the_projection_onto_the_kernel() -> None:
    gen = torch.Generator().manual_seed(0)
    jac = torch.randn(4, 2, 6, generator=gen, dtype=torch.float64)
    z = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    t = project_tangent(jac, z)
    assert float((jac @ t.unsqueeze(-1)).abs().max()) < 1e-13  # in ker J
    torch.testing.assert_close(project_tangent(jac, t), t, rtol=0, atol=1e-13)  # idempotent
    assert float(((z - t).unsqueeze(-2) @ t.unsqueeze(-1)).abs().max()) < 1e-13  # orthogonal
    free = torch.ones(4, 6, dtype=torch.bool)
    free[:, 1] = False
    tf = project_tangent(jac, z, free)
    assert float(tf[:, 1].abs().max()) == 0.0  # a held coordinate does not move
    assert float((jac @ tf.unsqueeze(-1)).abs().max()) < 1e-13
    zero = torch.zeros(4, 2, 6, dtype=torch.float64)  # a dead region: every direction is free
    torch.testing.assert_close(project_tangent(zero, z), z)


def test_numerical_rank() -> None:
    gen = torch.Generator().manual_seed(1)
    full = torch.randn(3, 6, generator=gen, dtype=torch.float64)
    low = torch.stack([full[0], 2 * full[0], full[1]])
    jac = torch.stack([full, low, torch.zeros(3, 6, dtype=torch.float64)])
    assert numerical_rank(jac).tolist() == [3, 2, 0]


def test_random_streams_depend_on_the_chain_and_step_only() -> None:
    noise = Noise()
    seeds = torch.tensor([chain_seed(5, i) for i in range(4)])
    ks = torch.tensor([0, 3, 3, 7])
    like = torch.zeros(1, dtype=torch.float64)
    batch = noise.normal(seeds, ks, 5, like)
    for i in range(4):  # alone, or in another order: the same numbers
        torch.testing.assert_close(
            noise.normal(seeds[i : i + 1], ks[i : i + 1], 5, like)[0], batch[i]
        )
    flipped = noise.normal(seeds.flip(0), ks.flip(0), 5, like)
    torch.testing.assert_close(flipped.flip(0), batch)
    assert len({chain_seed(5, i) for i in range(1000)}) == 1000
    assert chain_seed(5, 3) == chain_seed(5, 3) != chain_seed(6, 3)


def sphere(x: torch.Tensor) -> torch.Tensor:
    return (x**2).sum(-1, keepdim=True)


@pytest.mark.parametrize(
    ("step", "bounds", "reason"),
    [(1.2, None, "projection"), (0.4, ([-2.0, -2.0, -0.3], [2.0, 2.0, 0.3]), "box")],
)
def test_every_uniform_proposal_is_accepted_or_rejected_for_one_reason(
    step, bounds, reason
) -> None:
    """A step larger than the sphere's radius often cannot be projected back; a thin slab
    rejects proposals outside it. Each iteration is counted exactly once."""
    res = fs.walk(
        sphere,
        [0.0, 1.0, 0.0],
        samples=40,
        chains=3,
        step=step,
        seed=2,
        method="uniform",
        bounds=bounds,
    )
    for c in range(3):
        total = res.accepted[c] + sum(v[c] for v in res.rejections.values())
        assert total == 40
    assert sum(res.rejections[reason]) > 0
    pts = res.flat()[0]
    if bounds is not None:
        assert float(pts[:, 2].abs().max()) <= 0.3
    # a rejected proposal keeps the chain where it was: repeated samples
    moves = (res.samples[:, 1:] - res.samples[:, :-1]).norm(dim=-1)
    assert int((moves == 0).sum()) >= sum(sum(v) for v in res.rejections.values()) - 3
