import { AlexNetOptions, alexnet, alexnetDefaults, validateAlexNet } from './alexnet';
import { ModelBuilder, registerModel } from './registry';
import { ResNetOptions, resnet, resnetDefaults, validateResNet } from './resnet';

export const resnetBuilder: ModelBuilder<ResNetOptions> = { family: 'resnet', defaults: resnetDefaults, free: ['zeroInitLastBn', 'shortcut'], validate: validateResNet, build: resnet };
export const alexnetBuilder: ModelBuilder<AlexNetOptions> = { family: 'alexnet', defaults: alexnetDefaults, free: ['dropout', 'init'], validate: validateAlexNet, build: alexnet };

const basic = 'basic' as const;
const bottleneck = 'bottleneck' as const;
const cifar = { stem: 'cifar' as const, widths: [16, 32, 64], stemWidth: 16, numClasses: 10, inputSize: 32, block: basic };

registerModel('resnet18', resnetBuilder, { block: basic, layers: [2, 2, 2, 2], description: 'ResNet-18 (He et al. 2015)' });
registerModel('resnet34', resnetBuilder, { block: basic, layers: [3, 4, 6, 3], description: 'ResNet-34 (He et al. 2015)' });
registerModel('resnet50', resnetBuilder, { block: bottleneck, layers: [3, 4, 6, 3], description: 'ResNet-50 (He et al. 2015), torchvision v1.5 stride' });
registerModel('resnet101', resnetBuilder, { block: bottleneck, layers: [3, 4, 23, 3], description: 'ResNet-101 (He et al. 2015)' });
registerModel('resnet152', resnetBuilder, { block: bottleneck, layers: [3, 8, 36, 3], description: 'ResNet-152 (He et al. 2015)' });
registerModel('resnext50_32x4d', resnetBuilder, { block: bottleneck, layers: [3, 4, 6, 3], cardinality: 32, widthPerGroup: 4, description: 'ResNeXt-50 32×4d (Xie et al. 2017)' });
registerModel('resnext101_32x8d', resnetBuilder, { block: bottleneck, layers: [3, 4, 23, 3], cardinality: 32, widthPerGroup: 8, description: 'ResNeXt-101 32×8d (Xie et al. 2017)' });
registerModel('wide_resnet50_2', resnetBuilder, { block: bottleneck, layers: [3, 4, 6, 3], widthPerGroup: 128, description: 'Wide ResNet-50-2 (Zagoruyko & Komodakis 2016)' });
registerModel('seresnet50', resnetBuilder, { block: bottleneck, layers: [3, 4, 6, 3], seReduction: 16, description: 'SE-ResNet-50 (Hu et al. 2018), timm layout' });
registerModel('resnet50d', resnetBuilder, { block: bottleneck, layers: [3, 4, 6, 3], stem: 'deep', stemWidth: 32, avgDown: true, description: 'ResNet-50-D (He et al. 2019): deep stem, average-pool shortcut' });
registerModel('resnet8', resnetBuilder, { ...cifar, layers: [1, 1, 1], description: 'Tiny CIFAR ResNet (3 stages × 1 basic block) for tests and demos' });
for (const depth of [20, 32, 44, 56, 110]) {
  const n = (depth - 2) / 6;
  registerModel(`resnet${depth}`, resnetBuilder, { ...cifar, layers: [n, n, n], description: `CIFAR ResNet-${depth} (He et al. 2015, §4.2), projection shortcuts (option B)` });
}
registerModel('alexnet', alexnetBuilder, { form: 'torchvision', description: 'AlexNet, torchvision single-column form' });
registerModel('alexnet_paper', alexnetBuilder, { form: 'paper', inputSize: 227, description: 'AlexNet (Krizhevsky et al. 2012), two columns with LRN' });
