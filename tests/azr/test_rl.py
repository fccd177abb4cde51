"""RL math against hand-computed numbers."""

from __future__ import annotations

import math

import pytest
import torch

from azr.rl import (
    RewardScheme,
    aggregate,
    kl_k3,
    learnability,
    learnability_from_counts,
    ppo_clip_loss,
    task_relative_advantages,
)

# --- learnability and rewards -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "expected"),
    [([False] * 8, 0.0), ([True] * 3 + [False] * 5, 0.625), ([True] * 8, 0.0), ([True] + [False] * 7, 0.875)],
)
def test_learnability(successes, expected):
    assert learnability(successes) == pytest.approx(expected)
    assert learnability_from_counts(sum(successes), len(successes)) == pytest.approx(expected)


@pytest.mark.parametrize(("successes", "attempts"), [(0, 0), (9, 8), (-1, 8)])
def test_learnability_rejects_bad_counts(successes, attempts):
    with pytest.raises(ValueError, match="learnability"):
        learnability_from_counts(successes, attempts)
    with pytest.raises(ValueError, match="learnability"):
        RewardScheme().proposer("valid", successes, attempts)


def test_proposer_reward_paper_and_official_extremes():
    paper = RewardScheme()
    assert paper.proposer("format_error") == -1.0
    assert paper.proposer("invalid") == -0.5
    assert paper.proposer("valid", 3, 8) == pytest.approx(0.625)
    assert paper.proposer("valid", 0, 8) == 0.0
    assert paper.proposer("valid", 8, 8) == 0.0
    official = RewardScheme(extreme_solve_rate_reward=-0.5)
    assert official.proposer("valid", 0, 8) == -0.5
    assert official.proposer("valid", 8, 8) == -0.5
    assert official.proposer("valid", 7, 8) == pytest.approx(0.125)
    with pytest.raises(ValueError, match="attempts > 0"):
        paper.proposer("valid")
    with pytest.raises(ValueError, match="unknown outcome 'ok'"):
        paper.proposer("ok")  # type: ignore[arg-type]


def test_solver_reward_values_are_configurable():
    default = RewardScheme()
    assert [default.solver(o) for o in ("correct", "wrong", "format_error")] == [1.0, -0.5, -1.0]
    custom = RewardScheme(solver_correct=2.0, solver_wrong=0.0, solver_format_error=-3.0)
    assert [custom.solver(o) for o in ("correct", "wrong", "format_error")] == [2.0, 0.0, -3.0]
    with pytest.raises(ValueError, match="unknown outcome"):
        default.solver("right")  # type: ignore[arg-type]


# --- TRR++ advantages -----------------------------------------------------------------------------------

# Interleaved on purpose: grouping is by label, not by position.
REWARDS = [1.0, 0.625, 1.0, 0.0, -0.5, 0.0, -0.5, -0.5, -1.0]
GROUPS = [
    ("deduction", "solve"),  # A
    ("abduction", "propose"),  # B: single sample
    ("induction", "solve"),  # D
    ("deduction", "solve"),  # A
    ("induction", "propose"),  # C: zero spread
    ("deduction", "solve"),  # A
    ("induction", "propose"),  # C
    ("induction", "solve"),  # D
    ("deduction", "solve"),  # A
]


def test_trr_unbiased_std():
    # A = [1, 0, 0, -1]: mean 0, unbiased var 2/3 -> std 0.8165; D = [1, -0.5]: mean 0.25, std 1.06066.
    adv = task_relative_advantages(REWARDS, GROUPS, eps=0.0)
    a, d = 1 / math.sqrt(2 / 3), 0.75 / math.sqrt(2 * 0.75**2)
    expected = [a, 0.0, d, 0.0, 0.0, 0.0, 0.0, -d, -a]
    assert adv.tolist() == pytest.approx(expected, abs=1e-6)
    assert adv.dtype == torch.float32


