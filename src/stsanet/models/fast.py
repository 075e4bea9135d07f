"""The fast formulation of STSANet: same parameters, same numbers, less time.

`STSANet(fast=False)` runs the model exactly as SPEC section 3 reads (one attention call per
pair, one conv per embedding); it is the oracle the fast path is tested against. The fast path
changes only how the same arithmetic is scheduled:

* in inference every STSA layer embeds all its time slots at once: the slots are stacked on the
  channel axis and each embedding stage is one grouped conv (q and k of a slot read the same
  input, so their 1x1x1 convs become one conv and their 1x3x3 convs one grouped conv); exact in
  math, only the float summation order of the convs may differ;
* all attention calls of a layer are two batched matmuls around one softmax (unscaled, as the
  official attention); the pairing (queries of slot b against keys/values of slot a and vice
  versa) is a permutation of the query slots;
* in inference everything after the pool-sensitive region (`pool_sensitive_modules`) runs
  channels-last 3D: convs always through oneDNN (`OneDNNConv3d`), eval BatchNorms folded into
  the backbone convs, max-pools and trilinear upsampling in their (much faster) channels-last
  kernels;
* every max-pool, also in training and in the pool-sensitive region, is exact: the
  backbone's 1x3x3 stride-2 pools as maxima of strided views in inference, the others in the
  channels-last kernel (the channels-first CPU max-pool alone was a fifth of a paper-size
  forward);
* in training mode the backbone, the temporal compressions and the decoder run channels-last (their convs, BatchNorms,
  upsampling and pools are faster there forward and backward), the STSA layers per pair as
  the reference, with query-major attention products; the batched STSA cost more in backward
  than it saved.

The module tree and state_dict are untouched, so weights load into either formulation.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.utils import _triple

CHANNELS_LAST = torch.channels_last_3d


def _version_key(tensors) -> tuple:
    return tuple((t.data_ptr(), t._version) for t in tensors)


def _autocast_device(x: torch.Tensor) -> str:
    """The autocast device type of `x` (the meta device, used for shape/FLOP counts, has none)."""
    return x.device.type if torch.amp.is_autocast_available(x.device.type) else "cpu"


# Bumped whenever weights may have changed behind the version counters: fused optimisers and
# BatchNorm's running statistics write in place without bumping them. A forward under autograd,
# train()/eval() and load_state_dict of a fast model bump it (see `enable_fast_path`).
_generation = [0]


def invalidate_derived_weights(*_args, **_kwargs) -> None:
    """Rebuild every cached derived weight (prepacked, folded, stacked) at its next use."""
    _generation[0] += 1


def _bump_under_autograd(module: nn.Module, args: tuple) -> None:
    if torch.is_grad_enabled():
        invalidate_derived_weights()


def _cached(owner: nn.Module, slot: str, key: tuple, build):
    """`build()` once per `key` (parameter storage and version counters, input shape) and
    generation, kept on `owner` in place of the previous entry for `slot`: one derived copy
    per weight at a time."""
    key = (_generation[0], *key)
    cache = owner.__dict__.setdefault("_fast_weights", {})
    hit = cache.get(slot)
    if hit is None or hit[0] != key:
        hit = cache[slot] = (key, build())
    return hit[1]


def _onednn_pointwise_available() -> bool:
    try:
        return (torch.backends.mkldnn.is_available()
                and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
                and hasattr(torch.ops.mkldnn, "_reorder_convolution_weight"))
    except (AttributeError, RuntimeError):
        return False


PREPACKED = _onednn_pointwise_available()


def onednn_conv(x: torch.Tensor, owner: nn.Module, slot: str, sources, make, padding, stride=1,
                dilation=1, groups: int = 1, relu: bool = False,
                add: torch.Tensor | None = None) -> torch.Tensor:
    """fp32 inference conv3d (+ `add`, then ReLU) of `x` in channels-last through oneDNN.

    `make()` gives the (weight, bias) to use, derived from the `sources` parameters (a layer's
    own, folded with its BatchNorm, or stacked over STSA slots). The weight is kept prepacked in
    oneDNN's own layout for this input shape: unpacked, oneDNN reorders every weight on every
    call, which for the large STSA embeddings cost more than the conv. The sum and the ReLU are
    oneDNN post-ops. Same arithmetic as `torch.mkldnn_convolution` (tested bit for bit).
    """
    x = x.contiguous(memory_format=CHANNELS_LAST)
    padding, stride, dilation = (list(_triple(a)) for a in (padding, stride, dilation))
    if PREPACKED:
        def build():
            weight, bias = make()
            weight = weight.detach().contiguous(memory_format=CHANNELS_LAST)
            packed = torch.ops.mkldnn._reorder_convolution_weight(
                weight, padding, stride, dilation, groups, list(x.shape))
            return packed, None if bias is None else bias.detach()

        weight, bias = _cached(owner, slot, (_version_key(sources), tuple(x.shape)), build)
        if add is not None:
            return torch.ops.mkldnn._convolution_pointwise.binary(
                x, add.contiguous(memory_format=CHANNELS_LAST), weight, bias, padding, stride,
                dilation, groups, "add", 1.0, "relu" if relu else None, [], "")
        return torch.ops.mkldnn._convolution_pointwise(
            x, weight, bias, padding, stride, dilation, groups, "relu" if relu else "none", [], "")

    def build_dense():
        weight, bias = make()
        return (weight.detach().contiguous(memory_format=CHANNELS_LAST),
                None if bias is None else bias.detach())

    weight, bias = _cached(owner, slot, (_version_key(sources), None), build_dense)
    out = torch.mkldnn_convolution(x, weight, bias, padding, stride, dilation, groups)
    if add is not None:
        out += add
    return F.relu_(out) if relu else out


def _conv(conv: nn.Conv3d, x: torch.Tensor, relu: bool = False,
          add: torch.Tensor | None = None) -> torch.Tensor:
    """A module's own conv through `onednn_conv`."""
    return onednn_conv(x, conv, "weight", (conv.weight,), lambda: (conv.weight, conv.bias),
                       conv.padding, conv.stride, conv.dilation, conv.groups, relu, add)


