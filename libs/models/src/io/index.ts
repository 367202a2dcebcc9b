/**
 * Bytes and files: `weightsToBytes`/`weightsFromBytes` (checkpoints; weights incl. batch-norm
 * statistics), `tensorsToBytes`/`tensorsFromBytes` (optimizer state, anything named),
 * `exportLayersModel`/`loadExportedModel` (model.json + weights.bin for tf.loadLayersModel),
 * `preprocessImage` + `predictTopK`/`predictImage` (`fleet predict`).
 */
export * from './errors';
export * from './confined-path';
export * from './layers-export';
export * from './predict';
export * from './preprocess';
export * from './tensor-bytes';
