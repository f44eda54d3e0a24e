#!/usr/bin/env python3
"""Writes tests/fixtures/reference/: small first-stage checkpoints in the reference layout, made by
PyTorch itself, with the outputs PyTorch computes for them.

The networks below re-state the reference first stage (CompVis latent-diffusion,
ldm/modules/diffusionmodules/model.py: Encoder, Decoder, ResnetBlock, AttnBlock, Up/Downsample;
ldm/models/autoencoder.py: AutoencoderKL, VQModel) with the same module names, so state_dict() gives
the reference keys. GroupNorm's group count is a parameter (the reference fixes 32), so tiny widths work.

Run with Debian's python3-torch (apt-get install python3-torch); the tests only read the files it
writes, so neither Python nor torch is needed to run them:
    python3 tools/make_reference_fixtures.py tests/fixtures/reference
"""
import argparse
import collections
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

GROUPS = 2


def normalize(channels):
    return nn.GroupNorm(GROUPS, channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1, self.conv1 = normalize(cin), nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm2, self.dropout = normalize(cout), nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = normalize(c)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        h = self.norm(x)
        b, c, hh, ww = x.shape
        q = self.q(h).reshape(b, c, hh * ww).permute(0, 2, 1)
        k = self.k(h).reshape(b, c, hh * ww)
        w = torch.softmax(torch.bmm(q, k) * c ** -0.5, dim=2)
        v = self.v(h).reshape(b, c, hh * ww)
        out = torch.bmm(v, w.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 2, 0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Encoder(nn.Module):
    def __init__(self, ch, ch_mult, num_res_blocks, attn_resolutions, in_channels, resolution, z_channels, double_z):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, 1, 1)
        res, block_in, in_mult = resolution, ch, (1,) + tuple(ch_mult)
        self.down = nn.ModuleList()
        for i, mult in enumerate(ch_mult):
            down = nn.Module()
            down.block, down.attn = nn.ModuleList(), nn.ModuleList()
            block_in = ch * in_mult[i]
            for _ in range(num_res_blocks):
                down.block.append(ResnetBlock(block_in, ch * mult))
                block_in = ch * mult
                if res in attn_resolutions:
                    down.attn.append(AttnBlock(block_in))
            if i != len(ch_mult) - 1:
                down.downsample = Downsample(block_in)
                res //= 2
            self.down.append(down)
        self.mid = nn.Module()
        self.mid.block_1, self.mid.attn_1 = ResnetBlock(block_in, block_in), AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(block_in, block_in)
        self.norm_out = normalize(block_in)
        self.conv_out = nn.Conv2d(block_in, 2 * z_channels if double_z else z_channels, 3, 1, 1)

    def forward(self, x):
        h = self.conv_in(x)
        for down in self.down:
            for i, block in enumerate(down.block):
                h = block(h)
                if len(down.attn) > 0:
                    h = down.attn[i](h)
            if hasattr(down, "downsample"):
                h = down.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, ch, ch_mult, num_res_blocks, attn_resolutions, out_ch, resolution, z_channels):
        super().__init__()
        block_in = ch * ch_mult[-1]
        res = resolution // 2 ** (len(ch_mult) - 1)
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, 1, 1)
        self.mid = nn.Module()
        self.mid.block_1, self.mid.attn_1 = ResnetBlock(block_in, block_in), AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(block_in, block_in)
        self.up = nn.ModuleList()
        for i in reversed(range(len(ch_mult))):
            up = nn.Module()
            up.block, up.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                up.block.append(ResnetBlock(block_in, ch * ch_mult[i]))
                block_in = ch * ch_mult[i]
                if res in attn_resolutions:
                    up.attn.append(AttnBlock(block_in))
            if i != 0:
                up.upsample = Upsample(block_in)
                res *= 2
            self.up.insert(0, up)
        self.norm_out = normalize(block_in)
        self.conv_out = nn.Conv2d(block_in, out_ch, 3, 1, 1)

    def forward(self, z):
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(self.conv_in(z))))
        for up in reversed(self.up):
            for i, block in enumerate(up.block):
                h = block(h)
                if len(up.attn) > 0:
                    h = up.attn[i](h)
            if hasattr(up, "upsample"):
                h = up.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


