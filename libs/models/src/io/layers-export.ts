import { existsSync, promises as fs } from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { confinedPath } from './confined-path';
import { ModelIoError } from './errors';

/** What an export carries besides the architecture and weights, for `predict` and for people. */
export interface ExportMetadata {
  /** Registered zoo name, e.g. 'resnet50'. */
  modelName?: string;
  classNames?: string[];
  inputSize?: number;
  mean?: [number, number, number];
  std?: [number, number, number];
  /** Centre-crop fraction for preprocessing (0.875 ImageNet eval, 1 for CIFAR). */
  cropFraction?: number;
  [key: string]: unknown;
}

export interface SerializedLayersModel {
  /** model.json: topology + weightsManifest pointing at `weightsPath`. */
  modelJson: string;
  weightsBin: Uint8Array;
}

export const WEIGHTS_FILE = 'weights.bin';

/** The model as the two files tf.loadLayersModel reads (no optimizer state: checkpoints carry that). */
export async function serializeLayersModel(model: tf.LayersModel, metadata?: ExportMetadata): Promise<SerializedLayersModel> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!artifacts?.weightData || !artifacts.weightSpecs) throw new ModelIoError('BAD_FORMAT', `model ${model.name} saved no weights`);
  const weightData = tf.io.CompositeArrayBuffer.join(artifacts.weightData);
  const modelJson: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology as object,
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs }],
    ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
    ...(metadata ? { userDefinedMetadata: metadata as tf.io.ModelJSON["userDefinedMetadata"] } : {}),
  };
  return { modelJson: JSON.stringify(modelJson), weightsBin: new Uint8Array(weightData) };
}

/** Writes `dir/model.json` and `dir/weights.bin`; the caller must import @tensorfleet/models before loading (custom layers). */
export async function exportLayersModel(model: tf.LayersModel, dir: string, metadata?: ExportMetadata): Promise<{ files: string[]; bytes: number }> {
  const { modelJson, weightsBin } = await serializeLayersModel(model, metadata);
  await fs.mkdir(dir, { recursive: true });
  const files = [path.join(dir, 'model.json'), path.join(dir, WEIGHTS_FILE)];
  await fs.writeFile(files[1], weightsBin);
  await fs.writeFile(files[0], modelJson); // last: a folder with model.json is complete
  return { files, bytes: weightsBin.length + Buffer.byteLength(modelJson) };
}

/** An IOHandler over model.json text and a reader for the weight files it names. */
export function layersModelHandler(modelJson: string, readWeights: (p: string) => Promise<Uint8Array>): tf.io.IOHandler {
  return {
    load: async () => {
      const json = JSON.parse(modelJson) as tf.io.ModelJSON;
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) {
            const b = await readWeights(p);
            buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
          }
        }
        return [specs, tf.io.concatenateArrayBuffers(buffers)];
      });
    },
  };
}

/** Opens what exportLayersModel wrote, through tf.loadLayersModel; metadata via model.getUserDefinedMetadata(). */
export async function loadExportedModel(dir: string): Promise<tf.LayersModel> {
  const jsonPath = path.join(dir, 'model.json');
  if (existsSync(jsonPath)) confinedPath(dir, 'model.json', jsonPath);
  const modelJson = await fs.readFile(jsonPath, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new ModelIoError('NOT_FOUND', `cannot read ${jsonPath} (${e.code}): pass a folder written by exportLayersModel`);
  });
  // model.json names its weight files: they must be in its folder, not `../../elsewhere` nor links out of it.
  return tf.loadLayersModel(layersModelHandler(modelJson, async (p) => fs.readFile(confinedPath(dir, p, `${jsonPath} weightsManifest.paths`))));
}

/** Same, from the two files' bytes (e.g. fetched from object storage). */
export async function deserializeLayersModel(s: SerializedLayersModel): Promise<tf.LayersModel> {
  return tf.loadLayersModel(layersModelHandler(s.modelJson, async () => s.weightsBin));
}
