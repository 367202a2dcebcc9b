"""The same training step in PyTorch: the reference `fleet bench train` prints beside its rows.

Usage: python3 pytorch-train-step.py MODEL INPUT BATCH STEPS WARMUP THREADS
Prints one JSON line: {"version", "msPerStep", "imagesPerSec", "cpuMsPerStep", "peakBytes"} or {"error"}.
The step is the benchmark's: forward in training mode, softmax cross-entropy, backward, SGD with
momentum 0.9, on random data; CIFAR ResNet-20 (shortcut B, as the zoo's), torchvision's
ResNet-18/50 and AlexNet. peakBytes is the process's peak RSS above what it held before the
model was built (weights, gradients, momentum, activations, the allocator's caches).
"""
import json
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class Block(nn.Module):
    def __init__(s, cin, cout, stride):
        super().__init__()
        s.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        s.b1 = nn.BatchNorm2d(cout)
        s.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        s.b2 = nn.BatchNorm2d(cout)
        s.sc = None
        if stride != 1 or cin != cout:
            s.sc = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(s, x):
        y = F.relu(s.b1(s.c1(x)))
        y = s.b2(s.c2(y))
        return F.relu(y + (x if s.sc is None else s.sc(x)))


class CifarResNet(nn.Module):
    def __init__(s, n, classes):
        super().__init__()
        s.c = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        s.b = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for cout, stride in [(16, 1), (32, 2), (64, 2)]:
            for i in range(n):
                layers.append(Block(cin, cout, stride if i == 0 else 1))
                cin = cout
        s.layers = nn.Sequential(*layers)
        s.fc = nn.Linear(64, classes)

    def forward(s, x):
        x = s.layers(F.relu(s.b(s.c(x))))
        return s.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def build(name, classes):
    cifar = {'resnet8': 1, 'resnet20': 3, 'resnet32': 5, 'resnet56': 9}
    if name in cifar:
        return CifarResNet(cifar[name], classes)
    if name in ('resnet18', 'resnet34', 'resnet50', 'resnet101', 'alexnet'):
        return getattr(torchvision.models, name)(num_classes=classes)
    return None


def rss_bytes():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def main():
    name, size, batch, steps, warmup, threads = sys.argv[1], *map(int, sys.argv[2:7])
    torch.set_num_threads(threads)
    classes = 10 if name.startswith('resnet') and size <= 64 else 1000
    base = rss_bytes()
    model = build(name, classes)
    if model is None:
        print(json.dumps({'error': f'no PyTorch model for {name}'}))
        return
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, classes, (batch,))

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(warmup):
        step()
    t, c = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    ms = (time.perf_counter() - t) / steps * 1000
    cpu_ms = (time.process_time() - c) / steps * 1000
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    print(json.dumps({'version': torch.__version__, 'msPerStep': ms, 'imagesPerSec': batch * 1000 / ms,
                      'cpuMsPerStep': cpu_ms, 'peakBytes': peak}))


main()
