"""The fast formulation of STSANet: same parameters, same numbers, less time.

`STSANet(fast=False)` runs the model exactly as SPEC section 3 reads (one attention call per
pair, one conv per embedding); it is the oracle the fast path is tested against. The fast path
changes only how the same arithmetic is scheduled:

* in inference every STSA layer embeds all its time slots at once: the slots are stacked on the
  channel axis and each embedding stage is one grouped conv (q and k of a slot read the same
  input, so their 1x1x1 convs become one conv and their 1x3x3 convs one grouped conv); exact in
  math, only the float summation order of the convs may differ;
* all attention calls of a layer are one batched `scaled_dot_product_attention` with scale 1.0
  (the official attention is unscaled); the pairing (queries of slot b against keys/values of
  slot a and vice versa) is a permutation of the query slots;
* in inference everything after the pool-sensitive region (`pool_sensitive_modules`) runs
  channels-last 3D: convs always through oneDNN (`OneDNNConv3d`), eval BatchNorms folded into
  the backbone convs, max-pools and trilinear upsampling in their (much faster) channels-last
  kernels;
* every max-pool, also in training and in the pool-sensitive region, runs in the channels-last
  kernel (exact; the channels-first CPU max-pool alone was a fifth of a paper-size forward).
Under autograd (training) the model otherwise computes exactly the reference formulation: the
channels-last convs/BatchNorms and the batched STSA cost more in backward than they saved.

The module tree and state_dict are untouched, so weights load into either formulation.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.utils import _triple

CHANNELS_LAST = torch.channels_last_3d


def stacked_embedding_weights(layer: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Weights/biases of one STSA layer's embeddings as grouped convs over the stacked slots.

    Group order: qk1 = [q_0, k_0, q_1, k_1, ...] (1x1x1), qk2 = same order (1x3x3, one group per
    q or k), v1 / v2 = [v_0, v_1, ...]. For inference only (detached); cached while no parameter
    changed (storage and version counter).
    """
    params = [p for e in layer.embed for p in e.parameters()]
    key = tuple((p.data_ptr(), p._version) for p in params)
    cache = getattr(layer, "_stacked_cache", None)
    if cache is not None and cache[0] == key:
        return cache[1]

    def cat(pick):
        return (torch.cat([pick(e).weight for e in layer.embed]),
                torch.cat([pick(e).bias for e in layer.embed]))

    def cat_qk(index):
        pairs = [(e.q[index], e.k[index]) for e in layer.embed]
        return (torch.cat([t for q, k in pairs for t in (q.weight, k.weight)]),
                torch.cat([t for q, k in pairs for t in (q.bias, k.bias)]))

    weights = {"qk1": cat_qk(0), "qk2": cat_qk(2), "v1": cat(lambda e: e.v[0]),
               "v2": cat(lambda e: e.v[2])}
    # channels-last like the stacked input: oneDNN would otherwise reorder them on every call
    weights = {k: (w.detach().contiguous(memory_format=CHANNELS_LAST), b.detach())
               for k, (w, b) in weights.items()}
    layer._stacked_cache = (key, weights)
    return weights


