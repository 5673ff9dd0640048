#!/usr/bin/python3
"""PyTorch twins of loom's adversarial models, for docs/results/gan.md: the same
architecture, optimizer, batch and number of steps as `loom train MODEL`, judged
in the same feature space (loom's classifier, read from its safetensors
checkpoint) with an independent Fréchet distance (numpy + scipy.linalg.sqrtm).

    /usr/bin/python3 tools/peers/gan_twin.py gan|cgan|dcgan|aae|infogan --steps 3000 --classifier out/classifier/checkpoint.safetensors

aae trains as `loom train aae --prior mixture --hidden 256` (the results row's; loom's
defaults are the N(0, I) prior and h 1000): its samples are the decoder's Bernoulli means
of prior draws, as `loom eval aae` judges them. infogan trains at loom's defaults.

Run with Debian's python3-torch (`/usr/bin/python3`) and libopenblas0-pthread, with
OPENBLAS_NUM_THREADS equal to --threads: OpenBLAS otherwise starts a thread per core when torch loads
it, and on a busy machine they fight torch's own (a 25 ms transposed convolution took 2 s).
Prints one JSON line: model, steps, seconds, fd, and for cgan the label accuracy
(the classifier's agreement with the requested class, samples cycling 0, 1, ..., 9),
for infogan the code accuracy (the same with c₁ cycling 0, ..., 9 in place of the class,
after the best one-to-one matching of codes to classes, as `loom eval infogan` reports;
loom draws its FD samples' c₁ at random and its code samples apart, 1 000 per code).
Timing whole steps against `loom bench train` is tools/peers/step_twins.py's, on these networks.
"""
import argparse
import gzip
import json
import math
import os
import struct
import time

import numpy as np
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
            # On the host whatever the default device (batches() moves each batch, as loom's loader does).
            return (torch.tensor(images, dtype=torch.float32, device="cpu").div(255).unsqueeze(1),
                    torch.tensor(labels, dtype=torch.int64, device="cpu"))
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
    import scipy.linalg  # here, not at the top: step_twins.py imports the networks and needs only torch
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(ca @ cb).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * root))


def judge(classifier_path, samples01, n):
    """(FD between samples in [0, 1] [N, 1, 28, 28] and the first n test images, the classifier's accuracy on
    those test images (which must equal `loom eval classifier`'s: the check that the weights were read
    right), the class it assigns each sample (int64 [n]))."""
    clf = Classifier(read_safetensors(classifier_path)).eval()
    test, labels = fashion("test")
    with torch.no_grad():
        real = torch.cat([clf.features(test[i:i + 500] * 2 - 1) for i in range(0, n, 500)])
        fake = torch.cat([clf.features(samples01[i:i + 500] * 2 - 1) for i in range(0, n, 500)])
        accuracy = (clf.head(real).argmax(1) == labels[:n]).double().mean().item()
        classes = clf.head(fake).argmax(1)
    return frechet(fake.numpy(), real.numpy()), accuracy, classes


def matched_accuracy(codes, classes, k=10):
    """The fraction of samples whose class equals their code after the best one-to-one matching of the k
    codes to the k classes (the assignment problem, scipy.optimize.linear_sum_assignment), as
    models/metrics.h's matched_accuracy scores InfoGAN's c₁ (Chen et al. 2016, §5.1)."""
    import scipy.optimize
    counts = np.zeros((k, k))
    np.add.at(counts, (np.asarray(codes), np.asarray(classes)), 1)
    rows, cols = scipy.optimize.linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(codes))


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


