"""Do the maps depend on the model at all? Model-parameter randomisation (Adebayo et al., 2018).

The classifier head is re-initialised, then the last block of the body as well (cascading,
top down); maps are recomputed on a sample and compared with the original maps by Spearman
rank correlation. A method whose maps barely change when the model is destroyed explains the
image, not the model: it fails.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from cam_core.evaluation.metrics import ratio_or_zero
from cam_core.methods.base import ExplanationMethod
from cam_core.methods.tokens import token_layout

__all__ = [
    "SANITY_THRESHOLD",
    "randomised_models",
    "randomization_spearman",
    "rank_correlation",
]

SANITY_THRESHOLD = 0.5
"""A method passes when its maps' median rank correlation after full randomisation is below."""


def _reset(module: nn.Module) -> None:
    for sub in module.modules():
        reset = getattr(sub, "reset_parameters", None)
        if callable(reset):
            reset()
        reset_stats = getattr(sub, "reset_running_stats", None)
        if callable(reset_stats):
            reset_stats()


def _head_and_last_block(net: nn.Module) -> tuple[nn.Module, nn.Module]:
    """The classifier head (the last linear layer) and the last parametrised block before it
    (a transformer's last block)."""
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the model has no linear classifier layer to randomise")
    layout = token_layout(net)
    if layout is not None:
        return linears[-1], net.get_submodule(layout.block(-1))
    body = getattr(net, "body", None)
    blocks = [c for c in (body or net).children() if any(True for _ in c.parameters())]
    blocks = [b for b in blocks if b is not linears[-1] and linears[-1] not in b.modules()]
    if not blocks:
        raise ValueError("the model has no block before its classifier to randomise")
    return linears[-1], blocks[-1]


def randomised_models(net: nn.Module, seed: int = 0) -> Iterator[tuple[str, nn.Module]]:
    """Cascading randomised copies of ``net`` (the original is untouched).

    Yields:
        ``("head", copy)`` with the classifier re-initialised, then ``("head+last block",
        copy)`` with the last body block re-initialised as well.
    """
    torch.manual_seed(seed)
    randomised = copy.deepcopy(net).eval()
    head, block = _head_and_last_block(randomised)
    _reset(head)
    yield "head", randomised
    _reset(block)
    yield "head+last block", randomised


def rank_correlation(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each pair of maps.

    Args:
        first, second: ``(N, h, w)``.

    Returns:
        ``(N,)`` in -1..1; 0 where a map is constant (no ranking to compare).
    """
    a = rankdata(first.reshape(len(first), -1), axis=1)
    b = rankdata(second.reshape(len(second), -1), axis=1)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return ratio_or_zero((a * b).sum(axis=1), denominator)


def randomization_spearman(
    method: ExplanationMethod,
    net: nn.Module,
    images: torch.Tensor,
    maps: np.ndarray,
    targets: np.ndarray,
    layer: str,
    seed: int = 0,
) -> dict[str, float]:
    """Median rank correlation of ``method``'s maps before and after each randomisation.

    Args:
        method: the method that made ``maps``.
        net: the trained classifier.
        images: normalised sample ``(n, 3, S, S)``.
        maps: the original maps of the target classes ``(n, h, w)``.
        targets: ``(n,)`` class of each map.
        layer: the layer the method reads.
        seed: seeds the re-initialisation.

    Returns:
        ``{stage: median Spearman}`` for ``head`` and ``head+last block``.
    """
    result: dict[str, float] = {}
    own_class = torch.as_tensor(np.asarray(targets), dtype=torch.int64)[:, None]
    for stage, randomised in randomised_models(net, seed):
        after = method.explain(randomised, images, layer, own_class).numpy()[:, 0]
        result[stage] = float(np.median(rank_correlation(maps, after)))
    return result
