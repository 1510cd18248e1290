"""Alignment losses: InfoNCE separates items, positive-only losses are satisfied by a collapsed space."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from onnx_models.heads import alignment_loss, soft_targets  # noqa: E402


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x, dim=-1)


def test_positive_only_losses_are_minimal_when_collapsed_but_infonce_is_not() -> None:
    collapsed = _unit(torch.ones(8, 16))
    aligned = _unit(torch.eye(8, 16))
    scale = torch.tensor(20.0)
    for kind in ("cosine", "mse"):
        assert alignment_loss(kind, collapsed, collapsed, scale).item() == pytest.approx(0.0, abs=1e-6)
    # InfoNCE: a collapsed space is at chance (log 8); distinct aligned items are far better
    assert alignment_loss("infonce", collapsed, collapsed, scale).item() == pytest.approx(torch.log(torch.tensor(8.0)).item(), rel=1e-4)
    assert alignment_loss("infonce", aligned, aligned, scale).item() < 0.01


def test_soft_targets_rows_sum_to_one_and_share_with_group() -> None:
    targets = soft_targets(torch.tensor([0, 0, 1, -1, -1]), 0.2)
    assert torch.allclose(targets.sum(1), torch.ones(5))
    assert targets[0, 1].item() == pytest.approx(0.2) and targets[0, 0].item() == pytest.approx(0.8)
    assert targets[2, 2].item() == 1.0  # no partner: hard target
    assert targets[3, 4].item() == 0.0  # unknown group (-1) never pairs


def test_unknown_loss_rejected() -> None:
    with pytest.raises(ValueError):
        alignment_loss("triplet", _unit(torch.ones(2, 4)), _unit(torch.ones(2, 4)), torch.tensor(1.0))
