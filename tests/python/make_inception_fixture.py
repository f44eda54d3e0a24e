#!/usr/bin/env python3
"""Generate a small, deterministic reference fixture for LatentLab's C++
FID-Inception-v3 feature extractor.

Usage:
    make_inception_fixture.py OUT_DIR [--seed 0] [--no-num-batches-tracked] [--legacy]

The network below is an independent re-implementation of the Inception v3
variant used for FID / IS / KID (the TF "2015-12-05" graph as ported by
pytorch-fid and torch-fidelity).  Its module and parameter names follow the
key layout of those projects' state-dict files (``Conv2d_1a_3x3.conv.weight``,
``Mixed_5b.branch_pool.bn.running_var``, ``fc.bias`` ...), so a C++ loader
that accepts this fixture should also accept the real weights.  The weights
written here are *random* (seeded); they only serve to check the C++ port
against this reference numerically.

Files written to OUT_DIR (all raw, C order, little endian, no header):
    inception.pth                      torch.save(model.state_dict()) (zip format; --legacy: the
                                       pre-1.6 pickle format)
    images.u8                          uint8  [2,3,40,56]
    <mode>_resized.f32 / .f64          [2,3,299,299] preprocessed network input
    <mode>_pool.f32 / .f64             [2,2048]  pool3 features
    <mode>_logits.f32 / .f64           [2,1008]  fc(pool) with bias
    <mode>_logits_unbiased.f32 / .f64  [2,1008]  pool @ fc.weight^T (no bias)
    tf1_small.f32                      [1,1,3,4] TF1 bilinear resize of a 2x3 image
    manifest.json                      shapes / dtypes / settings of the above
with <mode> in {torch_fidelity, pytorch_fid}.  ``.f32`` files hold the
computation done entirely in float32; ``.f64`` files hold the same pipeline run
entirely in float64 (weights cast to float64), useful as a high-precision
reference.

Preprocessing modes:
  torch_fidelity: x = uint8 -> float; TF1.x bilinear resize to 299x299
                  (align_corners=False, half_pixel_centers=False); (x-128)/128
  pytorch_fid:    x = uint8/255; F.interpolate(299x299, bilinear,
                  align_corners=False); 2*x-1
"""

import argparse
import json
import os
import sys

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - environment problem
    sys.stderr.write(
        "make_inception_fixture.py: error: PyTorch (module 'torch') is not "
        "installed for %s; install torch to generate the Inception fixture.\n"
        % sys.executable
    )
    sys.exit(2)

try:
    import numpy  # noqa: F401  (needed by Tensor.numpy())
except ImportError:  # pragma: no cover
    sys.stderr.write(
        "make_inception_fixture.py: error: numpy is not installed for %s; "
        "it is required to write raw tensor files.\n" % sys.executable
    )
    sys.exit(2)


NET_SIZE = 299
BN_EPS = 1e-3
NUM_CLASSES = 1008
POOL_DIM = 2048


