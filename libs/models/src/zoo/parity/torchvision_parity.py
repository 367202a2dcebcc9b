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


class ZooResNet(ResNet):
    """torchvision's ResNet with the zoo's stage widths and stems (imagenet or cifar)."""

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

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.stages):
            x = getattr(self, f'layer{i + 1}')(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


ALEXNET = {'conv1': 'features.0', 'conv2': 'features.3', 'conv3': 'features.6', 'conv4': 'features.8',
           'conv5': 'features.10', 'fc6': 'classifier.1', 'fc7': 'classifier.4', 'fc8': 'classifier.6'}
SUFFIX = {'bias': 'bias', 'gamma': 'weight', 'beta': 'bias', 'moving_mean': 'running_mean', 'moving_variance': 'running_var'}


def torch_key(layer, is_alexnet):
    if is_alexnet:
        return ALEXNET[layer]
    parts = layer.split('_')
    if parts[0].startswith('layer'):  # layer1_0_downsample_conv -> layer1.0.downsample.0
        layer = f'{parts[0]}.{parts[1]}.' + '_'.join(parts[2:])
    return layer.replace('downsample_conv', 'downsample.0').replace('downsample_bn', 'downsample.1')


def load(model, weights, is_alexnet):
    state = model.state_dict()
    used = set()
    for name, v in weights.items():
        if name.startswith('__'):
            continue
        layer, w = name.split('/')
        base = torch_key(layer, is_alexnet)
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
        state[key] = torch.from_numpy(np.ascontiguousarray(t))
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
        is_alexnet = 'form' in o
        model = alexnet(num_classes=o['numClasses']) if is_alexnet else ZooResNet(o)
        load(model, weights, is_alexnet)
        with torch.no_grad():
            y = model(torch.from_numpy(np.ascontiguousarray(weights['__input'].transpose(0, 3, 1, 2)))).numpy()
        ours = weights['__output']
        print(json.dumps({'name': case['name'], 'maxAbsDiff': float(np.abs(y - ours).max()), 'maxAbs': float(np.abs(y).max())}), flush=True)


if __name__ == '__main__':
    main()
