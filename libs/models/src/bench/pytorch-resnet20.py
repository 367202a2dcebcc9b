# The same ResNet-20 training step in PyTorch on one thread: the reference `fleet bench train`
# is compared with (docs/benchmarks.md). Run: /usr/bin/python3 libs/models/src/bench/pytorch-resnet20.py
# (Debian python3-torch; CIFAR ResNet-20, shortcut B, SGD momentum, batch 64 of random data).
import time, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(1)
class Block(nn.Module):
    def __init__(s, cin, cout, stride):
        super().__init__()
        s.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); s.b1 = nn.BatchNorm2d(cout)
        s.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); s.b2 = nn.BatchNorm2d(cout)
        s.sc = None
        if stride != 1 or cin != cout:
            s.sc = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    def forward(s, x):
        y = F.relu(s.b1(s.c1(x))); y = s.b2(s.c2(y))
        return F.relu(y + (x if s.sc is None else s.sc(x)))
class R20(nn.Module):
    def __init__(s):
        super().__init__()
        s.c = nn.Conv2d(3, 16, 3, 1, 1, bias=False); s.b = nn.BatchNorm2d(16)
        layers = []; cin = 16
        for cout, stride in [(16, 1), (32, 2), (64, 2)]:
            for i in range(3): layers.append(Block(cin, cout, stride if i == 0 else 1)); cin = cout
        s.layers = nn.Sequential(*layers); s.fc = nn.Linear(64, 10)
    def forward(s, x):
        x = F.relu(s.b(s.c(x))); x = s.layers(x)
        return s.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
m = R20(); opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
x = torch.randn(64, 3, 32, 32); y = torch.randint(0, 10, (64,))
def step():
    opt.zero_grad(); F.cross_entropy(m(x), y).backward(); opt.step()
for _ in range(3): step()
for r in range(3):
    t = time.perf_counter(); n = 10
    for _ in range(n): step()
    dt = (time.perf_counter() - t) / n
    print(f"pytorch {torch.__version__} resnet20 b64 1 thread: {64/dt:.1f} img/s ({dt*1000:.0f} ms/step)")