def test_trr_population_std_and_clip():
    # A: population std sqrt(0.5) -> +-1.41421; D: population std 0.75 -> +-1.
    adv = task_relative_advantages(REWARDS, GROUPS, eps=0.0, std="population")
    expected = [math.sqrt(2), 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0, -math.sqrt(2)]
    assert adv.tolist() == pytest.approx(expected, abs=1e-6)
    clipped = task_relative_advantages(REWARDS, GROUPS, eps=0.0, std="population", clip=1.2)
    assert clipped.tolist() == pytest.approx([1.2, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0, -1.2], abs=1e-6)


def test_trr_eps_and_errors():
    adv = task_relative_advantages([1.0, -1.0], ["g", "g"], eps=1.0, std="population")
    assert adv.tolist() == pytest.approx([0.5, -0.5])
    # Equal rewards that are not exactly representable still give exactly 0.
    assert task_relative_advantages([0.1] * 3, ["g"] * 3).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="3 rewards but 2 group labels"):
        task_relative_advantages([1.0, 2.0, 3.0], ["a", "b"])
    with pytest.raises(ValueError, match="std must be"):
        task_relative_advantages([1.0], ["a"], std="sample")  # type: ignore[arg-type]


# --- PPO clip loss ----------------------------------------------------------------------------------------
# Sequence A (advantage +1): old [-1, -2], new [-1, -1.5] -> ratio [1, e^0.5 = 1.6487]; padded to 3.
# Sequence B (advantage -2): ratio [0.5, 1, 0.9].
# eps 0.2: token losses A [-1, -1.2 (clipped)], B [max(1.0, 1.6) = 1.6 (clipped), 2, 1.8].


def _batch():
    old = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, -0.5, -0.5]])
    delta = torch.tensor([[0.0, 0.5, 0.0], [math.log(0.5), 0.0, math.log(0.9)]])
    new = (old + delta).requires_grad_(True)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    adv = torch.tensor([1.0, -2.0])
    return new, old, adv, mask


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        ("token-mean", 3.2 / 5),
        ("seq-mean-token-mean", (-2.2 / 2 + 5.4 / 3) / 2),
        ("seq-mean-token-sum", (-2.2 + 5.4) / 2),
        ("seq-mean-token-sum-norm", 3.2 / 6),
    ],
)
def test_ppo_loss_aggregations(aggregation, expected):
    new, old, adv, mask = _batch()
    out = ppo_clip_loss(new, old, adv, mask, aggregation=aggregation)
    assert out.loss.item() == pytest.approx(expected, abs=1e-6)
    assert out.stats["pg_loss"] == pytest.approx(expected, abs=1e-6)


def test_ppo_loss_stats_and_gradient():
    new, old, adv, mask = _batch()
    out = ppo_clip_loss(new, old, adv, mask)
    assert out.stats["clip_frac"] == pytest.approx(2 / 5)
    assert out.stats["ratio_mean"] == pytest.approx((1 + math.exp(0.5) + 0.5 + 1 + 0.9) / 5, abs=1e-6)
    assert out.stats["ratio_max"] == pytest.approx(math.exp(0.5), abs=1e-6)
    k3 = [0.0, math.exp(-0.5) + 0.5 - 1, 2 - math.log(2) - 1, 0.0, 1 / 0.9 + math.log(0.9) - 1]
    assert out.stats["approx_kl"] == pytest.approx(sum(k3) / 5, abs=1e-6)
    assert "kl_ref" not in out.stats and "entropy" not in out.stats
    out.loss.backward()
    # d/dlogp of -A*ratio is -A*ratio / 5 where unclipped; 0 where the clipped branch is active or padded.
    expected_grad = [[-1 / 5, 0.0, 0.0], [0.0, 2 / 5, 2 * 0.9 / 5]]
    torch.testing.assert_close(new.grad, torch.tensor(expected_grad), atol=1e-6, rtol=0)


