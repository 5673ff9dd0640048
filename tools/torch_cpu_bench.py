#!/usr/bin/python3
"""PyTorch CPU baseline for tools/bench_cpu.cpp: the same shapes, the same FLOP counts.

Run with Debian's python3-torch, pinned to the thread count loom-bench-cpu uses:
    /usr/bin/python3 tools/torch_cpu_bench.py --threads 2
    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 ./build/tools/loom-bench-cpu
Prints one line per case: name, median time per iteration and GFLOP/s.
A convolution costs 2·N·O·OH·OW·(C/groups)·kh·kw FLOPs in each of its three passes
(forward, backward-data, backward-weight); GEMM m·n·k costs 2·m·n·k.
"""
import argparse
import statistics
import time

import torch

# (name, batch, in channels, out channels, input size, kernel, stride, padding): DCGAN-28's discriminator.
CONV_SHAPES = [
    ("conv1_64_28x28", 64, 1, 64, 28, 4, 2, 1),
    ("conv64_128_14x14", 64, 64, 128, 14, 4, 2, 1),
]


def median_seconds(fn, min_time, repeats):
    """Median over `repeats` rounds, each round running fn for at least min_time seconds."""
    fn()  # warm up (allocations, oneDNN primitive creation)
    rounds = []
    for _ in range(repeats):
        iters, start = 0, time.perf_counter()
        while True:
            fn()
            iters += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        rounds.append(elapsed / iters)
    return statistics.median(rounds)


def report(name, flops, seconds):
    print(f"{name:<40s} {seconds * 1e3:10.3f} ms  {flops / seconds / 1e9:8.2f} GFLOP/s", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds per measurement round")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32")

    n = 512
    a, b = torch.randn(n, n), torch.randn(n, n)
    report("gemm_512", 2 * n**3, median_seconds(lambda: torch.mm(a, b), args.min_time, args.repeats))

    for name, batch, c, o, size, k, s, p in CONV_SHAPES:
        x = torch.randn(batch, c, size, size)
        w = torch.randn(o, c, k, k)
        y = torch.nn.functional.conv2d(x, w, stride=s, padding=p)
        gy = torch.randn_like(y)
        flops = 2 * batch * o * y.shape[2] * y.shape[3] * c * k * k

        def backward(mask):
            return torch.ops.aten.convolution_backward(gy, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], 1, mask)

        with torch.no_grad():
            report(f"{name}/forward", flops,
                   median_seconds(lambda: torch.nn.functional.conv2d(x, w, stride=s, padding=p), args.min_time,
                                  args.repeats))
            report(f"{name}/backward_data", flops,
                   median_seconds(lambda: backward([True, False, False]), args.min_time, args.repeats))
            report(f"{name}/backward_weight", flops,
                   median_seconds(lambda: backward([False, True, False]), args.min_time, args.repeats))


if __name__ == "__main__":
    main()
