import { generateKeyPairSync } from 'node:crypto';

/**
 * A rank's CURVE keys for one membership epoch of a run, in its assignment (the shape of
 * @tensorfleet/collective's JoinCurve): its own client key pair and every rank's public key,
 * 32-byte X25519 keys as 64 hex digits.
 */
export interface AssignmentCurve {
  publicKey: string;
  secretKey: string;
  /** Every rank's client public key, index = rank. */
  peerKeys: string[];
}

/**
 * New keys for every rank of an epoch. The coordinator makes them at each assignment, so the
 * keys of an earlier epoch admit nobody, and each secret goes only into its own rank's inbox
 * (never into the job record, which the read-only API shows).
 */
export function memberCurveKeys(worldSize: number): AssignmentCurve[] {
  const pairs = Array.from({ length: worldSize }, () => {
    const { publicKey, privateKey } = generateKeyPairSync('x25519');
    const hex = (b64url: string | undefined) => Buffer.from(b64url ?? '', 'base64url').toString('hex');
    return { publicKey: hex(publicKey.export({ format: 'jwk' }).x), secretKey: hex(privateKey.export({ format: 'jwk' }).d) };
  });
  const peerKeys = pairs.map((p) => p.publicKey);
  return pairs.map((p) => ({ ...p, peerKeys }));
}
