"""Widening a trained network (tinct.models.widen): the wide network computes what the narrow one did, and its
new channels learn."""
import pytest
import torch

from tinct.errors import TinctError
from tinct.models import create_model
from tinct.models.widen import widened
from tinct.restore.network import RestoreConfig, RestoreNet


def _trained(net):
    """``net`` with nothing left at its initialisation (zero-initialised layers, attention's gamma, batch-norm
    statistics): what a trained file holds."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    net.train()
    return net


def test_a_widened_restorer_computes_what_the_narrow_one_did_and_its_new_channels_learn():
    torch.manual_seed(3)
    narrow = _trained(RestoreNet(RestoreConfig(base_channels=8, depth=3, tone_stage=True)))
    narrow(torch.rand(4, 1, 32, 32) * 100)  # batch-norm statistics of their own
    narrow.eval()
    wide = widened(narrow, 16).eval()
    assert wide.enc[0][0][0].weight.shape[0] == 16 and wide.dec[0][0][0].weight.shape[1] == 64 + 64
    x = torch.rand(2, 1, 40, 48) * 100
    with torch.no_grad():
        a, b = narrow(x), wide(x)
    for key in ("L", "mask_logits"):
        assert torch.allclose(a[key], b[key], atol=1e-4), key
    wide.train()
    out = wide(x)
    (out["L"].mean() + out["mask_logits"].mean()).backward()
    assert wide.head.weight.grad[:, 8:].abs().sum() > 0  # the head reads the new channels once trained
    with pytest.raises(TinctError):
        widened(wide, 8)


def test_a_widened_colorizer_with_attention_and_semantics_computes_what_the_narrow_one_did():
    torch.manual_seed(0)  # seeded: a few random networks saturate their attention and would hide a wrong query
    narrow = _trained(create_model("unet", base_channels=8, head="classification", num_bins=12, hint_channels=3,
                                   self_attention=True, semantic="efficientnet-lite0", semantic_deep_map=True,
                                   semantic_skips=True))
    x, hints = torch.rand(2, 1, 64, 80) * 100, torch.rand(2, 3, 64, 80)
    narrow(x, hints)
    narrow.eval()
    assert narrow.attention.gamma.abs().item() > 0  # the attention's query must be widened with care
    wide = widened(narrow, 12, seed=5).eval()
    assert wide.dec[0][0][0].weight.shape[1] == 96 + 48 and wide.head.weight.shape[1] == 12
    with torch.no_grad():
        a, b = narrow(x, hints), wide(x, hints)
    assert torch.allclose(a["logits"], b["logits"], atol=1e-4)
    assert torch.allclose(a["ab"], b["ab"], atol=1e-3)
    wide.train()
    wide(x, hints)["logits"].mean().backward()
    assert wide.head.weight.grad[:, 8:].abs().sum() > 0
    # the new query dimensions (64 -> 96 channels: 8 -> 12 rows; they start at zero) learn
    assert wide.attention.query.weight.grad[8:].abs().sum() > 0


def test_a_family_without_base_channels_cannot_be_widened():
    with pytest.raises(TinctError, match="cannot be widened"):
        widened(create_model("eccv16"), 64)