def test_ppo_clip_higher_and_dual_clip():
    new, old, adv, mask = _batch()
    out = ppo_clip_loss(new, old, adv, mask, clip_eps_low=0.2, clip_eps_high=0.28)
    assert out.loss.item() == pytest.approx((-1 - 1.28 + 5.4) / 5, abs=1e-6)
    # ratio 4: A = -1 -> max(4, 1.2) = 4, dual clip caps at 3; A = +1 -> max(-4, -1.2) = -1.2, untouched.
    old1 = torch.zeros(2, 1)
    new1 = torch.full((2, 1), math.log(4.0))
    mask1 = torch.ones(2, 1)
    for a, plain, dual in [(-1.0, 4.0, 3.0), (1.0, -1.2, -1.2)]:
        adv1 = torch.tensor([a, a])
        assert ppo_clip_loss(new1, old1, adv1, mask1).loss.item() == pytest.approx(plain)
        assert ppo_clip_loss(new1, old1, adv1, mask1, dual_clip=3.0).loss.item() == pytest.approx(dual)


def test_micro_batches_add_up_with_a_global_denominator():
    new, old, adv, mask = _batch()
    for aggregation, denom in [
        ("token-mean", 5.0),
        ("seq-mean-token-mean", 2.0),
        ("seq-mean-token-sum", 2.0),
    ]:
        full = ppo_clip_loss(new, old, adv, mask, aggregation=aggregation).loss.item()
        parts = sum(
            ppo_clip_loss(
                new[i : i + 1],
                old[i : i + 1],
                adv[i : i + 1],
                mask[i : i + 1],
                aggregation=aggregation,
                denominator=denom,
            ).loss.item()
            for i in range(2)
        )
        assert parts == pytest.approx(full, abs=1e-6)


def test_kl_to_reference_and_entropy_bonus():
    new = torch.tensor([[-1.0, -2.0]])
    ref = torch.tensor([[-1.5, -2.0]])
    mask = torch.tensor([[1.0, 0.0]])
    zero_adv = torch.zeros(1)
    expected_kl = math.exp(-0.5) + 0.5 - 1
    assert kl_k3(new, ref)[0, 0].item() == pytest.approx(expected_kl)
    out = ppo_clip_loss(new, new, zero_adv, mask, logp_ref=ref, kl_coef=0.1)
    assert out.stats["kl_ref"] == pytest.approx(expected_kl, abs=1e-6)
    assert out.loss.item() == pytest.approx(0.1 * expected_kl, abs=1e-6)
    off = ppo_clip_loss(new, new, zero_adv, mask, logp_ref=ref)  # logged, not added, by default
    assert off.loss.item() == 0.0 and off.stats["kl_ref"] == pytest.approx(expected_kl, abs=1e-6)
    entropy = torch.tensor([[2.0, 9.0]])
    out = ppo_clip_loss(new, new, zero_adv, mask, entropy=entropy, entropy_coef=0.01)
    assert out.stats["entropy"] == pytest.approx(2.0)
    assert out.loss.item() == pytest.approx(-0.02)


def test_loss_argument_errors():
    new, old, adv, mask = _batch()
    with pytest.raises(ValueError, match="needs logp_ref"):
        ppo_clip_loss(new, old, adv, mask, kl_coef=0.1)
    with pytest.raises(ValueError, match="needs per-token entropy"):
        ppo_clip_loss(new, old, adv, mask, entropy_coef=0.1)
    with pytest.raises(ValueError, match="dual_clip must be > 1"):
        ppo_clip_loss(new, old, adv, mask, dual_clip=0.5)
    with pytest.raises(ValueError, match="clip_eps_low"):
        ppo_clip_loss(new, old, adv, mask, clip_eps_low=3.0)
    with pytest.raises(ValueError, match="unknown mode 'sum'"):
        aggregate(new, mask, "sum")  # type: ignore[arg-type]
