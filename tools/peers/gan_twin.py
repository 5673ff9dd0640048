#!/usr/bin/python3
"""PyTorch twins of loom's adversarial models, for docs/results/gan.md: the same
architecture, optimizer, batch and number of steps as `loom train MODEL`, judged
in the same feature space (loom's classifier, read from its safetensors
checkpoint) with an independent Fréchet distance (numpy + scipy.linalg.sqrtm).

    /usr/bin/python3 tools/peers/gan_twin.py gan|cgan|dcgan --steps 3000 --classifier out/classifier/checkpoint.safetensors

Run with Debian's python3-torch (`/usr/bin/python3`) and libopenblas0-pthread.
Prints one JSON line: model, steps, seconds, fd (and for cgan the label accuracy:
the classifier's agreement with the requested class, samples cycling 0, 1, ..., 9).
Timing whole steps against `loom bench train` is tools/peers/step_twins.py's, on these networks.
"""
import argparse
import gzip
import json
import os
import struct
import time

import numpy as np
import scipy.linalg
import torch
import torch.nn as nn
import torch.nn.functional as F

FASHION = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """An IDX file (gzipped or not) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion(split):
    prefix = "train" if split == "train" else "t10k"
    for ext in ("", ".gz"):
        p = os.path.join(FASHION, f"{prefix}-images-idx3-ubyte{ext}")
        if os.path.exists(p):
            images = read_idx(p)
            labels = read_idx(os.path.join(FASHION, f"{prefix}-labels-idx1-ubyte{ext}"))
            return torch.tensor(images, dtype=torch.float32).div(255).unsqueeze(1), torch.tensor(labels, dtype=torch.int64)
    raise FileNotFoundError(f"no Fashion-MNIST {split} images under {FASHION}")


def read_safetensors(path):
    """name -> numpy array, from the safetensors layout: u64 header size, JSON header, data."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out


class Classifier(nn.Module):
    """models/classifier/classifier.h: conv3x3(1→32)·ReLU·pool → conv3x3(32→64)·ReLU·pool → linear(3136→128)·ReLU
    = features → linear(128→10), with the weights of loom's checkpoint (tensors model.net.*)."""

    def __init__(self, weights):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 32, 3, padding=1), nn.Conv2d(32, 64, 3, padding=1)
        self.fc, self.head = nn.Linear(3136, 128), nn.Linear(128, 10)
        t = lambda k: torch.tensor(weights[k].copy())
        with torch.no_grad():
            for mod, name in ((self.c1, "body.0"), (self.c2, "body.3"), (self.fc, "body.7"), (self.head, "head")):
                mod.weight.copy_(t(f"model.net.{name}.weight"))
                mod.bias.copy_(t(f"model.net.{name}.bias"))

    def features(self, x):  # x in [-1, 1], [N, 1, 28, 28]
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return F.relu(self.fc(x.flatten(1)))