def descend(opt, loss):
    """One update of opt's parameters on loss; the loss read back as a number, as loom's steps report it."""
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def parameters(*modules):
    """The trainable tensors of modules (nn.Module or lists of tensors), for the row's parameter count."""
    return [p for m in modules for p in (m.parameters() if isinstance(m, nn.Module) else m)]


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
    `loom bench train`. The batches go to the default device (step_twins.py --device), drawn from
    the host."""
    step, per_epoch = 0, images.shape[0] // batch_size
    device = torch.empty(0).device  # the default device; torch.get_default_device is PyTorch >= 2.3 only
    while step < steps:
        order = torch.randperm(images.shape[0], device=images.device)
        for b in range(min(per_epoch, steps - step)):
            started = time.perf_counter()
            idx = order[b * batch_size:(b + 1) * batch_size]
            yield started, images[idx].to(device), labels[idx].to(device)
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


def aae_prior(prior, n, dim):
    """n draws [n, dim] from models/gan/aae.cpp's sample_aae_prior: "gaussian" N(0, I); "mixture" (dim 2)
    the ring of AaeMixture, component k ~ U{0, …, 9} and (a, b) ~ N(0, diag(0.5², 0.05²)) rotated by
    θ_k = 2πk/10 after a shift of 1.4 along the ray: ten petals that meet near the origin."""
    if prior == "gaussian":
        return torch.randn(n, dim)
    theta = torch.randint(10, (n,)) * (2 * math.pi / 10)
    e = torch.randn(n, 2)
    a, b = 0.5 * e[:, 0] + 1.4, 0.05 * e[:, 1]
    return torch.stack([theta.cos() * a - theta.sin() * b, theta.sin() * a + theta.cos() * b], 1)


def aae(hidden=1000, prior="gaussian", latent=2):
    """models/gan/aae.cpp (at its defaults: h 1000, the N(0, I) prior, latent 2): encoder 784-h-h-d,
    decoder d-h-h-784, code discriminator d-h-h-1 (ReLU); the three phases of each step: reconstruction
    (summed BCE per image, Adam(1e-3, 0.5) on encoder and decoder), the discriminator on prior draws
    against detached codes, the encoder as its generator (non-saturating), both Adam(1e-3, 0.5);
    binarized batches. Returns (step(x in [0, 1] [B, 1, 28, 28], y) -> the losses, the trainable
    parameters, sample(n) -> the decoder's Bernoulli means σ(f(z)) of n prior draws [n, 1, 28, 28],
    which is what `loom sample aae` and `loom eval aae` give)."""
    h, z = hidden, latent
    if prior != "gaussian" and z != 2:
        raise ValueError(f"aae: the {prior} prior is 2-D and needs --latent-dim 2, got {z}")
    enc, dec, D = mlp([784, h, h, z], nn.ReLU), mlp([z, h, h, 784], nn.ReLU), mlp([z, h, h, 1], nn.ReLU)
    ae = adam(parameters(enc, dec), 1e-3, 0.5)
    od, og = adam(D.parameters(), 1e-3, 0.5), adam(enc.parameters(), 1e-3, 0.5)

    def step(x, _):
        x = torch.bernoulli(x).flatten(1)
        recon = descend(ae, F.binary_cross_entropy_with_logits(dec(enc(x)), x, reduction="sum") / x.shape[0])
        with torch.no_grad():
            codes = enc(x)
        prior_logits, code_logits = D(aae_prior(prior, x.shape[0], z)).view(-1), D(codes).view(-1)
        d_loss = descend(od, F.softplus(-prior_logits).mean() + F.softplus(code_logits).mean())
        with torch.no_grad():
            torch.sigmoid(prior_logits).mean().item(), torch.sigmoid(code_logits).mean().item()
        g_loss = descend(og, F.softplus(-D(enc(x)).view(-1)).mean())
        return recon, d_loss, g_loss

    def sample(n):
        with torch.no_grad():
            return torch.sigmoid(dec(aae_prior(prior, n, z))).view(-1, 1, 28, 28)
    return step, parameters(enc, dec, D), sample


def infogan(latent=62, w=64):
    """models/gan/infogan.cpp (at its defaults: w 64, z of 62, c₁ ~ Cat(10), c₂, c₃ ~ U(−1, 1), λ 1, σ of
    Q fixed at 1): G FC 74→16w·BN·ReLU → FC 2w·7·7·BN·ReLU → 4×4/2 upconv w·BN·ReLU → 4×4/2 upconv 1·tanh;
    trunk 4×4/2 conv w·lReLU → 4×4/2 conv 2w·BN·lReLU → FC 16w·BN·lReLU, D head FC 1, Q head
    FC 2w·BN·lReLU → FC 12 (layers before a BN without bias); DCGAN init; D and Q descend −V − L_I on
    the data and detached fakes (Adam 2e-4, 0.5), then G −log D(G(z, c)) − L_I through the updated D and Q
    (Adam 1e-3, 0.5); six losses read back. Returns (step(x in [0, 1] [B, 1, 28, 28], y) -> the losses,
    the trainable parameters, sample(c₁ int64 [n]) -> G(z, c) mapped from [−1, 1] to [0, 1], z, c₂ and c₃
    drawn from their priors, G in eval mode (batch norm's running statistics, as loom samples))."""
    G = nn.Sequential(nn.Linear(latent + 12, 16 * w, bias=False), nn.BatchNorm1d(16 * w), nn.ReLU(),
                      nn.Linear(16 * w, 2 * w * 49, bias=False), nn.BatchNorm1d(2 * w * 49), nn.ReLU(),
                      nn.Unflatten(1, (2 * w, 7, 7)),
                      nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                      nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh())
    trunk = nn.Sequential(nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),
                          nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
                          nn.Flatten(), nn.Linear(2 * w * 49, 16 * w, bias=False), nn.BatchNorm1d(16 * w),
                          nn.LeakyReLU(0.2))
    d_head = nn.Linear(16 * w, 1)
    q_head = nn.Sequential(nn.Linear(16 * w, 2 * w, bias=False), nn.BatchNorm1d(2 * w), nn.LeakyReLU(0.2),
                           nn.Linear(2 * w, 12))
    dcgan_init(G, trunk, d_head, q_head)
    og, od = adam(G.parameters(), 1e-3, 0.5), adam(parameters(trunk, d_head, q_head), 2e-4, 0.5)
    log_var = torch.zeros(1)  # Q's fixed σ = 1

    def generate(cat, cont):  # G(z, c), z drawn here
        return G(torch.cat([torch.randn(cat.shape[0], latent), F.one_hot(cat, 10).float(), cont], 1))

    def information(features, cat, cont):  # (λ-weighted L_I, L_I(c₁)): gan::*_information
        q = q_head(features)
        categorical = math.log(10) - F.cross_entropy(q[:, :10], cat)
        log_q = -0.5 * ((log_var + math.log(2 * math.pi)) + (cont - q[:, 10:]).square() * torch.exp(-log_var))
        return categorical + log_q.sum(1).mean() + 2 * math.log(2), categorical

    def step(x, _):
        x = x * 2 - 1
        b = x.shape[0]
        cat, cont = torch.randint(10, (b,)), torch.rand(b, 2) * 2 - 1
        fake = generate(cat, cont)
        real_logits = d_head(trunk(x)).view(-1)
        fake_features = trunk(fake.detach())
        fake_logits = d_head(fake_features).view(-1)
        d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        descend(od, d_loss - information(fake_features, cat, cont)[0])
        features = trunk(fake)
        g_loss = F.softplus(-d_head(features).view(-1)).mean()
        info, info_cat = information(features, cat, cont)
        descend(og, g_loss - info)
        with torch.no_grad():
            return (d_loss.item(), g_loss.item(), info.item(), info_cat.item(),
                    torch.sigmoid(real_logits).mean().item(), torch.sigmoid(fake_logits).mean().item())

    def sample(cat):
        G.eval()
        with torch.no_grad():
            return (generate(cat, torch.rand(cat.shape[0], 2) * 2 - 1) + 1) / 2
    return step, parameters(G, trunk, d_head, q_head), sample


# The twins trained by their step builders (the others by train()).
STEP_TWINS = {"aae": lambda args: aae(args.hidden, args.prior, args.latent_dim),
              "infogan": lambda args: infogan(args.latent_dim, args.width)}


def train_steps(args, step):
    """args.steps calls of step(x, y) on the batches of the training set (images in [0, 1]); the seconds."""
    images, labels = fashion("train")
    start = time.perf_counter()
    for _, x, y in batches(images, labels, args.batch_size, args.steps):
        step(x, y)
    return time.perf_counter() - start


def requested(model, n):
    """The class (cgan) or categorical code (infogan) sample i asks for, i % 10 (n [n] int64), or None."""
    return torch.arange(n) % 10 if model in ("cgan", "infogan") else None


def train_model(args):
    """Trains the twin of args.model; returns (seconds, args.n samples in [0, 1] [n, 1, 28, 28]), drawn in
    chunks of 500 after training, sample i of cgan and infogan asking for requested(model, n)[i]."""
    torch.manual_seed(args.seed)
    if args.model in STEP_TWINS:
        step, _, sample = STEP_TWINS[args.model](args)
        seconds = train_steps(args, step)
        draw = (lambda y, b: sample(y)) if args.model == "infogan" else lambda y, b: sample(b)
    else:
        G, D, generate, discriminate, conditioned, detach = build(args)
        seconds = train(args, G, D, generate, discriminate, conditioned, detach)
        G.eval()  # batch norm's running statistics, as loom samples
        draw = lambda y, b: (generate(torch.randn(b, args.latent_dim), y) + 1) / 2
    wanted = requested(args.model, args.n)
    with torch.no_grad():
        return seconds, torch.cat([draw(None if wanted is None else wanted[i:i + 500], min(500, args.n - i))
                                   for i in range(0, args.n, 500)])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", choices=["gan", "cgan", "dcgan", "aae", "infogan"])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hidden", type=int, default=256, help="gan's and cgan's h; aae's h (loom's default 1000: "
                   "256 is the results row's)")
    p.add_argument("--features", type=int, default=64, help="dcgan's f (ngf = ndf)")
    p.add_argument("--width", type=int, default=64, help="infogan's w")
    p.add_argument("--prior", choices=["gaussian", "mixture"], default="mixture",
                   help="aae's p(z) (loom's default gaussian: mixture is the results row's)")
    p.add_argument("--latent-dim", type=int, default=None, help="default: loom's (aae 2, infogan 62, the others 100)")
    p.add_argument("--lr", type=float, default=2e-4, help="gan, cgan, dcgan (aae and infogan: loom's defaults)")
    p.add_argument("--b1", type=float, default=0.5, help="gan, cgan, dcgan (aae and infogan: loom's defaults)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("-n", type=int, default=10000, help="samples (and test images) for the FD")
    p.add_argument("--classifier", default="out/classifier/checkpoint.safetensors")
    p.add_argument("--samples", help="a .npy to save the samples to (or, when it exists, to judge instead of training)")
    args = p.parse_args()
    if args.latent_dim is None:
        args.latent_dim = {"aae": 2, "infogan": 62}.get(args.model, 100)
    torch.set_num_threads(args.threads)
    if args.samples and os.path.exists(args.samples):  # judge the samples of an earlier run
        seconds, samples = None, torch.tensor(np.load(args.samples))
    else:
        seconds, samples = train_model(args)
        if args.samples:
            np.save(args.samples, samples.numpy())
    fd, accuracy, classes = judge(args.classifier, samples, args.n)
    out = {"model": "torch " + args.model, "steps": args.steps, "seconds": seconds and round(seconds, 1),
           "threads": args.threads, "fd": fd, "classifier_test_accuracy": accuracy}
    wanted = requested(args.model, args.n)
    if args.model == "cgan":
        out["label_accuracy"] = (classes == wanted).double().mean().item()
    if args.model == "infogan":
        out["code_accuracy"] = matched_accuracy(wanted, classes)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
