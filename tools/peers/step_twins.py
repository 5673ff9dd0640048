#!/usr/bin/python3
"""Whole training steps of PyTorch twins of loom's registered models, timed as `loom bench train MODEL`
times loom's (issue #15; docs/results/training-speed.md): the same networks, optimizer, batch and data,
the median of --steps steps after --warmup, each step drawing its batch, running forward, backward and
every optimizer update, and reading its losses back as numbers. Prints `loom bench train --json`'s row.

    /usr/bin/python3 tools/peers/step_twins.py vae|classifier|nade|aae|gan|cgan|dcgan --threads 1 --steps 20

tools/peers/bench_train.sh runs it interleaved with loom and prints the ratio. Run with Debian's
python3-torch (`/usr/bin/python3`) and libopenblas0-pthread, OPENBLAS_CORETYPE set as loom sets it.
"""
import argparse
import json
import resource
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import gan_twin


def vae_step(args):
    """models/vae/vae.cpp, --arch mlp: encoder 784-400-2z (ReLU; μ and log σ² the two halves), decoder
    z-400-784 Bernoulli logits, the ELBO with the closed-form KL (one draw), Adam(1e-3, 0.9, 0.999);
    the batch dynamically binarized (models/data: binarize, drawn per batch as loom's loader does)."""
    z = args.latent_dim
    enc = nn.Sequential(nn.Flatten(), nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 2 * z))
    dec = nn.Sequential(nn.Linear(z, 400), nn.ReLU(), nn.Linear(400, 784))
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-3)

    def step(x, _):
        x = torch.bernoulli(x).flatten(1)
        mu, log_var = enc(x).chunk(2, 1)
        kl = 0.5 * (mu.pow(2) + log_var.exp() - 1 - log_var).sum(1)
        logits = dec(mu + (0.5 * log_var).exp() * torch.randn_like(mu))
        log_px_z = (x * logits - F.softplus(logits)).sum(1)
        loss = -(log_px_z - kl).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item(), kl.mean().item()
    return step, False


def classifier_step(args):
    """models/classifier/classifier.cpp: conv3×3(1→32)·ReLU·maxpool2 → conv3×3(32→64)·ReLU·maxpool2 →
    linear(3136→128)·ReLU → linear(128→10), cross-entropy, Adam(1e-3, 0.9, 0.999); the step also reads
    the batch accuracy back, as loom's does."""
    net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step(x, y):
        logits = net(x * 2 - 1)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            return loss.item(), (logits.argmax(1) == y).float().mean().item()
    return step, True


def nade_step(args):
    """models/likelihood/nade.cpp: W [H, n], V [n, H] uniform in [−1/n, 1/n], b, c zero, H = 500; all n
    conditionals at once through the exclusive prefix sum of x_j W_{:,j} along the pixels ([B, n, H]);
    Adam(1e-3) on the mean NLL; the batch dynamically binarized."""
    n, h = 784, args.hidden_nade
    W = nn.Parameter(torch.empty(h, n).uniform_(-1 / n, 1 / n))
    V = nn.Parameter(torch.empty(n, h).uniform_(-1 / n, 1 / n))
    b, c = nn.Parameter(torch.zeros(n)), nn.Parameter(torch.zeros(h))
    opt = torch.optim.Adam([W, V, b, c], lr=1e-3)

    def step(x, _):
        x = torch.bernoulli(x).flatten(1)
        x_prev = F.pad(x[:, :-1], (1, 0))
        w_prev = F.pad(W.t()[:-1], (0, 0, 1, 0))
        a = torch.cumsum(x_prev.unsqueeze(2) * w_prev, 1) + c
        logits = (torch.sigmoid(a) * V).sum(2) + b
        loss = -(x * logits - F.softplus(logits)).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return step, False


