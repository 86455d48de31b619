"""Attention rollout (Abnar & Zuidema, 2020): the product of residual-mixed attention."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import nn
from torchvision import models as tv_models

from cam_core.errors import MethodError
from cam_core.methods import get_method
from cam_core.methods.rollout import attention_rollout, rollout_maps
from cam_core.methods.tokens import token_layout
from cam_core.modelling.architectures import to_classifier
from cam_core.modelling.models import CamNet, build_body
from tests.test_tokens import small_vit


def test_rows_sum_to_one_and_the_identity_mix_is_as_the_paper_defines() -> None:
    first = torch.tensor([[[0.5, 0.5], [0.0, 1.0]]])
    second = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    # Each block: 0.5 A + 0.5 I, rows renormalised; the product runs from the last block down.
    a1 = torch.tensor([[0.75, 0.25], [0.0, 1.0]])
    a2 = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    torch.testing.assert_close(attention_rollout([first, second])[0], a2 @ a1)
    torch.testing.assert_close(attention_rollout([first])[0], a1)
    heads = torch.softmax(torch.randn(3, 4, 6, 6), dim=-1)  # (N, H, T, T): heads averaged
    rolled = attention_rollout([heads, heads.flip(1), heads.transpose(2, 3).softmax(-1)])
    assert rolled.shape == (3, 6, 6)
    torch.testing.assert_close(rolled.sum(dim=-1), torch.ones(3, 6))
    torch.testing.assert_close(attention_rollout([heads])[0], (heads.mean(1)[0] + torch.eye(6)) / 2)
    with pytest.raises(MethodError, match="at least one attention matrix"):
        attention_rollout([])


def _hand_rollout(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Rollout from attention weights asked of each block's attention by hand."""
    with torch.no_grad():
        tokens = model._process_input(x)
        tokens = torch.cat([model.class_token.expand(len(x), -1, -1), tokens], dim=1)
        tokens = tokens + model.encoder.pos_embedding
        weights = []
        for block in model.encoder.layers:
            normed = block.ln_1(tokens)
            out, attention = block.self_attention(
                normed, normed, normed, need_weights=True, average_attn_weights=False
            )
            weights.append(attention)
            tokens = tokens + out
            tokens = tokens + block.mlp(block.ln_2(tokens))
    flow = attention_rollout(weights)[:, 0, 1:].reshape(len(x), 4, 4)
    low = flow.flatten(1).min(1).values[:, None, None]
    high = flow.flatten(1).max(1).values[:, None, None]
    return (flow - low) / (high - low)


def test_the_map_is_the_class_token_row_over_the_patch_grid() -> None:
    model = small_vit(layers=3, seed=2)
    net, _ = to_classifier(model, check_size=64)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    maps = rollout_maps(net, x)
    assert maps.shape == (2, 4, 4) and maps.dtype == torch.float32
    torch.testing.assert_close(maps, _hand_rollout(model, x), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(maps[0], maps[1])  # depends on the image
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in net.modules()) == 0


def test_every_class_gets_the_same_map_and_the_method_says_so() -> None:
    net, _ = to_classifier(small_vit(seed=3), check_size=64)
    method = get_method("rollout")
    assert method.class_agnostic and method.applies_to(net) is None
    x = torch.randn(3, 3, 64, 64)
    every = method.explain(net, x, "anything")
    assert every.shape == (3, 3, 4, 4) and not every.requires_grad  # no graph is built
    with torch.inference_mode():  # as the analysis calls it
        torch.testing.assert_close(method.explain(net, x, "anything"), every)
    torch.testing.assert_close(every[:, 0], every[:, 2])
    budget = method.explain(net, x, "anything", torch.tensor([[2, 0], [1, 2], [0, 1]]))
    assert budget.shape == (3, 2, 4, 4)
    torch.testing.assert_close(budget[:, 1], every[:, 0])
    record = method.record(net, "body", "fp32", 0.1, (3, 2, 4, 4), "maps/rollout.npy")
    assert record.class_agnostic and record.placement == "patches"
    assert record.layer == "attention of every block"


def test_timm_attention_is_read_and_its_fused_kernel_put_back() -> None:
    timm = pytest.importorskip("timm")
    model = timm.create_model(
        "deit_tiny_distilled_patch16_224", pretrained=False, num_classes=2, img_size=64
    ).eval()
    net, _ = to_classifier(model, check_size=64)
    fused = [block.attn.fused_attn for block in model.blocks]
    x = torch.randn(2, 3, 64, 64)
    maps = rollout_maps(net, x)
    assert maps.shape == (2, 4, 4)  # 18 tokens: class and distillation tokens dropped
    assert float(maps.amax()) == pytest.approx(1.0) and float(maps.amin()) == pytest.approx(0.0)
    assert [block.attn.fused_attn for block in model.blocks] == fused
    with torch.no_grad():
        torch.testing.assert_close(net(x), model(x))  # the model still gives its logits


def test_other_threads_passes_are_not_recorded() -> None:
    """A dashboard shares one model between sessions: another thread's forward pass during a
    rollout must not add its attention matrices to the rollout's."""
    net, _ = to_classifier(small_vit(layers=2, seed=4), check_size=64)
    x = torch.randn(1, 3, 64, 64)
    expected = rollout_maps(net, x)
    block = net.get_submodule(token_layout(net).blocks[0])
    other_ran = threading.Event()
    others: list[torch.Tensor] = []

    def other_session_runs(*_args: object) -> None:
        if other_ran.is_set():
            return
        other_ran.set()  # mid-rollout, another session runs the same model on its images
        other = threading.Thread(target=lambda: others.append(net(torch.randn(4, 3, 64, 64))))
        other.start()
        other.join(30)

    handle = block.register_forward_pre_hook(other_session_runs)
    try:
        maps = rollout_maps(net, x)
    finally:
        handle.remove()
    assert other_ran.is_set() and others[0].shape == (4, 3)  # its pass went through untouched
    torch.testing.assert_close(maps, expected)


def test_rollout_applies_to_global_attention_with_a_class_token_only() -> None:
    method = get_method("rollout")
    cnn = CamNet(build_body("democnn2"), 2)
    assert "vision transformer" in (method.applies_to(cnn) or "")
    swin, _ = to_classifier(tv_models.swin_t(weights=None, num_classes=2), check_size=64)
    assert "Swin attends within windows" in (method.applies_to(swin) or "")
    with pytest.raises(MethodError, match="attention rollout does not apply"):
        rollout_maps(cnn, torch.zeros(1, 3, 32, 32))
    assert np.isfinite(method.explain(*_vit_and_images()).numpy()).all()


def _vit_and_images() -> tuple[nn.Module, torch.Tensor, str]:
    net, _ = to_classifier(small_vit(seed=5), check_size=64)
    return net, torch.randn(2, 3, 64, 64), "body"