# --------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------
class ConvUnit(nn.Module):
    """conv (no bias) -> batch norm (eps 1e-3) -> ReLU.

    Attribute names ``conv`` / ``bn`` are fixed by the checkpoint layout."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.calibrate = False  # set by the fixture's weight-scaling pass

    def forward(self, x):
        y = self.conv(x)
        if self.calibrate:
            # Rescale this conv once so that its output has unit std on the
            # calibration batch (keeps activations O(1) through the net).
            s = float(y.std())
            if s > 0:
                self.conv.weight.data.div_(s)
                y = y / s
            self.calibrate = False
        return F.relu(self.bn(y))


def _seq(x, *units):
    for u in units:
        x = u(x)
    return x


def _tf_avg3(x):
    # TF average pooling ignores the zero padding in the divisor.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class MixedA(nn.Module):
    """35x35 block: Mixed_5b / 5c / 5d.  Output = 64+64+96+pool_ch channels."""

    def __init__(self, cin, pool_ch):
        super().__init__()
        self.branch1x1 = ConvUnit(cin, 64, 1)
        self.branch5x5_1 = ConvUnit(cin, 48, 1)
        self.branch5x5_2 = ConvUnit(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvUnit(cin, 64, 1)
        self.branch3x3dbl_2 = ConvUnit(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvUnit(96, 96, 3, padding=1)
        self.branch_pool = ConvUnit(cin, pool_ch, 1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x),
            _seq(x, self.branch5x5_1, self.branch5x5_2),
            _seq(x, self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
            self.branch_pool(_tf_avg3(x)),
        ], dim=1)


class ReductionB(nn.Module):
    """35x35 -> 17x17: Mixed_6a.  Output = 384+96+cin channels."""

    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = ConvUnit(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvUnit(cin, 64, 1)
        self.branch3x3dbl_2 = ConvUnit(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvUnit(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([
            self.branch3x3(x),
            _seq(x, self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
            F.max_pool2d(x, 3, stride=2),
        ], dim=1)


class MixedC(nn.Module):
    """17x17 factorised-7x7 block: Mixed_6b..6e.  Output = 4*192 channels."""

    def __init__(self, cin, c7):
        super().__init__()
        self.branch1x1 = ConvUnit(cin, 192, 1)
        self.branch7x7_1 = ConvUnit(cin, c7, 1)
        self.branch7x7_2 = ConvUnit(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvUnit(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvUnit(cin, c7, 1)
        self.branch7x7dbl_2 = ConvUnit(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvUnit(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvUnit(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvUnit(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvUnit(cin, 192, 1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x),
            _seq(x, self.branch7x7_1, self.branch7x7_2, self.branch7x7_3),
            _seq(x, self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                 self.branch7x7dbl_4, self.branch7x7dbl_5),
            self.branch_pool(_tf_avg3(x)),
        ], dim=1)


class ReductionD(nn.Module):
    """17x17 -> 8x8: Mixed_7a.  Output = 320+192+cin channels."""

    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1 = ConvUnit(cin, 192, 1)
        self.branch3x3_2 = ConvUnit(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvUnit(cin, 192, 1)
        self.branch7x7x3_2 = ConvUnit(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvUnit(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvUnit(192, 192, 3, stride=2)

    def forward(self, x):
        return torch.cat([
            _seq(x, self.branch3x3_1, self.branch3x3_2),
            _seq(x, self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3,
                 self.branch7x7x3_4),
            F.max_pool2d(x, 3, stride=2),
        ], dim=1)


class MixedE(nn.Module):
    """8x8 expanded block: Mixed_7b (avg pool branch) and Mixed_7c (max pool
    branch, a quirk of the TF FID graph).  Output = 320+768+768+192 = 2048."""

    def __init__(self, cin, max_pool_branch):
        super().__init__()
        self.max_pool_branch = max_pool_branch
        self.branch1x1 = ConvUnit(cin, 320, 1)
        self.branch3x3_1 = ConvUnit(cin, 384, 1)
        self.branch3x3_2a = ConvUnit(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvUnit(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvUnit(cin, 448, 1)
        self.branch3x3dbl_2 = ConvUnit(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvUnit(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvUnit(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvUnit(cin, 192, 1)

    def forward(self, x):
        t = self.branch3x3_1(x)
        u = _seq(x, self.branch3x3dbl_1, self.branch3x3dbl_2)
        if self.max_pool_branch:
            p = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            p = _tf_avg3(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(t), self.branch3x3_2b(t),
            self.branch3x3dbl_3a(u), self.branch3x3dbl_3b(u),
            self.branch_pool(p),
        ], dim=1)


class FidInceptionV3(nn.Module):
    def __init__(self):
        super().__init__()
        # stem (shapes for a 299x299 input)
        self.Conv2d_1a_3x3 = ConvUnit(3, 32, 3, stride=2)      # 149
        self.Conv2d_2a_3x3 = ConvUnit(32, 32, 3)               # 147
        self.Conv2d_2b_3x3 = ConvUnit(32, 64, 3, padding=1)    # 147, then maxpool -> 73
        self.Conv2d_3b_1x1 = ConvUnit(64, 80, 1)               # 73
        self.Conv2d_4a_3x3 = ConvUnit(80, 192, 3)              # 71, then maxpool -> 35
        self.Mixed_5b = MixedA(192, 32)     # 256 x 35
        self.Mixed_5c = MixedA(256, 64)     # 288 x 35
        self.Mixed_5d = MixedA(288, 64)     # 288 x 35
        self.Mixed_6a = ReductionB(288)     # 768 x 17
        self.Mixed_6b = MixedC(768, 128)
        self.Mixed_6c = MixedC(768, 160)
        self.Mixed_6d = MixedC(768, 160)
        self.Mixed_6e = MixedC(768, 192)    # 768 x 17
        self.Mixed_7a = ReductionD(768)     # 1280 x 8
        self.Mixed_7b = MixedE(1280, max_pool_branch=False)  # 2048 x 8
        self.Mixed_7c = MixedE(2048, max_pool_branch=True)   # 2048 x 8
        self.fc = nn.Linear(POOL_DIM, NUM_CLASSES)

    def pool3(self, x):
        x = _seq(x, self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3)
        x = F.max_pool2d(x, 3, stride=2)
        x = _seq(x, self.Conv2d_3b_1x1, self.Conv2d_4a_3x3)
        x = F.max_pool2d(x, 3, stride=2)
        x = _seq(x, self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a,
                 self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e,
                 self.Mixed_7a, self.Mixed_7b, self.Mixed_7c)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x):
        pool = self.pool3(x)
        unbiased = pool.mm(self.fc.weight.t())
        logits = unbiased + self.fc.bias.unsqueeze(0)
        return pool, logits, unbiased


# --------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------
def resize_bilinear_tf1(x, out_h, out_w):
    """TF1.x ResizeBilinear, align_corners=False, half_pixel_centers=False.

    src = dst * (in/out)  (scale rounded to float32, as torch-fidelity does)
    i0 = floor(src), i1 = min(i0 + 1, in - 1), f = src - i0
    top = a00 + (a01 - a00) * fx ; bot = a10 + (a11 - a10) * fx
    out = top + (bot - top) * fy

    Hand-checked case (written to tf1_small.f32): the 2x3 image
        [[0, 1, 2],
         [3, 4, 5]]
    resized to 3x4 (scale_y = 2/3, scale_x = 3/4):
        src_x = 0, .75, 1.5, 2.25 -> row0 samples [0, .75, 1.5, 2], row1 = row0 + 3
        src_y = 0, 2/3, 4/3 (i0 = i1 = 1 for the last row)
        expected = [[0.00, 0.75, 1.50, 2.00],
                    [2.00, 2.75, 3.50, 4.00],
                    [3.00, 3.75, 4.50, 5.00]]
    """
    dt = x.dtype
    in_h, in_w = x.shape[-2], x.shape[-1]

    def axis(n_in, n_out):
        scale = torch.tensor(n_in / n_out, dtype=torch.float32).to(dt)
        src = torch.arange(n_out, dtype=dt) * scale
        i0 = torch.floor(src).long()
        i1 = torch.clamp(i0 + 1, max=n_in - 1)
        return i0, i1, src - i0.to(dt)

    y0, y1, fy = axis(in_h, out_h)
    x0, x1, fx = axis(in_w, out_w)
    top = x.index_select(2, y0)
    bot = x.index_select(2, y1)
    fx = fx.view(1, 1, 1, out_w)
    top = top.index_select(3, x0) + (top.index_select(3, x1) - top.index_select(3, x0)) * fx
    bot = bot.index_select(3, x0) + (bot.index_select(3, x1) - bot.index_select(3, x0)) * fx
    return top + (bot - top) * fy.view(1, 1, out_h, 1)


def preprocess(images_u8, mode, dtype):
    if mode == "torch_fidelity":
        x = images_u8.to(dtype)
        x = resize_bilinear_tf1(x, NET_SIZE, NET_SIZE)
        return (x - 128) / 128
    if mode == "pytorch_fid":
        x = images_u8.to(dtype) / 255
        x = F.interpolate(x, size=(NET_SIZE, NET_SIZE), mode="bilinear", align_corners=False)
        return 2 * x - 1
    raise ValueError(mode)


# --------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------
def randomise_(model, seed):
    """Deterministic, activation-preserving random weights."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, nn.Conv2d):
                fan_in = mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            elif isinstance(mod, nn.BatchNorm2d):
                c = mod.num_features
                mod.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                mod.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                mod.weight.copy_(0.8 + 0.4 * torch.rand(c, generator=gen))
                mod.bias.copy_(0.1 * torch.randn(c, generator=gen))
                mod.num_batches_tracked.zero_()
            elif isinstance(mod, nn.Linear):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * mod.in_features ** -0.5)
                mod.bias.copy_(0.1 * torch.randn(mod.out_features, generator=gen))
        # Calibration: each conv rescaled so its output has unit std on a
        # fixed random batch (like LSUV); BN/ReLU then keep things O(1).
        calib = torch.randn((2, 3, NET_SIZE, NET_SIZE), generator=gen)
        for mod in model.modules():
            if isinstance(mod, ConvUnit):
                mod.calibrate = True
        model.eval()
        model.pool3(calib)