def aae_step(args):
    """models/gan/aae.cpp at its defaults: encoder 784-h-h-2, decoder 2-h-h-784, code discriminator 2-h-h-1
    (ReLU, h = 1000), N(0, I) prior; the three phases of each step: reconstruction (summed BCE per image,
    Adam(1e-3, 0.5) on encoder and decoder), the discriminator on prior draws against detached codes, the
    encoder as its generator (non-saturating), both Adam(1e-3, 0.5); binarized batches."""
    h, z = args.hidden_aae, 2
    relu_mlp = lambda sizes: nn.Sequential(*[m for i in range(len(sizes) - 1) for m in
                                            ([nn.Linear(sizes[i], sizes[i + 1])] + ([nn.ReLU()] if i + 2 < len(sizes) else []))])
    enc, dec, D = relu_mlp([784, h, h, z]), relu_mlp([z, h, h, 784]), relu_mlp([z, h, h, 1])
    ae = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-3, betas=(0.5, 0.999))
    od = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    og = torch.optim.Adam(enc.parameters(), lr=1e-3, betas=(0.5, 0.999))

    def descend(opt, loss):
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    def step(x, _):
        x = torch.bernoulli(x).flatten(1)
        recon = descend(ae, F.binary_cross_entropy_with_logits(dec(enc(x)), x, reduction="sum") / x.shape[0])
        with torch.no_grad():
            codes = enc(x)
        prior_logits, code_logits = D(torch.randn(x.shape[0], z)).view(-1), D(codes).view(-1)
        d_loss = descend(od, F.softplus(-prior_logits).mean() + F.softplus(code_logits).mean())
        with torch.no_grad():
            torch.sigmoid(prior_logits).mean().item(), torch.sigmoid(code_logits).mean().item()
        g_loss = descend(og, F.softplus(-D(enc(x)).view(-1)).mean())
        return recon, d_loss, g_loss
    return step, False


STEPS = {"vae": vae_step, "classifier": classifier_step, "nade": nade_step, "aae": aae_step}


def bench(args):
    """The row `loom bench train MODEL --json` prints, for the twin: the median of args.steps steps after
    args.warmup, quartiles, images per second, peak RSS (the data set included)."""
    torch.manual_seed(args.seed)
    times = []
    total, args.steps = args.steps, args.warmup + args.steps
    if args.model in STEPS:
        step, _ = STEPS[args.model](args)
        images, labels = gan_twin.fashion("train")
        for started, x, y in gan_twin.batches(images, labels, args.batch_size, args.steps):
            step(x, y)
            times.append(time.perf_counter() - started)
    else:  # the adversarial twins' own loop, which times its steps the same way
        G, D, generate, discriminate, conditioned, detach = gan_twin.build(args)
        gan_twin.train(args, G, D, generate, discriminate, conditioned, detach, on_step=times.append)
    t = np.array(times[args.warmup:]) * 1e3
    median = float(np.median(t))
    return {"model": "torch " + args.model, "device": "cpu", "threads": torch.get_num_threads(),
            "batch_size": args.batch_size, "warmup": args.warmup, "steps": total, "median_ms": median,
            "q1_ms": float(np.quantile(t, 0.25)), "q3_ms": float(np.quantile(t, 0.75)), "min_ms": float(t.min()),
            "images_per_s": args.batch_size / (median / 1e3),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", choices=sorted(STEPS) + ["gan", "cgan", "dcgan"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    # the adversarial twins' options (tools/peers/gan_twin.py), at loom's defaults; vae's latent size
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--latent-dim", type=int, default=None, help="default: loom's (vae 20, the GANs 100)")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--b1", type=float, default=0.5)
    p.add_argument("--hidden-nade", type=int, default=500, help="nade's H")
    p.add_argument("--hidden-aae", type=int, default=1000, help="aae's h")
    args = p.parse_args()
    if args.latent_dim is None:
        args.latent_dim = 20 if args.model == "vae" else 100
    torch.set_num_threads(args.threads)
    print(json.dumps(bench(args)))


if __name__ == "__main__":
    main()
