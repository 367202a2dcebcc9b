"""Runs the zoo's models in PyTorch/torchvision with the same weights and prints the gap.

Usage: python3 torchvision_parity.py CASES.json. Each case: {"name", "file", "options"}, where
file is a tensor container (tensorsToBytes) of the model's weights plus __input (NHWC) and
__output, and options are the zoo's resolved options. Prints one JSON line per case.
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
from torchvision.models import alexnet
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet


def read(path):
    b = open(path, 'rb').read()
    assert b[:4] == b'TFNT', 'not a tensor container'
    _, header_len = struct.unpack('<II', b[4:12])
    header = json.loads(b[12:12 + header_len])
    start = (12 + header_len + 7) // 8 * 8
    return {
        t['name']: np.frombuffer(b, dtype=np.float32 if t['dtype'] == 'float32' else np.int32,
                                 count=int(np.prod(t['shape'])), offset=start + t['offset']).reshape(t['shape'])
        for t in header['tensors']
    }


class SqueezeExcite(nn.Module):
    """timm's SEModule: x * sigmoid(fc2(relu(fc1(mean_hw(x)))))."""

    def __init__(self, channels, reduced):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1, bias=True)
        self.fc2 = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))


class SEBottleneck(Bottleneck):
    """timm's Bottleneck with attn_layer='se': SE after bn3, before the residual sum."""

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.se(self.bn3(self.conv3(out)))
        return self.relu(out + identity)