def make_images(seed):
    """Two clearly different uint8 images [2,3,40,56]: a dark, smooth colour
    gradient with mild noise, and a bright, high-contrast checker/stripe
    pattern with strong noise.  Both contain 0 and 255."""
    gen = torch.Generator().manual_seed(seed)
    h, w = 40, 56
    yy = torch.arange(h, dtype=torch.float64).view(h, 1) / (h - 1)
    xx = torch.arange(w, dtype=torch.float64).view(1, w) / (w - 1)
    smooth = torch.stack([120 * xx + 0 * yy, 100 * yy + 0 * xx, 60 * (xx + yy)])
    smooth = smooth + 12 * torch.randn((3, h, w), generator=gen, dtype=torch.float64)
    checker = ((torch.arange(h).view(h, 1) // 5 + torch.arange(w).view(1, w) // 7) % 2).double()
    stripes = (torch.arange(w).view(1, w) % 3 == 0).double().expand(h, w)
    bright = torch.stack([140 + 110 * checker, 230 - 90 * stripes, 200 * checker + 40 * yy])
    bright = bright + 45 * torch.randn((3, h, w), generator=gen, dtype=torch.float64)
    img = torch.stack([smooth, bright]).round().clamp(0, 255).to(torch.uint8)
    img[0, 0, 0, 0], img[0, 1, -1, -1] = 0, 255
    img[1, 2, 0, -1], img[1, 0, -1, 0] = 0, 255
    return img


def write_raw(path, tensor, np_dtype):
    data = tensor.detach().cpu().contiguous().numpy().astype(np_dtype, copy=False)
    with open(path, "wb") as f:
        f.write(data.tobytes(order="C"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--legacy", action="store_true",
                    help="save inception.pth in the legacy (non-zip) torch.save format")
    ap.add_argument("--no-num-batches-tracked", action="store_true",
                    help="drop *.num_batches_tracked keys (like torch-fidelity's weight file)")
    args = ap.parse_args(argv)

    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    out = lambda name: os.path.join(args.out_dir, name)  # noqa: E731

    model = FidInceptionV3()
    randomise_(model, args.seed)
    model.eval()

    state = model.state_dict()
    if args.no_num_batches_tracked:
        state = type(state)((k, v) for k, v in state.items() if not k.endswith("num_batches_tracked"))
    # --legacy: the pre-1.6 pickle-stream format, which pytorch-fid's 2019 weights file most likely uses.
    torch.save(state, out("inception.pth"), _use_new_zipfile_serialization=not args.legacy)

    images = make_images(args.seed + 1)
    write_raw(out("images.u8"), images, "u1")

    manifest = {
        "seed": args.seed,
        "torch_version": torch.__version__,
        "num_batches_tracked_in_checkpoint": not args.no_num_batches_tracked,
        "images.u8": {"dtype": "uint8", "shape": list(images.shape)},
        "tf1_small.f32": {"dtype": "float32", "shape": [1, 1, 3, 4],
                          "input": [[0, 1, 2], [3, 4, 5]]},
        "modes": {},
    }

    model64 = FidInceptionV3()
    model64.load_state_dict(model.state_dict())
    model64 = model64.double().eval()

    with torch.no_grad():
        for mode in ("torch_fidelity", "pytorch_fid"):
            info = {}
            for net, dtype, ext, npt in ((model, torch.float32, "f32", "<f4"),
                                         (model64, torch.float64, "f64", "<f8")):
                x = preprocess(images, mode, dtype)
                pool, logits, unbiased = net(x)
                for name, t in (("resized", x), ("pool", pool), ("logits", logits),
                                ("logits_unbiased", unbiased)):
                    fname = "%s_%s.%s" % (mode, name, ext)
                    write_raw(out(fname), t, npt)
                    info[fname] = {"dtype": "float32" if ext == "f32" else "float64",
                                   "shape": list(t.shape)}
            manifest["modes"][mode] = info

        small = torch.arange(6, dtype=torch.float32).view(1, 1, 2, 3)
        write_raw(out("tf1_small.f32"), resize_bilinear_tf1(small, 3, 4), "<f4")

    with open(out("manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