# norm_groups is LatentLab's extension of ddconfig (the reference always uses 32 groups).
DDCONFIG = {"norm_groups": GROUPS, "double_z": True, "z_channels": 2, "resolution": 16, "in_channels": 1, "out_ch": 1, "ch": 4,
            "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [8], "dropout": 0.0}


def make(kind):
    dd = dict(DDCONFIG, double_z=(kind == "kl"))
    model = nn.Module()
    args = (dd["ch"], dd["ch_mult"], dd["num_res_blocks"], dd["attn_resolutions"])
    model.encoder = Encoder(*args, dd["in_channels"], dd["resolution"], dd["z_channels"], dd["double_z"])
    model.decoder = Decoder(*args, dd["out_ch"], dd["resolution"], dd["z_channels"])
    embed_dim = 2
    if kind == "kl":
        model.quant_conv = nn.Conv2d(2 * dd["z_channels"], 2 * embed_dim, 1)
    else:
        model.quant_conv = nn.Conv2d(dd["z_channels"], embed_dim, 1)
        model.quantize = nn.Module()
        model.quantize.embedding = nn.Embedding(16, embed_dim)
    model.post_quant_conv = nn.Conv2d(embed_dim, dd["z_channels"], 1)
    target = "ldm.models.autoencoder.AutoencoderKL" if kind == "kl" else "ldm.models.autoencoder.VQModel"
    params = {"embed_dim": embed_dim, "ddconfig": dd,
              "lossconfig": {"target": "ldm.modules.losses.LPIPSWithDiscriminator", "params": {"kl_weight": 1e-6}}}
    if kind == "vq":
        params["n_embed"] = 16
    return model, {"model": {"target": target, "params": params}}


def reconstruct(model, kind, x):
    with torch.no_grad():
        h = model.quant_conv(model.encoder(x))
        if kind == "kl":
            z = h.chunk(2, dim=1)[0]  # the posterior mean
        else:
            codes = model.quantize.embedding.weight
            flat = h.permute(0, 2, 3, 1).reshape(-1, h.shape[1])
            idx = torch.cdist(flat, codes).argmin(1)
            z = codes[idx].view(h.shape[0], h.shape[2], h.shape[3], -1).permute(0, 3, 1, 2)
        return z, model.decoder(model.post_quant_conv(z))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    out = parser.parse_args().out
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    for kind in ("kl", "vq"):
        model, config = make(kind)
        with torch.no_grad():  # visible weights: larger than the default initialisation
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        state = collections.OrderedDict(model.state_dict())
        # Training-only entries the reference checkpoints carry: left out by the import.
        state["loss.logvar"] = torch.zeros(())
        state["loss.discriminator.main.0.weight"] = torch.randn(4, 1, 4, 4)
        # A real optimizer state (int keys, tensors): Lightning saves one. The outputs below come after
        # its step, from the weights the state dict holds.
        optimizer = torch.optim.Adam(model.quant_conv.parameters(), lr=1e-4)
        sum(p.sum() for p in model.quant_conv.parameters()).backward()
        optimizer.step()
        checkpoint = {"epoch": 3, "global_step": 1234, "pytorch-lightning_version": "1.4.2",
                      "state_dict": state, "optimizer_states": [optimizer.state_dict()],
                      "lr_schedulers": [], "hyper_parameters": argparse.Namespace(**config["model"]["params"])}
        x = torch.rand(2, 1, 16, 16) * 2 - 1
        z, x_hat = reconstruct(model, kind, x)
        torch.save(checkpoint, os.path.join(out, f"{kind}_tiny.ckpt"))
        torch.save({"x": x, "z": z, "reconstruction": x_hat}, os.path.join(out, f"{kind}_tiny_expected.pt"))
        with open(os.path.join(out, f"{kind}_tiny.json"), "w") as f:
            json.dump(config, f, indent=1)
    print("torch", torch.__version__, "wrote", sorted(os.listdir(out)), file=sys.stderr)


if __name__ == "__main__":
    main()