def fast_stms(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`STMS.forward` in fp32 inference: the four branches summed as each branch's last conv
    adds the running sum (oneDNN post-op), the final ReLU fused too, the inner ReLUs as well:
    no separate add or ReLU pass over the output."""
    if not _inference_cpu_fp32(x):
        return type(module).forward(module, x)
    out = _conv(module.branch0[0], x)
    out = _conv(module.branch3[1], module.branch3[0](x), add=out)
    out = _conv(module.branch1[2], _conv(module.branch1[0], x, relu=True), add=out)
    return _conv(module.branch2[2], _conv(module.branch2[0], x, relu=True), add=out, relu=True)


def fast_weighting(module: nn.Module, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """`AttentionalWeighting.forward` in fp32 inference, without materialising the masked
    features: their per-time-step spatial mean is one batched product of the mask with the
    features."""
    if not _inference_cpu_fp32(high):
        return type(module).forward(module, high, low)
    both = torch.cat([high, low], dim=1).contiguous(memory_format=CHANNELS_LAST)
    mask = module.mask(both)  # B x 1 x T x H x W
    b, c2, t, h, w = both.shape
    features = both.permute(0, 2, 3, 4, 1).reshape(b * t, h * w, c2)
    pooled = torch.bmm(mask.reshape(b * t, 1, h * w), features).div_(h * w)  # (B*T) x 1 x 2C
    pooled = pooled.reshape(b, t, c2).permute(0, 2, 1).reshape(b, c2, t, 1, 1)
    weights = module.channel[1:](pooled)  # the channel branch after its average pool
    w_high, w_low = weights.chunk(2, dim=1)
    if module.fusion == "add":
        return (high * w_high).addcmul_(low, w_low)
    return torch.cat([high * w_high, low * w_low], dim=1)


def stacked_embedding_weights(layer: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Weights/biases of one STSA layer's embeddings as grouped convs over the stacked slots.

    Group order: qk1 = [q_0, k_0, q_1, k_1, ...] (1x1x1), qk2 = same order (1x3x3, one group per
    q or k), v1 / v2 = [v_0, v_1, ...]. Not cached: see `fast_attend`.
    """
    def cat(pick):
        return (torch.cat([pick(e).weight for e in layer.embed]),
                torch.cat([pick(e).bias for e in layer.embed]))

    def cat_qk(index):
        pairs = [(e.q[index], e.k[index]) for e in layer.embed]
        return (torch.cat([t for q, k in pairs for t in (q.weight, k.weight)]),
                torch.cat([t for q, k in pairs for t in (q.bias, k.bias)]))

    return {"qk1": cat_qk(0), "qk2": cat_qk(2), "v1": cat(lambda e: e.v[0]),
            "v2": cat(lambda e: e.v[2])}


def _stacked_embedding_conv(layer, params, slots, x, name, padding, groups):
    """One embedding stage (conv + ReLU) of all slots as one grouped conv."""
    def make():
        return stacked_embedding_weights(layer)[name]

    if _inference_cpu_fp32(x):
        return onednn_conv(x, layer, name, params, make, padding, groups=groups, relu=True)
    # reduced precision (autocast): aten's conv on cached channels-last weights
    weight, bias = _cached(layer, name, (_version_key(params), "dense"),
                           lambda: tuple(t.detach().contiguous(memory_format=CHANNELS_LAST)
                                         if t.dim() == 5 else t.detach() for t in make()))
    return F.relu_(F.conv3d(x, weight, bias, padding=padding, groups=groups))


def fast_attend(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`STSALayer.attend` of SPEC 3.4 with the slots embedded and attended in one go each.

    Inference only (no autograd): the stacked weights are detached copies, and under autograd
    they would be a second copy of every embedding weight (and of its gradient).
    """
    slots = 2 * layer.pairs
    b, c, t, h, w = x.shape
    ts, n = t // slots, (t // slots) * h * w
    # B x C x (S*Ts) x H x W -> B x (S*C) x Ts x H x W: slot s owns channel group s
    stacked = (x.reshape(b, c, slots, ts, h, w).transpose(1, 2)
               .reshape(b, slots * c, ts, h, w).contiguous(memory_format=CHANNELS_LAST))
    params = [p for e in layer.embed for p in e.parameters()]
    embed = partial(_stacked_embedding_conv, layer, params, slots)
    # q and k in fp32 also under autocast: their products are the unscaled attention logits
    with torch.autocast(_autocast_device(x), enabled=False):
        qk = embed(stacked.float(), "qk1", 0, slots)
        qk = embed(qk, "qk2", (0, 1, 1), 2 * slots)
    v = embed(stacked, "v1", (0, 1, 0), slots)
    v = embed(v, "v2", (0, 0, 1), slots)
    d = qk.shape[1] // (2 * slots)
    qk = qk.reshape(b, slots, 2, d, n)
    query, key = qk[:, :, 0], qk[:, :, 1]  # B x S x d x N
    # the output replacing slot a takes the queries of its partner b (pairs (0,1), (2,3))
    partner = [s ^ 1 for s in range(slots)]
    query = query[:, partner]
    value = v.reshape(b, slots, c, n)
    # unscaled softmax(q^T k) v as two batched matmuls: scaled_dot_product_attention takes its
    # math path here (q/k and v widths differ), whose masked-row checks cost a tenth of a layer.
    # Under autocast the attention stays fp32: the logits are unscaled dot products, and a bf16
    # rounding of them (0.4 %) moves the softmax visibly.
    with torch.autocast(_autocast_device(x), enabled=False):
        query, key, value = query.float(), key.float(), value.float()
        weights = torch.matmul(query.transpose(-1, -2), key)  # B x S x N x N
        weights = torch.softmax(weights, dim=-1, out=weights)
        out = torch.matmul(weights, value.transpose(-1, -2))  # B x S x N x C
    # B x S x N x C -> B x C x (S*Ts) x H x W (slot-major time axis, as the concat of slots)
    return out.permute(0, 3, 1, 2).reshape(b, c, t, h, w)


def query_major_attention(query: torch.Tensor, key: torch.Tensor,
                          value: torch.Tensor) -> torch.Tensor:
    """`attention.dot_product_attention` as (w v^T)^T instead of v w^T: the same products and
    sums, but the softmax's gradient arrives query-major, where the reference's hands it over
    transposed and softmax's backward copies it (0.1 s of a paper-size training step)."""
    b, _, tq, hq, wq = query.shape
    weights = torch.bmm(query.flatten(2).transpose(1, 2), key.flatten(2)).softmax(dim=-1)
    out = torch.bmm(weights, value.flatten(2).transpose(1, 2))  # B x Nq x C
    return out.transpose(1, 2).reshape(b, value.shape[1], tq, hq, wq)


class _ChannelsLastMaxPool(torch.autograd.Function):
    """Channels-last max-pool that saves only its indices for backward.

    aten's max-pool saves its input for backward; here that input is a channels-last copy made
    for the pool alone, which would add a whole copy of every pooled feature to the training
    peak memory. The backward kernel reads only the input's shape and layout, so an
    uninitialised tensor of that shape stands in for it: same kernel, same gradient. The indices
    (flat positions in T x H x W) mean the same in either layout, so a channels-first input gets
    its gradient from the channels-first backward kernel, the reference's own, instead of a
    channels-last gradient copied back at the size of the input.
    """

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, ceil_mode):
        out, indices = torch.ops.aten.max_pool3d_with_indices(
            x.contiguous(memory_format=CHANNELS_LAST), kernel, stride, padding, dilation,
            ceil_mode)
        layout = (CHANNELS_LAST if x.is_contiguous(memory_format=CHANNELS_LAST)
                  else torch.contiguous_format)
        out, indices = out.contiguous(memory_format=layout), indices.contiguous(memory_format=layout)
        ctx.save_for_backward(indices)
        ctx.args = (kernel, stride, padding, dilation, ceil_mode)
        ctx.shape, ctx.layout = x.shape, layout
        ctx.mark_non_differentiable(indices)
        return out, indices

    @staticmethod
    def backward(ctx, grad_out, _grad_indices):
        (indices,) = ctx.saved_tensors
        like = torch.empty(ctx.shape, dtype=grad_out.dtype, device=grad_out.device,
                           memory_format=ctx.layout)
        grad = torch.ops.aten.max_pool3d_with_indices_backward(
            grad_out.contiguous(memory_format=ctx.layout), like, *ctx.args, indices)
        return grad, None, None, None, None, None


def _max_pool_1x3x3_stride2(x: torch.Tensor) -> torch.Tensor:
    """The backbone's spatial max-pool (1x3x3, stride 1x2x2, padding 0x1x1) of a channels-first
    tensor with even H and W, as maxima of strided views: W then H, each output taking inputs
    2j - 1, 2j, 2j + 1 (the first has no 2j - 1, where the reference pads with -inf). Maxima
    are exact, so the values equal the pool's; several times faster than its channels-first
    kernel and without the channels-last copy of the input.
    """
    w = x.shape[-1]
    cols = torch.maximum(x[..., 0::2], x[..., 1::2])
    cols[..., 1:] = torch.maximum(cols[..., 1:], x[..., 1:w - 2:2])
    h = cols.shape[-2]
    out = torch.maximum(cols[..., 0::2, :], cols[..., 1::2, :])
    out[..., 1:, :] = torch.maximum(out[..., 1:, :], cols[..., 1:h - 2:2, :])
    return out


class ChannelsLastMaxPool3d(nn.MaxPool3d):
    """`nn.MaxPool3d` computed in channels-last 3D, handed back in the input's layout.

    Max-pooling is exact, so values and indices (ties included) are bit-identical to the
    channels-first kernel, which on CPU is several times slower. With `to_channels_last` the
    output stays channels-last: the pool is where the channels-last region of the network begins.
    """

    to_channels_last = False

    def _is_spatial_stride2(self, x: torch.Tensor) -> bool:
        return (not self.return_indices and not self.ceil_mode and x.dim() == 5
                and x.is_contiguous() and x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0
                and (_triple(self.kernel_size), _triple(self.stride), _triple(self.padding),
                     _triple(self.dilation)) == ((1, 3, 3), (1, 2, 2), (0, 1, 1), (1, 1, 1)))

    def forward(self, x: torch.Tensor):
        if torch.is_grad_enabled() and x.requires_grad and x.dim() == 5:
            out = _ChannelsLastMaxPool.apply(
                x, _triple(self.kernel_size), _triple(self.stride or self.kernel_size),
                _triple(self.padding), _triple(self.dilation), self.ceil_mode)
            return out if self.return_indices else out[0]
        # under autograd the channels-last region is off (see `enable_fast_path`)
        keep = ((self.to_channels_last and not torch.is_grad_enabled())
                or x.is_contiguous(memory_format=CHANNELS_LAST) or not x.is_contiguous())
        if self._is_spatial_stride2(x):
            out = _max_pool_1x3x3_stride2(x)
            return out.contiguous(memory_format=CHANNELS_LAST) if keep else out
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
    copy. The oneDNN weight is a cached, prepacked copy (`onednn_conv`), so the parameters keep
    their layout. Under autograd a channels-last input goes to `mkldnn_convolution` for the
    same reason (channels-last out, differentiable); a channels-first one runs aten's conv as
    the reference. Same arithmetic up to the summation order.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plain = (x.device.type == "cpu" and x.dtype == self.weight.dtype == torch.float32
                 and self.padding_mode == "zeros" and not isinstance(self.padding, str)
                 and not torch.is_autocast_enabled("cpu"))
        if plain and not torch.is_grad_enabled():
            return _conv(self, x)
        if plain and x.is_contiguous(memory_format=CHANNELS_LAST):
            # under autograd too: aten would send a small batch-1 conv to slow_conv3d, whose
            # channels-first output makes the following upsampling and convs pay layout copies
            return torch.mkldnn_convolution(x, self.weight.contiguous(memory_format=CHANNELS_LAST),
                                            self.bias, self.padding, self.stride, self.dilation,
                                            self.groups)
        return super().forward(x)


def _inference_cpu_fp32(x: torch.Tensor) -> bool:
    return (not torch.is_grad_enabled() and x.device.type == "cpu" and x.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu"))


def _folded_conv_bn_relu(x: torch.Tensor, conv: nn.Conv3d, bn: nn.BatchNorm3d) -> torch.Tensor:
    """conv, eval-mode BatchNorm, ReLU as one conv: w * g / sqrt(var + eps), b - mean * that.

    Exact in math (float rounding only). The folded weights are rebuilt only when a parameter or
    running statistic changes.
    """
    def fold():
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        weight = conv.weight.detach() * scale.view(-1, 1, 1, 1, 1)
        return weight, bn.bias.detach() - bn.running_mean * scale

    sources = (conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var)
    return onednn_conv(x, conv, "folded", sources, fold, conv.padding, conv.stride,
                       conv.dilation, conv.groups, relu=True)


def _can_fold(x: torch.Tensor, bn: nn.BatchNorm3d) -> bool:
    return _inference_cpu_fp32(x) and not bn.training and bn.track_running_stats


def folded_basic_conv(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`BasicConv3d.forward` in inference with the BatchNorm folded into the conv."""
    if not _can_fold(x, module.bn):
        return type(module).forward(module, x)
    return _folded_conv_bn_relu(x, module.conv, module.bn)


def folded_sep_conv(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`SepConv3d.forward` in inference with both BatchNorms folded into their convs."""
    if not _can_fold(x, module.bn_s):
        return type(module).forward(module, x)
    x = _folded_conv_bn_relu(x, module.conv_s, module.bn_s)
    return _folded_conv_bn_relu(x, module.conv_t, module.bn_t)


def _bn_relu_(x: torch.Tensor, bn: nn.BatchNorm3d) -> torch.Tensor:
    """Eval BatchNorm then ReLU, in place: aten's own BatchNorm kernel writing over its input,
    so the bits are the reference's; only the new output tensor (and its page faults) is saved.
    """
    torch.ops.aten.native_batch_norm.out(x, bn.weight, bn.bias, bn.running_mean, bn.running_var,
                                         False, 0.0, bn.eps, out=x, save_mean=x.new_empty(0),
                                         save_invstd=x.new_empty(0))
    return x.relu_()


def _can_run_in_place(x: torch.Tensor, bn: nn.BatchNorm3d) -> bool:
    return (not torch.is_grad_enabled() and x.device.type == "cpu" and not bn.training
            and bn.track_running_stats)


def in_place_basic_conv(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`BasicConv3d.forward` in inference, bit for bit, with BatchNorm and ReLU in place."""
    if not _can_run_in_place(x, module.bn):
        return type(module).forward(module, x)
    return _bn_relu_(module.conv(x), module.bn)


def in_place_sep_conv(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`SepConv3d.forward` in inference, bit for bit, with BatchNorms and ReLUs in place."""
    if not _can_run_in_place(x, module.bn_s):
        return type(module).forward(module, x)
    x = _bn_relu_(module.conv_s(x), module.bn_s)
    return _bn_relu_(module.conv_t(x), module.bn_t)


def _channels_last_in_training(module: nn.Module, args: tuple) -> tuple | None:
    # training mode only: channels-last convs move the bottleneck pools' inputs by rounding, so
    # an eval-mode forward under autograd (input gradients) keeps the reference's values
    if torch.is_grad_enabled() and module.training:
        return (args[0].contiguous(memory_format=CHANNELS_LAST), *args[1:])
    return None


def _channels_first_in_training(module: nn.Module, args: tuple) -> tuple | None:
    if torch.is_grad_enabled() and module.training:
        return (args[0].contiguous(), *args[1:])
    return None


def _channels_last_branches(module: nn.Module, args: tuple) -> tuple:
    branches = [b.contiguous(memory_format=CHANNELS_LAST) for b in args[0]]
    return (branches, *args[1:])


def _full_precision(forward, module: nn.Module, *args):
    """`forward` with autocast off and fp32 inputs in inference (see `enable_fast_path`); mixed
    precision training keeps autocast everywhere."""
    device = next((_autocast_device(a) for a in args if torch.is_tensor(a)), "cpu")
    if torch.is_grad_enabled() or not torch.is_autocast_enabled(device):
        return forward(module, *args)
    with torch.autocast(device, enabled=False):
        return forward(module, *(a.float() if torch.is_tensor(a) and a.is_floating_point()
                                 else a for a in args))


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


def enable_fast_path(model: nn.Module) -> nn.Module:
    """Switch a built STSANet to the fast formulation in place (state_dict unchanged).

    Inference, fp32: the pool-sensitive part (`pool_sensitive_modules`: for the official model
    the backbone's first block, branch 0's compression, STSA layer I and mid conv) is computed
    bit for bit as in the reference: channels-first convs, reference STSA formulation, its
    BatchNorms and ReLUs in place (same kernels), its max-pools exact. Everything after it
    runs channels-last 3D with batched STSA layers: oneDNN convolutions with prepacked
    weights, max-pools and trilinear upsampling are several times faster there. Outputs match
    the reference to float rounding (<= 1e-5).
    Inference under bf16 autocast (the reduced-precision path): the same, but the
    pool-sensitive region, the attention (q, k and their products) and the readout stay fp32:
    a channels-last or bf16 rounding there ties or flips the bottleneck argmaxes (CC of the map
    to fp32 0.983 on real frames when all of it ran bf16), the unscaled attention logits need
    more than bf16's 8 bits, and a bf16 sigmoid output has steps of 0.004 near 0.5.
    Under autograd (training) the model computes the reference's functions with other kernels:
    exact max-pools; in training mode a channels-last backbone, and always a channels-last
    decoder; per-pair STSA attention as `query_major_attention`. Float rounding there can flip
    a near-tied bottleneck argmax, which is as valid a gradient step as the reference's (in
    eval mode under autograd the backbone stays the reference's, so input gradients see the
    reference's values).
    """
    from .stsa import STSALayer

    exact_ids = {id(m) for root in pool_sensitive_modules(model) for m in root.modules()}
    model.register_forward_pre_hook(_bump_under_autograd)
    model.register_load_state_dict_post_hook(invalidate_derived_weights)
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
    for root in [*pool_sensitive_modules(model), model.decoder.readout]:
        root.forward = partial(_full_precision, type(root).forward, root)
    # in training mode the backbone and the temporal compressions run channels-last (forward +
    # backward of a paper-size clip: block 1 2.09 vs 2.71 s, block 2 0.65 vs 1.05 s); the
    # per-pair STSA formulation is faster channels-first, and its input is 4x smaller than a tap
    if not getattr(model.backbone, "_channels_last_in_training", False):
        model.backbone.register_forward_pre_hook(_channels_last_in_training)
        for stsa in model.stsa:
            stsa.register_forward_pre_hook(_channels_first_in_training)
        model.backbone._channels_last_in_training = True
    # the decoder runs channels-last in training too: its convs, upsampling and max-pools are
    # faster there forward and backward, and all it reads are the four STSA outputs
    if not getattr(model.decoder, "_channels_last_input", False):
        model.decoder.register_forward_pre_hook(_channels_last_branches)
        model.decoder._channels_last_input = True
    from .backbone import BasicConv3d, SepConv3d

    from .amsf import STMS, AttentionalWeighting

    inference_forms = {BasicConv3d: folded_basic_conv, SepConv3d: folded_sep_conv,
                       STMS: fast_stms, AttentionalWeighting: fast_weighting}
    in_place = {BasicConv3d: in_place_basic_conv, SepConv3d: in_place_sep_conv}
    for module in model.modules():
        # instance attributes: `type(module).forward` stays the reference
        if id(module) in exact_ids:
            if type(module) in in_place:
                module.forward = partial(in_place[type(module)], module)
        elif type(module) is nn.Conv3d:
            module.__class__ = OneDNNConv3d  # same module tree, parameters and state_dict
        elif type(module) in inference_forms:
            module.forward = partial(inference_forms[type(module)], module)
    return model