def make_divisible(v, divisor=8):
    return max(divisor, int(v + divisor / 2) // divisor * divisor)


class ZooResNet(ResNet):
    """torchvision's ResNet with the zoo's stage widths and stems, plus timm's SE, deep stem and avg-down."""

    def __init__(self, o):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.dilation = 1
        self.groups = o['cardinality']
        self.base_width = o['widthPerGroup']
        block = BasicBlock if o['block'] == 'basic' else Bottleneck
        self.inplanes = o['stemWidth']
        if o['stem'] == 'imagenet':
            self.conv1 = nn.Conv2d(3, self.inplanes, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        elif o['stem'] == 'deep':  # timm stem_type='deep'
            w = o['stemWidth']
            self.inplanes = 2 * w
            self.conv1 = nn.Sequential(
                nn.Conv2d(3, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                nn.Conv2d(w, 2 * w, 3, 1, 1, bias=False))
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(3, self.inplanes, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.stages = len(o['layers'])
        for i, (n, w) in enumerate(zip(o['layers'], o['widths'])):
            setattr(self, f'layer{i + 1}', self._make_layer(block, w, n, stride=1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(o['widths'][-1] * block.expansion, o['numClasses'])
        for m in list(self.modules()):
            if isinstance(m, Bottleneck) and o['seReduction'] > 0:
                m.__class__ = SEBottleneck
                c = m.conv3.out_channels
                m.se = SqueezeExcite(c, make_divisible(c / o['seReduction']))
            if isinstance(m, (BasicBlock, Bottleneck)) and m.downsample is not None and o['avgDown']:
                conv, bn = m.downsample[0], m.downsample[1]
                stride = conv.stride[0]
                pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
                m.downsample = nn.Sequential(pool, nn.Conv2d(conv.in_channels, conv.out_channels, 1, bias=False), bn)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.stages):
            x = getattr(self, f'layer{i + 1}')(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class PaperAlexNet(nn.Module):
    """Krizhevsky et al. 2012 as one column with groups=2 for conv2/4/5 and LRN within each half."""

    def __init__(self, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 11, 4)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2, groups=2)
        self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
        self.conv4 = nn.Conv2d(384, 384, 3, padding=1, groups=2)
        self.conv5 = nn.Conv2d(384, 256, 3, padding=1, groups=2)
        self.lrn = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
        self.pool = nn.MaxPool2d(3, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(6)
        self.fc6 = nn.Linear(9216, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, num_classes)

    def column_lrn(self, x):
        return torch.cat([self.lrn(h) for h in x.chunk(2, 1)], 1)

    def forward(self, x):
        x = self.pool(self.column_lrn(torch.relu(self.conv1(x))))
        x = self.pool(self.column_lrn(torch.relu(self.conv2(x))))
        x = torch.relu(self.conv4(torch.relu(self.conv3(x))))
        x = torch.flatten(self.avgpool(self.pool(torch.relu(self.conv5(x)))), 1)
        return self.fc8(torch.relu(self.fc7(torch.relu(self.fc6(x)))))


def load_paper(model, w):
    """Joins the zoo's col0_/col1_ layers into the single-module form (outputs: column 0 first)."""
    conv = lambda n: np.concatenate([w[f'col{c}_conv{n}/kernel'].transpose(3, 2, 0, 1) for c in (0, 1)])
    bias = lambda n, kind: np.concatenate([w[f'col{c}_{kind}{n}/bias'] for c in (0, 1)])
    dense = lambda n: np.concatenate([w[f'col{c}_fc{n}/kernel'] for c in (0, 1)], 1).T  # [out, in]
    fc6 = dense(6)
    # zoo fc6 input: column c's map flattened as (h, w, c_local); torch: (channel = 128c + c_local, h, w)
    ch, hh, ww = np.meshgrid(np.arange(256), np.arange(6), np.arange(6), indexing='ij')
    zoo_row = (ch // 128) * 4608 + (hh * 6 + ww) * 128 + ch % 128
    state = {
        **{f'conv{n}.weight': conv(n) for n in range(1, 6)}, **{f'conv{n}.bias': bias(n, 'conv') for n in range(1, 6)},
        'fc6.weight': fc6[:, zoo_row.reshape(-1)], 'fc6.bias': bias(6, 'fc'),
        'fc7.weight': dense(7), 'fc7.bias': bias(7, 'fc'),
        'fc8.weight': w['fc8/kernel'].T, 'fc8.bias': w['fc8/bias'],
    }
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return model.eval()


ALEXNET = {'conv1': 'features.0', 'conv2': 'features.3', 'conv3': 'features.6', 'conv4': 'features.8',
           'conv5': 'features.10', 'fc6': 'classifier.1', 'fc7': 'classifier.4', 'fc8': 'classifier.6'}
SUFFIX = {'bias': 'bias', 'gamma': 'weight', 'beta': 'bias', 'moving_mean': 'running_mean', 'moving_variance': 'running_var'}


DEEP_STEM = {'stem_conv1': 'conv1.0', 'bn_stem1': 'conv1.1', 'stem_conv2': 'conv1.3', 'bn_stem2': 'conv1.4', 'conv1': 'conv1.6'}


def torch_key(layer, o):
    if 'form' in o:
        return ALEXNET[layer]
    if o['stem'] == 'deep' and layer in DEEP_STEM:
        return DEEP_STEM[layer]
    parts = layer.split('_')
    if parts[0].startswith('layer'):  # layer1_0_downsample_conv -> layer1.0.downsample.0
        layer = f'{parts[0]}.{parts[1]}.' + '_'.join(parts[2:])
    first = 1 if o['avgDown'] else 0
    return (layer.replace('downsample_conv', f'downsample.{first}').replace('downsample_bn', f'downsample.{first + 1}')
            .replace('se_fc', 'se.fc'))


def load(model, weights, o):
    is_alexnet = 'form' in o
    state = model.state_dict()
    used = set()
    for name, v in weights.items():
        if name.startswith('__'):
            continue
        layer, w = name.split('/')
        base = torch_key(layer, o)
        if w == 'kernel':
            if v.ndim == 4:
                t = v.transpose(3, 2, 0, 1)  # [kh, kw, cin, cout] -> [cout, cin, kh, kw]
            else:
                t = v.T
                if is_alexnet and layer == 'fc6':  # the zoo flattens (h, w, c), torch (c, h, w)
                    t = t.reshape(t.shape[0], 6, 6, -1).transpose(0, 3, 1, 2).reshape(t.shape[0], -1)
            key = base + '.weight'
        else:
            key = base + '.' + SUFFIX[w]
            t = v
        if tuple(state[key].shape) != t.shape:
            raise ValueError(f'{name} -> {key}: {tuple(state[key].shape)} vs {t.shape}')
        state[key] = torch.from_numpy(np.array(t))
        used.add(key)
    missing = [k for k in state if k not in used and not k.endswith('num_batches_tracked')]
    if missing:
        raise ValueError(f'not set from the zoo weights: {missing}')
    model.load_state_dict(state)
    return model.eval()


def main():
    torch.set_num_threads(1)
    for case in json.load(open(sys.argv[1])):
        o = case['options']
        weights = read(case['file'])
        if o.get('form') == 'paper':
            model = load_paper(PaperAlexNet(o['numClasses']), weights)
        else:
            model = load(alexnet(num_classes=o['numClasses']) if 'form' in o else ZooResNet(o), weights, o)
        with torch.no_grad():
            y = model(torch.from_numpy(np.array(weights['__input'].transpose(0, 3, 1, 2)))).numpy()
        ours = weights['__output']
        print(json.dumps({'name': case['name'], 'maxAbsDiff': float(np.abs(y - ours).max()), 'maxAbs': float(np.abs(y).max())}), flush=True)


if __name__ == '__main__':
    main()
