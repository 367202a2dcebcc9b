import { generateKeyPairSync } from 'node:crypto';

/**
 * ZeroMQ CURVE on the data plane. Keys are Curve25519 (X25519) keys, 32 bytes, written as 64
 * hex digits wherever they travel (registry, assignments, JoinOptions); ZeroMQ takes the raw
 * bytes. node:crypto makes them, so the coordinator needs no ZeroMQ to hand keys out.
 */
export interface CurveKeyPair {
  publicKey: string;
  secretKey: string;
}

/**
 * What one rank needs to join a run with CURVE: its own client key pair for this membership
 * epoch and every rank's client public key (index = rank; its own included). The coordinator
 * makes a new set for every epoch, so a key of an earlier epoch opens nothing.
 */
export interface JoinCurve extends CurveKeyPair {
  peerKeys: string[];
}

/**
 * Which of a node's endpoints demand CURVE. `tcp` (the default): tcp does, the host-local ipc
 * endpoint does not (its socket file is the owner's only, mode 0600); `all`: both; `off`: none.
 */
export type CurveMode = 'tcp' | 'all' | 'off';
export const CURVE_MODES: readonly CurveMode[] = ['tcp', 'all', 'off'];

const KEY = /^[0-9a-f]{64}$/;

/** A fresh X25519 key pair, hex. */
export function newCurveKeyPair(): CurveKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const hex = (b64url: string | undefined) => Buffer.from(b64url ?? '', 'base64url').toString('hex');
  return { publicKey: hex(publicKey.export({ format: 'jwk' }).x), secretKey: hex(privateKey.export({ format: 'jwk' }).d) };
}

/** One client key pair per rank of an epoch, as the coordinator hands them out (tests, benchmarks). */
export function curveMembers(worldSize: number): JoinCurve[] {
  const pairs = Array.from({ length: worldSize }, newCurveKeyPair);
  const peerKeys = pairs.map((p) => p.publicKey);
  return pairs.map((p) => ({ ...p, peerKeys }));
}

/** FLEET_COLLECTIVE_CURVE: tcp (default) | all | off; 0/1 as off/tcp. */
export function curveModeFromEnv(value = process.env.FLEET_COLLECTIVE_CURVE): CurveMode {
  if (value === undefined || value === '') return 'tcp';
  const v = value.toLowerCase();
  if (v === '0' || v === 'false') return 'off';
  if (v === '1' || v === 'true') return 'tcp';
  if ((CURVE_MODES as readonly string[]).includes(v)) return v as CurveMode;
  throw new RangeError(`FLEET_COLLECTIVE_CURVE=${value}: use tcp (CURVE between hosts, the default), all (ipc too) or off (0)`);
}

/** The raw 32 bytes ZeroMQ takes; `field` names the offending value in the error. */
export function keyBytes(hex: string, field: string): Buffer {
  if (typeof hex !== 'string' || !KEY.test(hex)) throw new TypeError(`${field} must be a CURVE key of 64 hex digits, got ${JSON.stringify(hex)?.slice(0, 80)}`);
  return Buffer.from(hex, 'hex');
}

/** Checks a JoinCurve against the world size; throws naming the field. */
export function checkJoinCurve(c: JoinCurve, worldSize: number, rank: number): void {
  keyBytes(c.publicKey, 'join: curve.publicKey');
  keyBytes(c.secretKey, 'join: curve.secretKey');
  if (!Array.isArray(c.peerKeys) || c.peerKeys.length !== worldSize) {
    throw new RangeError(`join: curve.peerKeys must list ${worldSize} public keys (one per rank), got ${c.peerKeys?.length}`);
  }
  c.peerKeys.forEach((k, r) => keyBytes(k, `join: curve.peerKeys[${r}]`));
  if (c.peerKeys[rank] !== c.publicKey) throw new RangeError(`join: curve.peerKeys[${rank}] is not this rank's curve.publicKey`);
}