def frechet(a, b):
    """Heusel et al. 2017: ‖μa − μb‖² + Tr(Σa + Σb − 2(Σa Σb)^½), in float64."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(ca @ cb).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * root))


def judge(classifier_path, samples01, n, labels_requested=None):
    """FD between samples in [0, 1] [N, 1, 28, 28] and the first n test images, the
    classifier's accuracy on those test images (which must equal `loom eval classifier`'s:
    the check that the weights were read right), and with labels_requested the fraction of
    samples it assigns to their requested class (None without)."""
    clf = Classifier(read_safetensors(classifier_path)).eval()
    test, labels = fashion("test")
    with torch.no_grad():
        real = torch.cat([clf.features(test[i:i + 500] * 2 - 1) for i in range(0, n, 500)])
        fake = torch.cat([clf.features(samples01[i:i + 500] * 2 - 1) for i in range(0, n, 500)])
        accuracy = (clf.head(real).argmax(1) == labels[:n]).double().mean().item()
        label_accuracy = None if labels_requested is None else \
            (clf.head(fake).argmax(1) == labels_requested[:n]).double().mean().item()
    return frechet(fake.numpy(), real.numpy()), accuracy, label_accuracy


def mlp(sizes, activation=lambda: nn.LeakyReLU(0.2)):
    """nn::mlp: linear layers of the given sizes with activation() between them (LeakyReLU(0.2), as
    models/gan/gan.cpp builds G and D, unless given)."""
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(activation())
    return nn.Sequential(*layers)


def adam(params, lr, b1=0.9, b2=0.999):
    """torch.optim.Adam with loom's optim::Adam's defaults (eps 1e-8, no weight decay)."""
    return torch.optim.Adam(params, lr=lr, betas=(b1, b2))


def dcgan_init(*modules):
    """gan::dcgan_init, the DCGAN paper's §4: conv and linear weights ~ N(0, 0.02), batch-norm scales
    ~ N(1, 0.02), biases 0."""
    for m in (m for root in modules for m in root.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1 if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) else 0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def train(args, G, D, generate, discriminate, conditioned, detach_d_fake=True, on_step=None):
    """The step of models/gan/*.cpp: one D update on a data batch against G's samples
    (detached), then one G update with the non-saturating loss −log D(G(z)): on fresh noise
    (gan, cgan) or, with detach_d_fake False, on the same G(z) through the updated D (dcgan,
    as the PyTorch DCGAN example). on_step(seconds) gets each step's wall time, as
    `loom bench train` times it: drawing the batch, both updates, reading the losses.
    Returns the training seconds."""
    od, og = adam(D.parameters(), args.lr, args.b1), adam(G.parameters(), args.lr, args.b1)
    images, labels = fashion("train")
    images = images * 2 - 1
    start = time.perf_counter()
    for started, x, y in batches(images, labels, args.batch_size, args.steps):
        y = y if conditioned else None
        fake = generate(torch.randn(x.shape[0], args.latent_dim), y)
        d_loss = F.softplus(-discriminate(x, y)).mean() + F.softplus(discriminate(fake.detach(), y)).mean()
        od.zero_grad()
        d_loss.backward()
        od.step()
        if detach_d_fake:
            fake = generate(torch.randn(x.shape[0], args.latent_dim), y)
        g_loss = F.softplus(-discriminate(fake, y)).mean()
        og.zero_grad()
        g_loss.backward()
        og.step()
        d_loss.item(), g_loss.item()  # loom's step returns its losses as numbers
        if on_step:
            on_step(time.perf_counter() - started)
    return time.perf_counter() - start


def batches(images, labels, batch_size, steps):
    """(the time the step began, images, labels) for `steps` steps of shuffled full batches, epoch after
    epoch, as loom's DataLoader serves them; the clock starts before the batch is drawn, as in
    `loom bench train`."""
    step, per_epoch = 0, images.shape[0] // batch_size
    while step < steps:
        order = torch.randperm(images.shape[0])
        for b in range(min(per_epoch, steps - step)):
            started = time.perf_counter()
            idx = order[b * batch_size:(b + 1) * batch_size]
            yield started, images[idx], labels[idx]
            step += 1


def build(args):
    """(G, D, generate(z, y) -> images in [−1, 1] [B, 1, 28, 28], discriminate(x, y) -> logits [B],
    conditioned, detach) of loom's MODEL: models/gan/gan.cpp (G z-h-2h-4h-784 tanh, D 784-2h-h-1),
    cgan.cpp (the same with one-hot y concatenated to z and to x) or dcgan.cpp at 28×28 (G: z as
    1×1 → 7×7 transposed conv to 2f, BN, ReLU → 4×4/2 to f, BN, ReLU → 4×4/2 to 1, tanh; D mirrored with
    LeakyReLU 0.2, no BN on its input layer, a 7×7 conv to the logit; no biases; N(0, 0.02) weights)."""
    h, latent = args.hidden, args.latent_dim
    if args.model in ("gan", "cgan"):
        extra = 10 if args.model == "cgan" else 0
        G, D = mlp([latent + extra, h, 2 * h, 4 * h, 784]), mlp([784 + extra, 2 * h, h, 1])
        cat = (lambda t, y: torch.cat([t, F.one_hot(y, 10).float()], 1)) if extra else (lambda t, y: t)
        generate = lambda z, y: torch.tanh(G(cat(z, y))).view(-1, 1, 28, 28)
        discriminate = lambda x, y: D(cat(x.flatten(1), y)).view(-1)
        return G, D, generate, discriminate, bool(extra), True
    f = args.features
    G = nn.Sequential(nn.ConvTranspose2d(latent, 2 * f, 7, bias=False), nn.BatchNorm2d(2 * f), nn.ReLU(),
                      nn.ConvTranspose2d(2 * f, f, 4, 2, 1, bias=False), nn.BatchNorm2d(f), nn.ReLU(),
                      nn.ConvTranspose2d(f, 1, 4, 2, 1, bias=False), nn.Tanh())
    D = nn.Sequential(nn.Conv2d(1, f, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
                      nn.Conv2d(f, 2 * f, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * f), nn.LeakyReLU(0.2),
                      nn.Conv2d(2 * f, 1, 7, bias=False))
    dcgan_init(G, D)
    return G, D, lambda z, y: G(z.view(-1, latent, 1, 1)), lambda x, y: D(x).view(-1), False, False


def train_model(args):
    """Trains the twin of args.model; returns (seconds, samples in [0, 1] [n, 1, 28, 28], their requested labels or None)."""
    torch.manual_seed(args.seed)
    G, D, generate, discriminate, conditioned, detach = build(args)
    seconds = train(args, G, D, generate, discriminate, conditioned, detach)
    G.eval()  # batch norm's running statistics, as loom samples
    labels = torch.arange(args.n) % 10 if conditioned else None
    with torch.no_grad():
        samples = torch.cat([(generate(torch.randn(min(500, args.n - i), args.latent_dim),
                                       None if labels is None else labels[i:i + 500]) + 1) / 2
                             for i in range(0, args.n, 500)])
    return seconds, samples, labels


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", choices=["gan", "cgan", "dcgan"])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--features", type=int, default=64, help="dcgan's f (ngf = ndf)")
    p.add_argument("--latent-dim", type=int, default=100)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--b1", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("-n", type=int, default=10000, help="samples (and test images) for the FD")
    p.add_argument("--classifier", default="out/classifier/checkpoint.safetensors")
    p.add_argument("--samples", help="a .npy to save the samples to (or, when it exists, to judge instead of training)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.samples and os.path.exists(args.samples):  # judge the samples of an earlier run
        seconds, samples = None, torch.tensor(np.load(args.samples))
        labels = torch.arange(args.n) % 10 if args.model == "cgan" else None
    else:
        seconds, samples, labels = train_model(args)
        if args.samples:
            np.save(args.samples, samples.numpy())
    fd, accuracy, label_accuracy = judge(args.classifier, samples, args.n, labels)
    out = {"model": "torch " + args.model, "steps": args.steps, "seconds": seconds and round(seconds, 1),
           "threads": args.threads, "fd": fd, "classifier_test_accuracy": accuracy}
    if label_accuracy is not None:
        out["label_accuracy"] = label_accuracy
    print(json.dumps(out))

if __name__ == "__main__":
    main()
