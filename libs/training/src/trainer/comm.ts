import type { Communicator } from '@tensorfleet/collective';

/**
 * The part of @tensorfleet/collective's `Communicator` the trainer uses. Declared
 * structurally so a real Communicator fits as is and the trainer needs nothing else.
 */
export interface TrainerComm {
  readonly rank: number;
  readonly worldSize: number;
  allReduce(buf: Float32Array, opts?: { op?: 'sum' | 'mean'; wire?: WireFormat }): Promise<Float32Array>;
  allReduceMany(
    bufs: Float32Array[],
    opts?: { op?: 'sum' | 'mean'; wire?: WireFormat; bucketBytes?: number; algorithm?: 'ring' | 'hierarchical' | 'auto' },
  ): Promise<Float32Array[]>;
  broadcast(buf: Uint8Array | Float32Array | null, root: number): Promise<Uint8Array>;
}

export type WireFormat = 'fp32' | 'fp16' | 'bf16';

// Compile-time check: a real Communicator must keep fitting TrainerComm.
const fits = (c: Communicator): TrainerComm => c;
void fits;
