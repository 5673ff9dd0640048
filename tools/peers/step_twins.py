#!/usr/bin/python3
"""Whole training steps of PyTorch twins of loom's registered models, timed as `loom bench train MODEL`
times loom's (issue #15; docs/results/training-speed.md): the same networks, optimizer, batch and data,
the median of --steps steps after --warmup, each step drawing its batch, running forward, backward and
every optimizer update, and reading its losses back as numbers. Prints `loom bench train --json`'s row.

    /usr/bin/python3 tools/peers/step_twins.py MODEL --threads 1 --steps 20

MODEL: vae, classifier, bernoulli, markov, nade, pixelcnn, pixelrnn, aae, infogan, text2image, cyclegan,
progan, ddpm, stargan, puzzlegan, gan, cgan, dcgan, each at loom's default options and batch size 64 (the networks
of the adversarial ones, aae and infogan included, are tools/peers/gan_twin.py's, which trains them to an
FD). The row adds the twin's trainable parameter count.

On a GPU (issue #15's GPU rows): --device cuda runs the twin on the card (PyTorch >= 2.0: its default
device is set, so every module and random draw lands there; batches are drawn on the host and copied, as
loom's are), and --compile compiles every network the step calls (compile_networks; PyTorch >= 2.2); the row adds
how many, and on a GPU the device allocator's peak. --data DIR reads Fashion-MNIST from DIR.

tools/peers/bench_train.sh runs it interleaved with loom and prints the ratio. Run with Debian's
python3-torch (`/usr/bin/python3`) and libopenblas0-pthread, OPENBLAS_CORETYPE set as loom sets it and
OPENBLAS_NUM_THREADS as --threads (bench_train.sh sets both; see tools/peers/gan_twin.py).
"""
import argparse
import json
import math
import resource
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import gan_twin


mlp, adam, descend, parameters = gan_twin.mlp, gan_twin.adam, gan_twin.descend, gan_twin.parameters


def vae_step(args):
    """models/vae/vae.cpp, --arch mlp: encoder 784-400-2z (ReLU; μ and log σ² the two halves), decoder
    z-400-784 Bernoulli logits, the ELBO with the closed-form KL (one draw), Adam(1e-3, 0.9, 0.999);
    the batch dynamically binarized (models/data: binarize, drawn per batch as loom's loader does)."""
    z = args.latent_dim
    enc = mlp([784, 400, 2 * z], nn.ReLU)
    dec = mlp([z, 400, 784], nn.ReLU)
    opt = adam(parameters(enc, dec), 1e-3)

    def step(x, _):
        x = torch.bernoulli(x).flatten(1)
        mu, log_var = enc(x).chunk(2, 1)
        kl = 0.5 * (mu.pow(2) + log_var.exp() - 1 - log_var).sum(1)
        logits = dec(mu + (0.5 * log_var).exp() * torch.randn_like(mu))
        log_px_z = (x * logits - F.softplus(logits)).sum(1)
        return descend(opt, -(log_px_z - kl).mean()), kl.mean().item()
    return step, parameters(enc, dec)


def classifier_step(args):
    """models/classifier/classifier.cpp: conv3×3(1→32)·ReLU·maxpool2 → conv3×3(32→64)·ReLU·maxpool2 →
    linear(3136→128)·ReLU → linear(128→10), cross-entropy, Adam(1e-3, 0.9, 0.999); the step also reads
    the batch accuracy back, as loom's does."""
    net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = adam(net.parameters(), 1e-3)

    def step(x, y):
        logits = net(x * 2 - 1)
        loss = descend(opt, F.cross_entropy(logits, y))
        with torch.no_grad():
            return loss, (logits.argmax(1) == y).float().mean().item()
    return step, parameters(net)


def bernoulli_log_likelihood(x, logits):
    """likelihood.h's Σ_j log σ(s_j z_j) = −Σ_j softplus(−s_j z_j), s = 2x − 1, over the last axis."""
    return -F.softplus(-(2 * x - 1) * logits).sum(-1)


def bernoulli_step(args):
    """models/likelihood/bernoulli.cpp, --fit gd: one logit per pixel (784, float64, from zero), the mean
    NLL of the binarized batch, Adam(3e-2, 0.9, 0.999)."""
    logits = nn.Parameter(torch.zeros(1, 784, dtype=torch.float64))
    opt = adam([logits], 3e-2)

    def step(x, _):
        x = torch.bernoulli(x).flatten(1).double()
        return descend(opt, -bernoulli_log_likelihood(x, logits).mean())
    return step, [logits]


def markov_step(args):
    """models/likelihood/markov.cpp, --fit gd: p(x_1) and p(x_i | x_{i−1}) in raster order, the logits
    `first` [1] and `cond` [783, 2] (float64, from zero), the mean NLL of the binarized batch,
    Adam(3e-2, 0.9, 0.999)."""
    first = nn.Parameter(torch.zeros(1, dtype=torch.float64))
    cond = nn.Parameter(torch.zeros(783, 2, dtype=torch.float64))
    opt = adam([first, cond], 3e-2)

    def step(x, _):
        x = torch.bernoulli(x).flatten(1).double()
        prev = x[:, :-1]
        theta = prev * cond[:, 1] + (1 - prev) * cond[:, 0]  # θ_{i, x_{i−1}}
        log_p = bernoulli_log_likelihood(x[:, :1], first) + bernoulli_log_likelihood(x[:, 1:], theta)
        return descend(opt, -log_p.mean())
    return step, [first, cond]


class MaskedConv2d(nn.Conv2d):
    """nn::MaskedConv2d, one colour group: a k×k convolution (padding k/2) whose weight is multiplied by
    the mask each forward: rows above the centre and the centre row left of it open, the centre open
    for type B only."""

    def __init__(self, c_in, c_out, k, mask_type):
        super().__init__(c_in, c_out, k, padding=k // 2)
        mask = torch.zeros(k, k)
        mask[:k // 2] = 1
        mask[k // 2, :k // 2 + (mask_type == "B")] = 1
        self.register_buffer("mask", mask.expand_as(self.weight).clone())

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class PixelNet(nn.Module):
    """models/likelihood/pixel_net.cpp: the 7×7 type-A layer 1 → c, the model's body, ReLU, 1×1 c → c,
    ReLU, 1×1 c → 1 (the Bernoulli logits); log p(x) the summed −BCE of the pixels."""

    def __init__(self, c, body):
        super().__init__()
        self.input, self.body = MaskedConv2d(1, c, 7, "A"), body
        self.output = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 1), nn.ReLU(), nn.Conv2d(c, 1, 1))

    def log_prob(self, x):
        logits = self.output(self.body(self.input(x)))
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))


