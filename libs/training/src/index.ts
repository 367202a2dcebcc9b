export { TrainingError, TrainingErrorCode } from './errors';
export { Sgd, SgdOptions, SGD_DEFAULTS, resolveSgdOptions } from './optim/sgd';
export { createLrSchedule, LrSchedule, LrScheduleContext, LrScheduleSpec, LrScheduleState, LrScheduleType } from './schedule/lr-schedule';
export { Trainer, TrainerOptions, TrainBatch, StepResult, EvalResult, TrainerState, checkTrainerState } from './trainer/trainer';
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
  checkPartFile,
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
/** In-process fake communicators, for tests and single-host simulation of a plan's arithmetic. */
export { createInProcessGroup, createInProcessWorld } from './testing/in-process-comm';
/** Seeded uniform [0, 1) (mulberry32), for tests that must replay a random plan. */
export { rng } from './testing/fixtures';
export { PartOptimizer } from './trainer/part-optimizer';
export { ParallelPlan, ParallelismSpec, PlanKind, PipelineSchedule, RankPlace, StageBalance } from './parallel/plan';
export { pipelineOps, peakInFlight, idealEfficiency, PipeOp } from './parallel/schedule';
export { balanceStages, pipelineStages, planLayout, sectionsOfStages, stagesFromCuts, RankLayout } from './parallel/layout';
export { planErrors } from './parallel/validate-plan';
export { planComms, hashPart, PlanComms, PlanTrainer, PlanStepResult, StepTimings } from './parallel/plan-trainer';
export { createPlanTrainer, PlanTrainerContext } from './parallel/create-plan-trainer';
export { PipelineStageTrainer, PipelineTrainerOptions } from './parallel/pipeline-trainer';
export { ColumnTrainer, ColumnTrainerOptions } from './parallel/column-trainer';
export { DataParallelTrainer } from './parallel/data-parallel-trainer';
export { profileSections } from './parallel/profile';
export { runTraining, RunAssignment, RunContext, RunOutcome, RunReporter, ResumeSource, StopRequest } from './run/training-run';
export { SurvivorMemory, StepCommit, HeldState, HeldPosition, HeldSummary } from './run/survivor-state';
export { runCheckpointBench, formatCheckpointBench, CheckpointBenchOptions, CheckpointBenchResult, CheckpointBenchRow, CheckpointMode } from './bench/checkpoint-bench';
export { RunCheckpointer, RunCheckpointerOptions, SnapshotPart } from './run/run-checkpointer';
export { writeCheckpointPartsInThread } from './checkpoint/part-upload';
export { runPipelineBench, formatPipelineBench, PipelineBenchOptions, PipelineBenchResult, PipelineBenchRow } from './bench/pipeline-bench';
