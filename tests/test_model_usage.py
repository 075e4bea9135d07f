"""What users do with a model every day works: copies, whole-module saves, weight averaging,
weights changed by any route, several models in one process."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch.optim.swa_utils import AveragedModel

from model_helpers import clip, randomize, small_model
from stsanet.metrics.loss import kl_cc_loss


@pytest.fixture(scope="module")
def model():
    return randomize(small_model(seed=1), 2)


def _predict(net, x):
    with torch.no_grad():
        return net.eval()(x)


def test_copy_save_and_average_after_inference(model):
    x = clip(seed=3)
    before = _predict(model, x)
    twin = copy.deepcopy(model)
    torch.testing.assert_close(_predict(twin, x), before, rtol=0, atol=0)
    buffer = io.BytesIO()
    torch.save(model, buffer)  # the whole module, as EMA/SWA users and quick scripts do
    assert buffer.tell() > 4 * sum(p.numel() for p in model.parameters())
    averaged = AveragedModel(model)
    averaged.update_parameters(twin)
    torch.testing.assert_close(_predict(averaged, x), before, rtol=0, atol=0)


def test_weights_changed_by_any_route_change_the_next_output(model):
    x = clip(seed=4)
    net = copy.deepcopy(model)
    first = _predict(net, x)
    readout = net.decoder.readout.temporal[-2]
    readout.bias.data += 1.0  # in place, behind autograd's back
    second = _predict(net, x)
    assert (second - first).abs().min() > 1e-4

    net.load_state_dict(model.state_dict())
    torch.testing.assert_close(_predict(net, x), first, rtol=0, atol=0)

    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2, fused=True)
    net.train()
    kl_cc_loss(net(x), torch.rand(1, *x.shape[-2:])).backward()
    optimizer.step()  # the fused kernel writes the weights in place
    assert (_predict(net, x) - first).abs().max() > 1e-3


def test_two_models_in_one_process_do_not_share_state(model):
    x = clip(seed=5)
    other = randomize(small_model(seed=8), 9)
    first = _predict(model, x)
    other_out = _predict(other, x)
    assert (other_out - first).abs().max() > 1e-3
    torch.testing.assert_close(_predict(model, x), first, rtol=0, atol=0)