def fast_attend(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`STSALayer.attend` of SPEC 3.4 with the slots embedded and attended in one go each."""
    slots = 2 * layer.pairs
    b, c, t, h, w = x.shape
    ts, n = t // slots, (t // slots) * h * w
    training = torch.is_grad_enabled() and any(p.requires_grad for p in layer.parameters())
    if training:
        # stacked weights would be a second copy of every embedding weight (and of its
        # gradient) held through backward: per-slot convs keep the peak memory of the reference
        parts = [(e.q(s), e.k(s), e.v(s)) for e, s in zip(layer.embed, x.chunk(slots, dim=2))]
        query = torch.stack([q.reshape(b, -1, n) for q, _, _ in parts], dim=1)
        key = torch.stack([k.reshape(b, -1, n) for _, k, _ in parts], dim=1)
        v = torch.stack([v.reshape(b, c, n) for _, _, v in parts], dim=1)
    else:
        # B x C x (S*Ts) x H x W -> B x (S*C) x Ts x H x W: slot s owns channel group s
        stacked = (x.reshape(b, c, slots, ts, h, w).transpose(1, 2)
                   .reshape(b, slots * c, ts, h, w).contiguous(memory_format=CHANNELS_LAST))
        wts = stacked_embedding_weights(layer)
        d = wts["qk1"][0].shape[0] // (2 * slots)
        qk = F.relu_(F.conv3d(stacked, *wts["qk1"], groups=slots))
        qk = F.relu_(F.conv3d(qk, *wts["qk2"], padding=(0, 1, 1), groups=2 * slots))
        v = F.relu_(F.conv3d(stacked, *wts["v1"], padding=(0, 1, 0), groups=slots))
        v = F.relu_(F.conv3d(v, *wts["v2"], padding=(0, 0, 1), groups=slots))
        qk = qk.reshape(b, slots, 2, d, n)
        query, key = qk[:, :, 0], qk[:, :, 1]  # B x S x d x N
    # the output replacing slot a takes the queries of its partner b (pairs (0,1), (2,3))
    partner = [s ^ 1 for s in range(slots)]
    query = query[:, partner]
    value = v.reshape(b, slots, c, n)
    out = F.scaled_dot_product_attention(query.transpose(-1, -2), key.transpose(-1, -2),
                                         value.transpose(-1, -2), scale=1.0)  # B x S x N x C
    # B x S x N x C -> B x C x (S*Ts) x H x W (slot-major time axis, as the concat of slots)
    return out.permute(0, 3, 1, 2).reshape(b, c, t, h, w)


class _ChannelsLastMaxPool(torch.autograd.Function):
    """Channels-last max-pool that saves only its indices for backward.

    aten's max-pool saves its input for backward; here that input is a channels-last copy made
    for the pool alone, which would add a whole copy of every pooled feature to the training
    peak memory. The backward kernel reads only the input's shape and layout, so an
    uninitialised tensor of that shape stands in for it: same kernel, same gradient.
    """

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, ceil_mode):
        out, indices = torch.ops.aten.max_pool3d_with_indices(
            x.contiguous(memory_format=CHANNELS_LAST), kernel, stride, padding, dilation,
            ceil_mode)
        ctx.save_for_backward(indices)
        ctx.args = (kernel, stride, padding, dilation, ceil_mode)
        ctx.shape, ctx.channels_first = x.shape, not x.is_contiguous(memory_format=CHANNELS_LAST)
        ctx.mark_non_differentiable(indices)
        return out, indices

    @staticmethod
    def backward(ctx, grad_out, _grad_indices):
        (indices,) = ctx.saved_tensors
        like = torch.empty(ctx.shape, dtype=grad_out.dtype, device=grad_out.device,
                           memory_format=CHANNELS_LAST)
        grad = torch.ops.aten.max_pool3d_with_indices_backward(
            grad_out.contiguous(memory_format=CHANNELS_LAST), like, *ctx.args, indices)
        return (grad.contiguous() if ctx.channels_first else grad), None, None, None, None, None


class ChannelsLastMaxPool3d(nn.MaxPool3d):
    """`nn.MaxPool3d` computed in channels-last 3D, handed back in the input's layout.

    Max-pooling is exact, so values and indices (ties included) are bit-identical to the
    channels-first kernel, which on CPU is several times slower. With `to_channels_last` the
    output stays channels-last: the pool is where the channels-last region of the network begins.
    """

    to_channels_last = False

    def forward(self, x: torch.Tensor):
        # under autograd the channels-last region is off (see `enable_fast_path`)
        keep = ((self.to_channels_last and not torch.is_grad_enabled())
                or x.is_contiguous(memory_format=CHANNELS_LAST) or not x.is_contiguous())
        if torch.is_grad_enabled() and x.requires_grad and x.dim() == 5:
            out = _ChannelsLastMaxPool.apply(
                x, _triple(self.kernel_size), _triple(self.stride or self.kernel_size),
                _triple(self.padding), _triple(self.dilation), self.ceil_mode)
            out = out if self.return_indices else out[0]
        else:
            out = super().forward(x.contiguous(memory_format=CHANNELS_LAST))
        if keep:
            return out
        if isinstance(out, tuple):
            return tuple(o.contiguous() for o in out)
        return out.contiguous()


class OneDNNConv3d(nn.Conv3d):
    """`nn.Conv3d` that, in inference, always takes oneDNN's channels-last kernel.

    PyTorch sends a conv with a small B*C*T*H (one time slot, few channels, the 1-channel
    readout) to its im2col `slow_conv3d`, which is several times slower here and hands back a
    channels-first tensor, so every following op of the channels-last region pays a layout
    copy. The channels-last weight is a cached copy (rebuilt when the parameter changes), so the
    parameters keep their layout and training runs exactly the reference's convs. Same
    arithmetic up to the summation order.
    """

    def channels_last_weight(self) -> torch.Tensor:
        w = self.weight
        key = (w.data_ptr(), w._version)
        cache = getattr(self, "_channels_last_cache", None)
        if cache is None or cache[0] != key:
            cache = (key, w.detach().contiguous(memory_format=CHANNELS_LAST))
            self._channels_last_cache = cache
        return cache[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (not torch.is_grad_enabled() and x.device.type == "cpu" and x.dtype == torch.float32
                and self.weight.dtype == torch.float32 and self.padding_mode == "zeros"
                and not isinstance(self.padding, str) and not torch.is_autocast_enabled("cpu")):
            return torch.mkldnn_convolution(x.contiguous(memory_format=CHANNELS_LAST),
                                            self.channels_last_weight(), self.bias, self.padding,
                                            self.stride, self.dilation, self.groups)
        return super().forward(x)


def _inference_cpu_fp32(x: torch.Tensor) -> bool:
    return (not torch.is_grad_enabled() and x.device.type == "cpu" and x.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu"))


def _folded_conv_bn(x: torch.Tensor, conv: nn.Conv3d, bn: nn.BatchNorm3d) -> torch.Tensor:
    """conv then eval-mode BatchNorm as one conv: w * g / sqrt(var + eps), b - mean * that.

    Exact in math (float rounding only). The folded weights are cached until a parameter or
    running statistic changes.
    """
    tensors = (conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var)
    key = tuple((t.data_ptr(), t._version) for t in tensors)
    cache = getattr(conv, "_folded_cache", None)
    if cache is None or cache[0] != key:
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        weight = conv.weight.detach() * scale.view(-1, 1, 1, 1, 1)
        bias = bn.bias.detach() - bn.running_mean * scale
        cache = (key, (weight.contiguous(memory_format=CHANNELS_LAST), bias))
        conv._folded_cache = cache
    weight, bias = cache[1]
    return torch.mkldnn_convolution(x.contiguous(memory_format=CHANNELS_LAST), weight, bias,
                                    conv.padding, conv.stride, conv.dilation, conv.groups)


def _can_fold(x: torch.Tensor, bn: nn.BatchNorm3d) -> bool:
    return _inference_cpu_fp32(x) and not bn.training and bn.track_running_stats


def folded_basic_conv(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`BasicConv3d.forward` in inference with the BatchNorm folded into the conv."""
    if not _can_fold(x, module.bn):
        return type(module).forward(module, x)
    return F.relu_(_folded_conv_bn(x, module.conv, module.bn))


def folded_sep_conv(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`SepConv3d.forward` in inference with both BatchNorms folded into their convs."""
    if not _can_fold(x, module.bn_s):
        return type(module).forward(module, x)
    x = F.relu_(_folded_conv_bn(x, module.conv_s, module.bn_s))
    return F.relu_(_folded_conv_bn(x, module.conv_t, module.bn_t))


def _channels_last_input(module: nn.Module, args: tuple) -> tuple:
    return (args[0].contiguous(memory_format=CHANNELS_LAST), *args[1:])


LAYOUTS = ("exact", "channels_last")
BACKBONE_STAGES = ("block1", "pool2", "block2", "pool3", "block3", "pool4", "block4")


def pool_sensitive_modules(model: nn.Module) -> list[nn.Module]:
    """The modules whose outputs must be bit-identical to the reference's.

    A max-pool whose indices are used (the bottleneck unpool of SPEC 3.4) turns a last-bit
    change of its input into a whole value moved inside its 2x2 window. So everything upstream
    of the bottleneck pools runs as in the reference: the backbone up to the deepest tap of a
    bottleneck branch, that branch's temporal compression, its STSA layer I and mid conv (layer
    II pools their output). Layer II's own attention comes after its pool and is free.
    """
    sensitive = [k for k, spec in enumerate(model.branch_specs) if spec.bottleneck]
    if not sensitive:
        return []
    deepest = max(model.branch_ids[k] for k in sensitive)  # 0-based tap index
    backbone = model.backbone
    modules = [getattr(backbone, name) for name in BACKBONE_STAGES[:2 * deepest + 1]]
    for k in sensitive:
        stsa = model.stsa[k]
        modules += [model.compress[k], stsa.mid]
        if stsa.layer1 is not None:
            modules.append(stsa.layer1)
    return modules


def enable_fast_path(model: nn.Module, layout: str = "exact") -> nn.Module:
    """Switch a built STSANet to the fast formulation in place (state_dict unchanged).

    layout "exact": the pool-sensitive part (`pool_sensitive_modules`: for the official model
    the backbone's first block, branch 0's compression, STSA layer I and mid conv) is computed
    bit for bit as in the reference: channels-first convs, reference STSA formulation, only its
    max-pools run channels-last (exact). Everything after it runs channels-last 3D with batched
    STSA layers: oneDNN convolutions, max-pools and trilinear upsampling are several times
    faster there. Outputs match the reference to float rounding (<= 1e-5).
    Under autograd (training) the model runs the reference formulation but for its max-pools
    (channels-last kernel, bit-identical values, indices and gradients): measured at the paper
    size, channels-last convs/BatchNorms and the batched STSA cost more in backward (layout
    copies) than they save, and the per-slot formulation keeps the reference's peak memory.
    layout "channels_last": everything runs channels-last 3D and every STSA layer is batched:
    the fastest, meant for reduced precision (bf16 autocast) where the reference's last bits
    are not the target anyway.
    """
    from .stsa import STSALayer

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {list(LAYOUTS)}, got {layout!r}")
    exact_ids: set[int] = set()
    if layout == "exact":
        exact_ids = {id(m) for root in pool_sensitive_modules(model) for m in root.modules()}
    for name, module in list(model.named_modules()):
        # ablation variants override `attend`; only the official layer has a fast formulation
        if type(module) is STSALayer:
            module.fast_attention = id(module) not in exact_ids
        for child_name, child in module.named_children():
            if type(child) is nn.MaxPool3d:
                fast_pool = ChannelsLastMaxPool3d(child.kernel_size, child.stride, child.padding,
                                                  child.dilation, child.return_indices,
                                                  child.ceil_mode)
                fast_pool.to_channels_last = id(child) not in exact_ids
                setattr(module, child_name, fast_pool)
    if not exact_ids and not getattr(model.backbone, "_channels_last_input", False):
        model.backbone.register_forward_pre_hook(_channels_last_input)
        model.backbone._channels_last_input = True
    from .backbone import BasicConv3d, SepConv3d

    folded = {BasicConv3d: folded_basic_conv, SepConv3d: folded_sep_conv}
    for module in model.modules():
        if id(module) in exact_ids:
            continue
        if type(module) is nn.Conv3d:
            module.__class__ = OneDNNConv3d  # same module tree, parameters and state_dict
        elif type(module) in folded:
            # an instance attribute: `type(module).forward` stays the reference
            module.forward = partial(folded[type(module)], module)
    return model
