export { TrainingError, TrainingErrorCode } from './errors';
export { Sgd, SgdOptions, SGD_DEFAULTS, resolveSgdOptions } from './optim/sgd';
export { createLrSchedule, LrSchedule, LrScheduleContext, LrScheduleSpec, LrScheduleState, LrScheduleType } from './schedule/lr-schedule';
export { Trainer, TrainerOptions, TrainBatch, StepResult, EvalResult, TrainerState } from './trainer/trainer';
export { TrainerComm, WireFormat } from './trainer/comm';
export { OutputKind } from './trainer/metrics';
export {
  saveCheckpoint,
  uncommitCheckpoint,
  writeCheckpointPart,
  commitCheckpoint,
  loadCheckpoint,
  loadCheckpointTensors,
  listCheckpoints,
  latestCheckpoint,
  pruneCheckpoints,
  checkpointKey,
  checkpointPrefix,
  CheckpointStore,
  CheckpointState,
  CheckpointParts,
  CheckpointPart,
  CheckpointPartKind,
  CheckpointManifest,
  LoadedCheckpoint,
} from './checkpoint/checkpoint';
export { createTrainerFromSpec, modelOptionsFromSpec, TrainerJobSpec, TrainerFromSpecOptions } from './from-spec';
/** In-process fake communicator, for tests and single-host simulation of data-parallel arithmetic. */
export { createInProcessGroup } from './testing/in-process-comm';