def pixel_step(net):
    """The step of models/likelihood/pixel_net.cpp's density model: Adam(1e-3, 0.9, 0.999) on the mean
    NLL of the binarized batch."""
    opt = adam(net.parameters(), 1e-3)

    def step(x, _):
        return descend(opt, -net.log_prob(torch.bernoulli(x)).mean())
    return step, parameters(net)


class Residual(nn.Sequential):
    """x + layers(x)."""

    def forward(self, x):
        return x + super().forward(x)


def pixelcnn_step(args):
    """models/likelihood/pixelcnn.cpp at its defaults (2h = 64 channels, 5 blocks, ungated, levels 2):
    after the type-A layer, residual blocks ReLU·1×1(64→32)·ReLU·3×3 type-B(32→32)·ReLU·1×1(32→64)."""
    c = 64
    body = nn.Sequential(*[Residual(nn.ReLU(), nn.Conv2d(c, c // 2, 1), nn.ReLU(),
                                    MaskedConv2d(c // 2, c // 2, 3, "B"), nn.ReLU(), nn.Conv2d(c // 2, c, 1))
                           for _ in range(5)])
    return pixel_step(PixelNet(c, body))


class RowLstm(nn.Module):
    """pixelrnn.cpp's residual Row LSTM layer, h state channels: K_is a type-B 1×2 convolution of the
    input [B, 2h, H, W] shifted one column right (all rows at once), K_ss a 1×3 convolution (no bias) of
    the row above's state, the LSTM update row after row (gates i, f, g, o; c starts at zero), then
    x + 1×1(h → 2h) of the states."""

    def __init__(self, h):
        super().__init__()
        self.input_to_state = nn.Conv2d(2 * h, 4 * h, (1, 2))
        self.state_to_state = nn.Conv2d(h, 4 * h, (1, 3), padding=(0, 1), bias=False)
        self.up = nn.Conv2d(h, 2 * h, 1)
        self.h = h

    def forward(self, x):
        from_input = self.input_to_state(F.pad(x, (1, 0)))
        c = torch.zeros(x.shape[0], self.h, 1, x.shape[3])
        states = []
        for r in range(x.shape[2]):
            gates = from_input[:, :, r:r + 1]
            if states:
                gates = gates + self.state_to_state(states[-1])
            i, f, g, o = gates.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            states.append(torch.sigmoid(o) * torch.tanh(c))
        return x + self.up(torch.cat(states, 2))


def pixelrnn_step(args):
    """models/likelihood/pixelrnn.cpp at its defaults (h = 32, one Row LSTM layer, levels 2)."""
    return pixel_step(PixelNet(64, RowLstm(32)))


def nade_step(args):
    """models/likelihood/nade.cpp: W [H, n], V [n, H] uniform in [−1/n, 1/n], b, c zero, H = 500; all n
    conditionals at once through the exclusive prefix sum of x_j W_{:,j} along the pixels ([B, n, H]);
    Adam(1e-3) on the mean NLL; the batch dynamically binarized."""
    n, h = 784, args.hidden_nade
    W = nn.Parameter(torch.empty(h, n).uniform_(-1 / n, 1 / n))
    V = nn.Parameter(torch.empty(n, h).uniform_(-1 / n, 1 / n))
    b, c = nn.Parameter(torch.zeros(n)), nn.Parameter(torch.zeros(h))
    opt = adam([W, V, b, c], 1e-3)

    def step(x, _):
        x = torch.bernoulli(x).flatten(1)
        x_prev = F.pad(x[:, :-1], (1, 0))
        w_prev = F.pad(W.t()[:-1], (0, 0, 1, 0))
        a = torch.cumsum(x_prev.unsqueeze(2) * w_prev, 1) + c
        logits = (torch.sigmoid(a) * V).sum(2) + b
        return descend(opt, -(x * logits - F.softplus(logits)).sum(1).mean())
    return step, [W, V, b, c]


# models/gan/captions.cpp: the words of each class's synonyms ("t-shirt" is two, "pair of trousers" three).
CLASS_WORDS = [[2, 1, 1], [3, 3, 3], [1, 1, 1], [1, 1], [1, 1], [1], [1, 1], [1, 1, 1], [1, 1, 1], [2, 1]]


def caption_tokens(labels, vocabulary):
    """Token ids [B, T] (padded with 0 after each caption) and lengths [B] of captions as long as
    captions.cpp's: the wording variant drawn per image (template v % 6, synonym v / 6), the attributes
    (size, plain or patterned) uniform, the words random ids ≥ 2 of the vocabulary: only the encoder's
    compute depends on them."""
    variants = (torch.rand(len(labels)) * 18).long()
    plain, size = torch.rand(len(labels)) < 0.5, torch.randint(3, (len(labels),))
    lengths = []
    for y, v, p, s in zip(labels.tolist(), variants.tolist(), plain.tolist(), size.tolist()):
        words = CLASS_WORDS[y][(v // 6) % len(CLASS_WORDS[y])]
        template = v % 6
        lengths.append(words + [2, 4 if p else 6, 5 + (5, 4, 3)[s], 4, 5, 1][template])
    lengths = torch.tensor(lengths)
    ids = torch.randint(2, vocabulary, (len(labels), int(lengths.max())))
    return ids * (torch.arange(ids.shape[1]) < lengths[:, None]), lengths


class TextEncoder(nn.Module):
    """captions::TextEncoder: word embeddings → nn::GRU, masked at each text's length, its last state:
    every step's input projected at once, then per step r, z, n from the state (gates as PyTorch's); the
    masked output sequence is formed too, as nn::GRU's forward does, though φ needs only the state."""

    def __init__(self, vocabulary, word_dim, embed_dim):
        super().__init__()
        self.words, self.gru = nn.Embedding(vocabulary, word_dim), nn.GRU(word_dim, embed_dim)

    def forward(self, ids, lengths):
        g = self.gru
        gi = F.linear(self.words(ids), g.weight_ih_l0, g.bias_ih_l0).unbind(1)
        h, outputs = torch.zeros(ids.shape[0], g.hidden_size), []
        for t, x in enumerate(gi):
            ir, iz, i_n = x.chunk(3, 1)
            hr, hz, hn = F.linear(h, g.weight_hh_l0, g.bias_hh_l0).chunk(3, 1)
            r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
            n = torch.tanh(i_n + r * hn)
            mask, h_next = (t < lengths).float()[:, None], n + z * (h - n)
            h = h + mask * (h_next - h)
            outputs.append(mask * h_next)
        torch.stack(outputs, 1)  # the output sequence nn::GRU returns beside its last state
        return h


def text2image_step(args):
    """models/gan/text2image.cpp at its defaults (z 100, words 32, φ 64, text 64, g = d = 32, β 0.5, GAN-INT
    weight 1) on generated captions, here random token ids of their lengths over the 50-word vocabulary
    (caption_tokens; loom also measures each image's tone, size and texture for its caption). G: [z,
    leaky(Linear φ→64)] → FC 3136·BN·ReLU → 4×4/2 upconv 32·BN·ReLU → 4×4/2 upconv 1·tanh; D: 4×4/2 conv
    32·leaky → 4×4/2 conv 64·BN·leaky, the compressed text tiled 7×7 and concatenated, 1×1 conv 64·BN·leaky
    → 7×7 conv to the logit; DCGAN init; Adam(2e-4, 0.5) for G and for D with the text encoder. D on
    GAN-CLS's three pairs (the mismatched text the next row's), G on the right texts and the interpolated
    ones (fresh noise each) with φ held fixed; five losses read back."""
    latent, text, g, d, embed = 100, 64, 32, 32, 64
    encoder = TextEncoder(50, 32, embed)
    G_text = nn.Sequential(nn.Linear(embed, text), nn.LeakyReLU(0.2))
    G = nn.Sequential(nn.Linear(latent + text, 2 * g * 49), nn.BatchNorm1d(2 * g * 49), nn.ReLU(),
                      nn.Unflatten(1, (2 * g, 7, 7)), nn.ConvTranspose2d(2 * g, g, 4, 2, 1), nn.BatchNorm2d(g),
                      nn.ReLU(), nn.ConvTranspose2d(g, 1, 4, 2, 1), nn.Tanh())
    D_features = nn.Sequential(nn.Conv2d(1, d, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(d, 2 * d, 4, 2, 1),
                               nn.BatchNorm2d(2 * d), nn.LeakyReLU(0.2))
    D_text = nn.Sequential(nn.Linear(embed, text), nn.LeakyReLU(0.2))
    D_joint = nn.Sequential(nn.Conv2d(2 * d + text, 2 * d, 1), nn.BatchNorm2d(2 * d), nn.LeakyReLU(0.2),
                            nn.Conv2d(2 * d, 1, 7))
    gan_twin.dcgan_init(G_text, G, D_features, D_text, D_joint)
    og = adam(parameters(G_text, G), 2e-4, 0.5)
    od = adam(parameters(D_features, D_text, D_joint, encoder), 2e-4, 0.5)

    def generate(phi):
        return G(torch.cat([torch.randn(phi.shape[0], latent), G_text(phi)], 1))

    def score(features, phi):
        return D_joint(torch.cat([features, D_text(phi)[:, :, None, None].expand(-1, -1, 7, 7)], 1)).view(-1)

    def generator_loss(phi):  # −log D(G(z, φ), φ) on fresh noise
        return F.softplus(-score(D_features(generate(phi)), phi)).mean()

    def step(x, y):
        x = x * 2 - 1
        tokens = caption_tokens(y, 50)
        mismatched = torch.arange(1, x.shape[0] + 1) % x.shape[0]
        h = encoder(*tokens)
        wrong = h.index_select(0, mismatched)
        with torch.no_grad():
            fake = generate(h)
        real_features = D_features(x)
        s_right, s_wrong, s_fake = score(real_features, h), score(real_features, wrong), score(D_features(fake), h)
        d_loss = F.softplus(-s_right).mean() + 0.5 * (F.softplus(s_wrong).mean() + F.softplus(s_fake).mean())
        descend(od, d_loss)
        with torch.no_grad():
            hg = encoder(*tokens)
        g_loss = generator_loss(hg) + 1.0 * generator_loss(0.5 * hg + 0.5 * hg.index_select(0, mismatched))
        descend(og, g_loss)
        with torch.no_grad():
            return (d_loss.item(), g_loss.item(), torch.sigmoid(s_right).mean().item(),
                    torch.sigmoid(s_wrong).mean().item(), torch.sigmoid(s_fake).mean().item())
    return step, parameters(encoder, G_text, G, D_features, D_text, D_joint)


class ImagePool:
    """cyclegan::ImagePool: up to `capacity` earlier fakes; each query draws rand([B, 2], float64) and
    passes the batch image by image (stored while the pool fills, then with probability 1/2 swapped for a
    stored one), gathering the returned images and the new pool from [pool; batch] with index_select."""

    def __init__(self, capacity, shape):
        self.images, self.count, self.capacity = torch.zeros(capacity, *shape), 0, capacity

    def query(self, batch):
        u = torch.rand(batch.shape[0], 2, dtype=torch.float64).tolist()
        slot, returned = list(range(self.capacity)), []
        for i, (u1, u2) in enumerate(u):
            fresh = self.capacity + i
            returned.append(fresh)
            if self.count < self.capacity:
                slot[self.count] = fresh
                self.count += 1
            elif u1 > 0.5:
                j = min(self.capacity - 1, int(u2 * self.capacity))
                returned[i], slot[j] = slot[j], fresh
        every = torch.cat([self.images, batch.detach()])
        self.images = every.index_select(0, torch.tensor(slot))
        return every.index_select(0, torch.tensor(returned))


def cyclegan_step(args):
    """models/gan/cyclegan.cpp at its defaults (f = 8, 2 residual blocks, PatchGAN with 2 stride-2 layers,
    28×28 grey, sneakers (A) and ankle boots (B) of Fashion-MNIST, one batch of each per step, λ 10,
    identity 0.5 λ, pools of 50). G: reflect 3, 7×7 conv f·IN·ReLU → 3×3/2 convs 2f, 4f (IN, ReLU) →
    residual blocks (reflect 1, 3×3 conv, IN, ReLU, reflect 1, 3×3 conv, IN) → 3×3/2 upconvs 2f, f (IN,
    ReLU) → reflect 3, 7×7 conv 1, tanh; D: 4×4/2 conv f·lReLU → 4×4/2 conv 2f·IN·lReLU → 4×4 conv
    4f·IN·lReLU → 4×4 conv 1 (IN without affine parameters, convs with biases); DCGAN init; one Adam(2e-4,
    0.5) for both generators on the least-squares, cycle and identity losses, then one for both Ds on
    real images against pooled fakes; eight losses read back. The lr's linear decay over the second
    half of a run changes no step's compute and is left out."""
    f, blocks = 8, 2

    def normed(layer, width):
        return [layer, nn.InstanceNorm2d(width), nn.ReLU()]

    def generator():
        block = lambda: Residual(nn.ReflectionPad2d(1), nn.Conv2d(4 * f, 4 * f, 3), nn.InstanceNorm2d(4 * f),
                                 nn.ReLU(), nn.ReflectionPad2d(1), nn.Conv2d(4 * f, 4 * f, 3),
                                 nn.InstanceNorm2d(4 * f))
        return nn.Sequential(nn.ReflectionPad2d(3), *normed(nn.Conv2d(1, f, 7), f),
                             *normed(nn.Conv2d(f, 2 * f, 3, 2, 1), 2 * f),
                             *normed(nn.Conv2d(2 * f, 4 * f, 3, 2, 1), 4 * f),
                             *[block() for _ in range(blocks)],
                             *normed(nn.ConvTranspose2d(4 * f, 2 * f, 3, 2, 1, 1), 2 * f),
                             *normed(nn.ConvTranspose2d(2 * f, f, 3, 2, 1, 1), f),
                             nn.ReflectionPad2d(3), nn.Conv2d(f, 1, 7), nn.Tanh())

    def discriminator():
        return nn.Sequential(nn.Conv2d(1, f, 4, 2, 1), nn.LeakyReLU(0.2),
                             nn.Conv2d(f, 2 * f, 4, 2, 1), nn.InstanceNorm2d(2 * f), nn.LeakyReLU(0.2),
                             nn.Conv2d(2 * f, 4 * f, 4, 1, 1), nn.InstanceNorm2d(4 * f), nn.LeakyReLU(0.2),
                             nn.Conv2d(4 * f, 1, 4, 1, 1))
    g_ab, g_ba, d_a, d_b = generator(), generator(), discriminator(), discriminator()
    gan_twin.dcgan_init(g_ab, g_ba, d_a, d_b)
    og, od = adam(parameters(g_ab, g_ba), 2e-4, 0.5), adam(parameters(d_a, d_b), 2e-4, 0.5)
    pool_a, pool_b = ImagePool(50, (1, 28, 28)), ImagePool(50, (1, 28, 28))
    images, labels = gan_twin.fashion("train")
    domain_b = gan_twin.batches(images[labels == 9], labels[labels == 9], args.batch_size, args.steps)
    l1, lam, identity = F.l1_loss, 10.0, 0.5

    def step(a, _):
        a, b = a * 2 - 1, next(domain_b)[1] * 2 - 1
        fake_b, fake_a = g_ab(a), g_ba(b)
        cycle_a, cycle_b = lam * l1(g_ba(fake_b), a), lam * l1(g_ab(fake_a), b)
        adv_ab, adv_ba = (d_b(fake_b) - 1).square().mean(), (d_a(fake_a) - 1).square().mean()
        idt_b, idt_a = identity * lam * l1(g_ab(b), b), identity * lam * l1(g_ba(a), a)
        descend(og, adv_ab + adv_ba + cycle_a + cycle_b + idt_a + idt_b)
        lsd = lambda real, fake: 0.5 * ((real - 1).square().mean() + fake.square().mean())
        loss_a = lsd(d_a(a), d_a(pool_a.query(fake_a.detach())))
        loss_b = lsd(d_b(b), d_b(pool_b.query(fake_b.detach())))
        descend(od, loss_a + loss_b)
        return [t.item() for t in (adv_ab, adv_ba, cycle_a, cycle_b, loss_a, loss_b, idt_a, idt_b)]
    return step, parameters(g_ab, g_ba, d_a, d_b), (images[labels == 7], labels[labels == 7])


class Equalized(nn.Module):
    """nn::EqualizedConv2d (k > 0) or nn::EqualizedLinear (k = 0), ProGAN's §4.1: weights N(0, 1), bias 0,
    the weight multiplied by gain / √fan_in on every forward."""

    def __init__(self, c_in, c_out, k=0, gain=math.sqrt(2), padding=0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k) if k else torch.randn(c_out, c_in))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale, self.padding = gain / math.sqrt(c_in * max(k, 1) ** 2), padding

    def forward(self, x):
        w = self.weight * self.scale
        return F.conv2d(x, w, self.bias, padding=self.padding) if w.dim() == 4 else F.linear(x, w, self.bias)


class MovingAverage:
    """optim::EMA with its copy into the sampling network, as progan and ddpm keep one: after each step
    avg ← decay·avg + (1 − decay)·param, then avg copied into the sampler's weights."""

    def __init__(self, params):
        self.params = list(params)
        self.average = [p.detach().clone() for p in self.params]
        self.sampler = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self, decay):
        for a, p, s in zip(self.average, self.params, self.sampler):
            a.lerp_(p, 1 - decay)
            s.copy_(a)


def pixel_norm(x):
    return x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)


def minibatch_stddev(x, group):
    """nn::minibatch_stddev: the mean over features of each group's standard deviation, a channel more."""
    n, c, h, w = x.shape
    y = x.reshape(group, n // group, c, h, w)
    sd = torch.sqrt((y - y.mean(0, keepdim=True)).square().mean(0) + 1e-8).mean((1, 2, 3), keepdim=True)
    return torch.cat([x, sd.reshape(1, n // group, 1, 1, 1).expand(group, -1, 1, h, w).reshape(n, 1, h, w)], 1)


class ProGAN(nn.Module):
    """models/gan/progan.cpp's networks, all levels up to 32×32 at width f (progan_width: f up to 32×32):
    G pixel-norms z, an equalized dense layer (gain √2/4) to 4×4×f, 3×3 convs (level 0 one, each later
    level ×2 nearest upsampling and two), each leaky(0.2)·pixel_norm, toRGB 1×1 (gain 1) per level; D
    fromRGB 1×1·leaky per level, each level ≥ 1 two 3×3 convs·leaky and 2×2 average pooling, at 4×4 the
    minibatch stddev (groups of 4), a 3×3 conv, dense to f, dense to the score (gain 1); fades blend the old
    and new paths by α."""

    def __init__(self, latent, f, levels):
        super().__init__()
        conv = lambda c_in: Equalized(c_in, f, 3, padding=1)
        self.dense = Equalized(latent, 16 * f, gain=math.sqrt(2) / 4)
        self.g_convs = nn.ModuleList([conv(f) for _ in range(2 * levels - 1)])
        self.to_rgb = nn.ModuleList([Equalized(f, 1, 1, gain=1) for _ in range(levels)])
        self.d_convs = nn.ModuleList([conv(f + 1)] + [conv(f) for _ in range(2 * levels - 2)])
        self.from_rgb = nn.ModuleList([Equalized(1, f, 1) for _ in range(levels)])
        self.d_dense, self.score = Equalized(16 * f, f), Equalized(f, 1, gain=1)
        self.f = f

    def g_block(self, level, h):
        act = lambda x: pixel_norm(F.leaky_relu(x, 0.2))
        if level == 0:
            return act(self.g_convs[0](act(self.dense(pixel_norm(h)).view(-1, self.f, 4, 4))))
        i = 2 * level - 1
        return act(self.g_convs[i + 1](act(self.g_convs[i](F.interpolate(h, scale_factor=2)))))

    def generate(self, z, level, alpha):
        h = self.g_block(0, z)
        for l in range(1, level):
            h = self.g_block(l, h)
        if level == 0:
            return self.to_rgb[0](h)
        image = self.to_rgb[level](self.g_block(level, h))
        return image if alpha == 1 else fade(F.interpolate(self.to_rgb[level - 1](h), scale_factor=2), image, alpha)

    def d_block(self, level, h):
        if level == 0:
            x = F.leaky_relu(self.d_convs[0](minibatch_stddev(h, 4)), 0.2)
            return self.score(F.leaky_relu(self.d_dense(x.flatten(1)), 0.2)).view(-1)
        i = 2 * level - 1
        return F.avg_pool2d(F.leaky_relu(self.d_convs[i + 1](F.leaky_relu(self.d_convs[i](h), 0.2)), 0.2), 2)

    def critic(self, x, level, alpha):
        from_rgb = lambda l, images: F.leaky_relu(self.from_rgb[l](images), 0.2)
        h = from_rgb(level, x)
        if level > 0:
            h = self.d_block(level, h)
            if alpha < 1:
                h = fade(from_rgb(level - 1, F.avg_pool2d(x, 2)), h, alpha)
            for l in range(level - 1, 0, -1):
                h = self.d_block(l, h)
        return self.d_block(0, h)


def fade(old, new, alpha):
    return (1 - alpha) * old + alpha * new


def growth_at(images, levels, fade_images=12800, stable_images=12800):
    """progan::growth_at at the default schedule: (level, α) after `images` training images."""
    if images < stable_images or levels == 1:
        return 0, 1.0
    t, period = images - stable_images, fade_images + stable_images
    if 1 + t // period >= levels:
        return levels - 1, 1.0
    return 1 + t // period, (t % period) / fade_images if t % period < fade_images else 1.0


def gradient_penalty(critic, real, fake):
    """gan::penalty_points and gan::gradient_penalty: mean (‖∇D(x̂)‖₂ − 1)² at x̂ = ε real + (1 − ε) fake,
    ε ~ U(0, 1) per sample, the gradient taken with create_graph (the double backward)."""
    eps = torch.rand(real.shape[0], *[1] * (real.dim() - 1))
    x = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_()
    g, = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return (g.flatten(1).norm(2, 1) - 1).square().mean()


def progan_step(args):
    """models/gan/progan.cpp at its defaults (--image-size 32: Fashion-MNIST padded to 32×32 with −1, z of
    128, f = 32, 4 levels, 12 800 images per fade and per stable phase, so a bench from step 0 runs at 4×4
    for its first 200 steps; the reals pooled to the resolution and faded as G's images); WGAN-GP (λ 10,
    drift 1e-3·E[D(x)²]), one critic step then one G step, Adam(1e-3, 0, 0.99) for both; the moving
    average of G (decay 0.5^(64/1000)) updated and copied into the sampling generator each step."""
    levels, latent = 4, 128
    net = ProGAN(latent, 32, levels)
    G = list(net.dense.parameters()) + list(net.g_convs.parameters()) + list(net.to_rgb.parameters())
    D = [p for p in net.parameters() if all(p is not q for q in G)]
    og, od = adam(G, 1e-3, 0, 0.99), adam(D, 1e-3, 0, 0.99)
    ema = MovingAverage(G)
    decay = 0.5 ** (args.batch_size / 1000)
    index = iter(range(1 << 62))

    def step(x, _):
        level, alpha = growth_at(next(index) * x.shape[0], levels)
        real = F.pad(x * 2 - 1, (2, 2, 2, 2), value=-1.0)
        k = 32 // (4 << level)  # pooled to the resolution
        real = F.avg_pool2d(real, k) if k > 1 else real
        if alpha < 1:
            real = fade(F.interpolate(F.avg_pool2d(real, 2), scale_factor=2), real, alpha)
        critic = lambda images: net.critic(images, level, alpha)
        fake = net.generate(torch.randn(x.shape[0], latent), level, alpha)
        real_scores, fake_scores = critic(real), critic(fake.detach())
        wasserstein = real_scores.mean() - fake_scores.mean()
        penalty = gradient_penalty(critic, real, fake)
        d_loss = -wasserstein + 10 * penalty + 1e-3 * real_scores.square().mean()
        descend(od, d_loss)
        g_loss = descend(og, -critic(fake).mean())
        ema.update(decay)
        return d_loss.item(), g_loss, wasserstein.item(), penalty.item()
    return step, G + D


class ResBlock(nn.Module):
    """models/diffusion/unet.cpp's ResBlock: conv3×3(SiLU(GN(x))) + Linear(SiLU(emb)) per channel, then
    conv3×3(SiLU(GN(h))) (dropout 0: none), added to x or to its 1×1 conv where the width changes."""

    def __init__(self, c_in, c_out, emb, groups):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb_proj = nn.Linear(emb, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x))) + self.emb_proj(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.skip(x) if self.skip else x) + h


class SelfAttention2d(nn.Module):
    """nn::SelfAttention2d, one head: x + out_proj(softmax(q kᵀ/√C) v) over the H·W positions of GN(x),
    q, k, v three products with the thirds of in_proj (nn::MultiheadAttention)."""

    def __init__(self, c, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * c, c))
        nn.init.xavier_uniform_(self.in_proj_weight)
        self.in_proj_bias, self.out_proj = nn.Parameter(torch.zeros(3 * c)), nn.Linear(c, c)

    def forward(self, x):
        b, c, h, w = x.shape
        tokens = self.norm(x).reshape(b, c, h * w).permute(0, 2, 1)
        q, k, v = (F.linear(tokens, w, b) for w, b in zip(self.in_proj_weight.chunk(3), self.in_proj_bias.chunk(3)))
        y = self.out_proj(torch.softmax(q @ k.transpose(1, 2) * (1 / math.sqrt(c)), -1) @ v)
        return x + y.permute(0, 2, 1).reshape(b, c, h, w)


class UNet(nn.Module):
    """models/diffusion/unet.cpp at ddpm's defaults: base 32, widths ×1, ×2, ×2 at 28, 14, 7 pixels, one
    block per level on the way down and two on the way up (skips from every block and downsampling),
    attention at 7×7 and in the middle, GroupNorm(8), the time step's sinusoidal embedding (32) through
    Linear·SiLU·Linear to 128; stride-2 conv down, nearest ×2 and conv up; the output conv zero."""

    def __init__(self, base=32, mult=(1, 2, 2), groups=8):
        super().__init__()
        emb = 4 * base
        self.time1, self.time2 = nn.Linear(base, emb), nn.Linear(emb, emb)
        self.input = nn.Conv2d(1, base, 3, padding=1)
        self.down, self.up = nn.ModuleList(), nn.ModuleList()
        skips, width = [base], base
        for level, m in enumerate(mult):
            stage = nn.ModuleDict({"block": ResBlock(width, base * m, emb, groups)})
            width = base * m
            skips.append(width)
            if level == len(mult) - 1:
                stage["attention"] = SelfAttention2d(width, groups)
            else:
                stage["resample"] = nn.Conv2d(width, width, 3, 2, 1)
                skips.append(width)
            self.down.append(stage)
        self.mid1, self.mid_attention = ResBlock(width, width, emb, groups), SelfAttention2d(width, groups)
        self.mid2 = ResBlock(width, width, emb, groups)
        for level in reversed(range(len(mult))):
            blocks = nn.ModuleList()
            for _ in range(2):
                blocks.append(ResBlock(width + skips.pop(), base * mult[level], emb, groups))
                width = base * mult[level]
            stage = nn.ModuleDict({"blocks": blocks})
            if level == len(mult) - 1:
                stage["attention"] = nn.ModuleList([SelfAttention2d(width, groups) for _ in range(2)])
            if level > 0:
                stage["resample"] = nn.Conv2d(width, width, 3, padding=1)
            self.up.append(stage)
        self.out_norm, self.output = nn.GroupNorm(groups, width), nn.Conv2d(width, 1, 3, padding=1)
        for zero in [self.output] + [m.conv2 for m in self.modules() if isinstance(m, ResBlock)]:
            nn.init.zeros_(zero.weight)
            nn.init.zeros_(zero.bias)
        self.base = base

    def forward(self, x, t):
        half = self.base // 2
        angle = t.double()[:, None] * torch.exp(-math.log(10000.0) * torch.arange(half).double() / half)
        emb = self.time2(F.silu(self.time1(torch.cat([angle.sin(), angle.cos()], 1).float())))
        h = self.input(x)
        skips = [h]
        for stage in self.down:
            h = stage["block"](h, emb)
            if "attention" in stage:
                h = stage["attention"](h)
            skips.append(h)
            if "resample" in stage:
                h = stage["resample"](h)
                skips.append(h)
        h = self.mid2(self.mid_attention(self.mid1(h, emb)), emb)
        for stage in self.up:
            for b, block in enumerate(stage["blocks"]):
                h = block(torch.cat([h, skips.pop()], 1), emb)
                if "attention" in stage:
                    h = stage["attention"][b](h)
            if "resample" in stage:
                h = stage["resample"](F.interpolate(h, scale_factor=2))
        return self.output(F.silu(self.out_norm(h)))


def ddpm_step(args):
    """models/diffusion/ddpm.cpp at its defaults (T = 1000, β linear from 1e-4 to 0.02, unconditional):
    t ~ U{1..T}, ε ~ N(0, I), the mean squared error of the U-Net's ε at √ᾱ_t x₀ + √(1 − ᾱ_t) ε (x₀ in
    [−1, 1]); Adam(2e-4, 0.9, 0.999) with a linear warm-up over 100 steps, the gradient's norm clipped to 1
    (and read back); the moving average of the weights (decay min(0.999, (1 + n)/(10 + n)) at step n)
    updated and copied into the sampling network."""
    steps = 1000
    beta = torch.linspace(1e-4, 0.02, steps, dtype=torch.float64)
    alpha_bar = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - beta, 0)])
    sqrt_ab, sqrt_one_minus = alpha_bar.sqrt().float(), (1 - alpha_bar).sqrt().float()
    net = UNet()
    opt = adam(net.parameters(), 2e-4)
    ema = MovingAverage(net.parameters())
    index = iter(range(1 << 62))

    def step(x, _):
        n = next(index)
        x0 = x * 2 - 1
        t = torch.randint(steps, (x.shape[0],)) + 1
        eps = torch.randn_like(x0)
        at = lambda table: table.index_select(0, t).view(-1, 1, 1, 1)  # diffusion.cpp's at()
        xt = at(sqrt_ab) * x0 + at(sqrt_one_minus) * eps
        loss = F.mse_loss(net(xt, t), eps)
        for group in opt.param_groups:
            group["lr"] = 2e-4 * min(1.0, (n + 1) / 100)
        opt.zero_grad()
        loss.backward()
        norm = nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        ema.update(min(0.999, (1 + n) / (10 + n)))
        return loss.item(), norm.item()
    return step, parameters(net)


def stargan_step(args):
    """models/gan/stargan.cpp at its defaults (f = 16, 2 residual blocks, 3 discriminator layers, 28×28
    grey; the domains sandal, sneaker, ankle boot of Fashion-MNIST, each image's class its domain; λ_cls 1,
    λ_rec 10, λ_gp 10). G on the image with the target's one-hot tiled as 3 more planes: 7×7 conv f·IN·ReLU
    → 4×4/2 convs 2f, 4f (IN, ReLU) → residual blocks (3×3 conv, IN, ReLU, 3×3 conv, IN) → 4×4/2
    upconvs 2f, f (IN, ReLU) → 7×7 conv 1, tanh (IN affine, no conv biases); D: 4×4/2 convs f, 2f, 4f
    each leaky(0.01), D_src a 3×3 conv to 1, D_cls a 3×3 conv over the 3×3 map to 3 logits. Five critic
    updates per step, each on its own batch with uniform target domains (WGAN-GP with its double
    backward, cross-entropy on the real images' domains), then G on the last batch (adversarial, domain
    and cycle losses); Adam(1e-4, 0.5) for both; eight losses read back."""
    f, blocks, k_domains, d_steps = 16, 2, 3, 5

    def normed(layer, width):
        return [layer, nn.InstanceNorm2d(width, affine=True), nn.ReLU()]
    block = lambda: Residual(nn.Conv2d(4 * f, 4 * f, 3, padding=1, bias=False), nn.InstanceNorm2d(4 * f, affine=True),
                             nn.ReLU(), nn.Conv2d(4 * f, 4 * f, 3, padding=1, bias=False),
                             nn.InstanceNorm2d(4 * f, affine=True))
    G = nn.Sequential(*normed(nn.Conv2d(1 + k_domains, f, 7, padding=3, bias=False), f),
                      *normed(nn.Conv2d(f, 2 * f, 4, 2, 1, bias=False), 2 * f),
                      *normed(nn.Conv2d(2 * f, 4 * f, 4, 2, 1, bias=False), 4 * f), *[block() for _ in range(blocks)],
                      *normed(nn.ConvTranspose2d(4 * f, 2 * f, 4, 2, 1, bias=False), 2 * f),
                      *normed(nn.ConvTranspose2d(2 * f, f, 4, 2, 1, bias=False), f),
                      nn.Conv2d(f, 1, 7, padding=3, bias=False), nn.Tanh())
    trunk = nn.Sequential(nn.Conv2d(1, f, 4, 2, 1), nn.LeakyReLU(0.01), nn.Conv2d(f, 2 * f, 4, 2, 1),
                          nn.LeakyReLU(0.01), nn.Conv2d(2 * f, 4 * f, 4, 2, 1), nn.LeakyReLU(0.01))
    src, cls = nn.Conv2d(4 * f, 1, 3, padding=1, bias=False), nn.Conv2d(4 * f, k_domains, 3, bias=False)
    og, od = adam(G.parameters(), 1e-4, 0.5), adam(parameters(trunk, src, cls), 1e-4, 0.5)
    images, labels = gan_twin.fashion("train")
    keep = (labels == 5) | (labels == 7) | (labels == 9)
    images, labels = images[keep], labels[keep] // 2 - 2  # 5, 7, 9 → domains 0, 1, 2
    more = gan_twin.batches(images, labels, args.batch_size, args.steps * (d_steps - 1))

    def judge(x):  # (D_src's scores [B, 1, 3, 3], D_cls's logits [B, 3])
        h = trunk(x)
        return src(h), cls(h).flatten(1)

    def translate(x, into):
        return G(torch.cat([x, into[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1))

    def step(x, y):
        d_loss = d_cls = penalty = 0
        for k in range(d_steps):
            if k:
                _, x, y = next(more)
            x = x * 2 - 1
            source = F.one_hot(y, k_domains).float()
            target = F.one_hot((torch.rand(x.shape[0], dtype=torch.float64) * k_domains).long(), k_domains).float()
            with torch.no_grad():
                fake = translate(x, target)
            real_src, real_cls = judge(x)
            loss_cls = F.cross_entropy(real_cls, source.argmax(1))
            adv = judge(fake)[0].mean() - real_src.mean()
            gp = gradient_penalty(lambda h: judge(h)[0].sum((1, 2, 3)), x, fake)
            loss = adv + 1.0 * loss_cls + 10.0 * gp
            descend(od, loss)
            d_loss, d_cls, penalty = d_loss + loss.detach(), d_cls + loss_cls.detach(), penalty + gp.detach()
        fake = translate(x, target)
        fake_src, fake_cls = judge(fake)
        g_adv, g_cls = -fake_src.mean(), F.cross_entropy(fake_cls, target.argmax(1))
        g_rec = F.l1_loss(translate(fake, source), x)
        g_loss = g_adv + 1.0 * g_cls + 10.0 * g_rec
        descend(og, g_loss)
        return [t.item() for t in (d_loss, d_cls, penalty, adv, g_loss, g_adv, g_cls, g_rec)]
    return step, parameters(G, trunk, src, cls), (images, labels)


def puzzlegan_step(args):
    """models/gan/puzzlegan.cpp at its defaults (K = 3 pieces of P = 8 at 28 px, f = 16, h = 128, λ_mask =
    λ_appr = 10, λ_rec 0, Adam(2e-4, 0.5, 0.999) for both, every layer's default initialization): the pieces
    cut at uniform positions (puzzlegan::cut_pieces, a slice per piece), the shared encoder 3×3 conv f·leaky →
    4×4/2 conv 2f·BN·leaky → linear h, the codes summed, the trunk linear → 4f × 7 × 7·BN·ReLU, two decoders
    4×4/2 upconvs 2f, f (BN, ReLU) → 3×3 conv to the image (tanh) or the mask's logits; D 4×4/2 convs f, 2f
    (leaky, BN on the second) → linear 1. D's log loss on the real images, the detached completions and the
    two part swaps with the next image of the batch, then G on −log D(ŷ) + λ_mask BCE(M̂, M) + λ_appr
    mean |ŷ ⊙ M̂ − y ⊙ M|; eight losses read back."""
    f, h, k, side, size = 16, 128, 3, 8, 28
    q, s = (side + 2 - 4) // 2 + 1, size // 4

    def decoder(out, *last):
        layers = []
        for width in (2 * f, f):
            layers += [nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU()]
        return nn.Sequential(*layers, nn.Conv2d(f, out, 3, padding=1), *last)
    encoder = nn.Sequential(nn.Conv2d(1, f, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(f, 2 * f, 4, 2, 1),
                            nn.BatchNorm2d(2 * f), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(2 * f * q * q, h))
    trunk = nn.Sequential(nn.Linear(h, 4 * f * s * s), nn.Unflatten(1, (4 * f, s, s)), nn.BatchNorm2d(4 * f),
                          nn.ReLU())
    image, mask = decoder(1, nn.Tanh()), decoder(1)
    D = nn.Sequential(nn.Conv2d(1, f, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(f, 2 * f, 4, 2, 1), nn.BatchNorm2d(2 * f),
                      nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(2 * f * s * s, 1))
    og, od = adam(parameters(encoder, trunk, image, mask), 2e-4, 0.5), adam(D.parameters(), 2e-4, 0.5)

    def cut(y):  # pieces [B, K, 1, P, P] and the mask [B, 1, S, S] of their squares
        positions = size - side + 1
        at = (torch.rand(y.shape[0] * k, 2, dtype=torch.float64) * positions).long().clamp(max=positions - 1)
        pieces, m = [], torch.zeros(y.shape[0], 1, size, size)
        for i, (top, left) in enumerate(at.tolist()):
            pieces.append(y[i // k, :, top:top + side, left:left + side])
            m[i // k, :, top:top + side, left:left + side] = 1
        return torch.stack(pieces).view(y.shape[0], k, 1, side, side), m

    def step(x, _):
        y = x * 2 - 1
        b = y.shape[0]
        pieces, m = cut(y)
        t = trunk(encoder(pieces.view(b * k, 1, side, side)).view(b, k, h).sum(1))
        generated, mask_logits = image(t), mask(t)
        other = y.roll(-1, 0)  # each image's partner in the swaps: the next one
        real_logits, fake_logits = D(y), D(generated.detach())
        d_loss = (F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
                  + F.softplus(D(other * m + y * (1 - m))).mean() + F.softplus(D(y * m + other * (1 - m))).mean())
        descend(od, d_loss)
        g_adv = F.softplus(-D(generated)).mean()
        l_mask = F.binary_cross_entropy_with_logits(mask_logits, m)
        l_appr = (generated * torch.sigmoid(mask_logits) - y * m).abs().mean()
        l_rec = (generated - y).abs().mean()
        g_loss = g_adv + 10 * l_mask + 10 * l_appr
        descend(og, g_loss)
        with torch.no_grad():
            return (d_loss.item(), g_loss.item(), torch.sigmoid(real_logits).mean().item(),
                    torch.sigmoid(fake_logits).mean().item(), g_adv.item(), l_mask.item(), l_appr.item(), l_rec.item())
    return step, parameters(encoder, trunk, image, mask, D)


STEPS = {"vae": vae_step, "classifier": classifier_step, "bernoulli": bernoulli_step, "markov": markov_step,
         "nade": nade_step, "pixelcnn": pixelcnn_step, "pixelrnn": pixelrnn_step,
         "aae": lambda args: gan_twin.aae(args.hidden_aae)[:2], "infogan": lambda args: gan_twin.infogan()[:2],
         "text2image": text2image_step,
         "cyclegan": cyclegan_step, "progan": progan_step,
         "ddpm": ddpm_step, "stargan": stargan_step, "puzzlegan": puzzlegan_step}


def compile_networks(step):
    """torch.compile, in place (Module.compile), every network the step function reaches through its
    closures and those of the functions it calls: what a user who compiles their models gets. (Compiling
    the whole step recompiles at every new loss value that .item() hands back, then gives up.) Returns
    how many it compiled."""
    seen, compiled = set(), 0

    def walk(value):
        nonlocal compiled
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, nn.Module):
            value.compile()
            compiled += 1
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif callable(value) and getattr(value, "__closure__", None):
            for cell in value.__closure__:
                try:
                    walk(cell.cell_contents)
                except ValueError:  # a cell not yet filled
                    pass

    walk(step)
    return compiled


def bench(args):
    """The row `loom bench train MODEL --json` prints, for the twin: the median of args.steps steps after
    args.warmup, quartiles, images per second, peak RSS (the data set included), and the number of
    trainable parameters (loom's row has none: compare with the sizes of a checkpoint's model.* tensors)."""
    torch.manual_seed(args.seed)
    times = []
    total, args.steps = args.steps, args.warmup + args.steps
    if args.model in STEPS:
        step, params, *data = STEPS[args.model](args)
        compiled = compile_networks(step) if args.compile else 0
        images, labels = data[0] if data else gan_twin.fashion("train")
        for started, x, y in gan_twin.batches(images, labels, args.batch_size, args.steps):
            step(x, y)
            times.append(time.perf_counter() - started)
    else:  # the adversarial twins' own loop, which times its steps the same way
        G, D, generate, discriminate, conditioned, detach = gan_twin.build(args)
        compiled = compile_networks((G, D)) if args.compile else 0
        params = parameters(G, D)
        gan_twin.train(args, G, D, generate, discriminate, conditioned, detach, on_step=times.append)
    t = np.array(times[args.warmup:]) * 1e3
    median = float(np.median(t))
    row = {"model": "torch " + args.model + (" compiled" if args.compile else ""), "device": args.device,
           "threads": torch.get_num_threads(), "batch_size": args.batch_size, "warmup": args.warmup, "steps": total,
           "parameters": sum(p.numel() for p in params), "median_ms": median,
           "q1_ms": float(np.quantile(t, 0.25)), "q3_ms": float(np.quantile(t, 0.75)), "min_ms": float(t.min()),
           "images_per_s": args.batch_size / (median / 1e3),
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if args.compile:
        row["compiled_networks"] = compiled
    if args.device.startswith("cuda"):
        row["peak_device_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", choices=sorted(STEPS) + ["gan", "cgan", "dcgan"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (PyTorch >= 2.0 for a GPU)")
    p.add_argument("--compile", action="store_true", help="torch.compile the step's networks (PyTorch >= 2.2)")
    p.add_argument("--data", default=gan_twin.FASHION, help="the Fashion-MNIST IDX folder")
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
    gan_twin.FASHION = args.data
    if args.device != "cpu" and not hasattr(torch, "set_default_device"):
        p.error(f"--device {args.device} needs PyTorch >= 2.0 (this is {torch.__version__})")
    if args.compile and not hasattr(nn.Module, "compile"):
        p.error(f"--compile needs PyTorch >= 2.2 (this is {torch.__version__})")
    if args.device != "cpu":
        torch.set_default_device(args.device)
    print(json.dumps(bench(args)))


if __name__ == "__main__":
    main()
