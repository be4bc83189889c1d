import { createCipheriv, createHmac } from 'node:crypto';

/**
 * Weights of the Poisson cluster bootstrap, the resampling that federates: instead of drawing N patients with
 * replacement (multinomial counts that depend on every other patient, stats/bootstrap.ts), each patient gets an
 * independent Poisson(1) weight in each replicate (Hanley & MacGibbon 2006, "Creating non-parametric bootstrap samples
 * using Poisson frequencies"; Chamandy et al. 2012, "Estimating uncertainty for massive data streams"). A weight
 * depends only on the patient, so a replicate's weighted sums computed at each site add up to the union's, and the hub
 * can pool B per-replicate sums instead of patient rows.
 *
 * The weights are a keyed function of (task seed, patient key) under a key that never leaves the node. They must stay
 * unknown to the hub: B replicate sums are B linear combinations of per-patient values, and with known weights and
 * B >= patients the hub could solve for every patient's value. The single-node reference computation of a federated
 * answer takes the same weight function, so the federated and the union answers agree exactly.
 */
export class BootstrapWeightError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BootstrapWeightError';
  }
}

/** Poisson(1) cumulative probabilities: P(W <= k) for k = 0..; a weight above 16 has probability 2e-15 and is capped. */
const POISSON_1_CDF: number[] = (() => {
  const cdf: number[] = [];
  let p = Math.exp(-1);
  let sum = 0;
  for (let k = 0; k <= 16; k++) {
    sum += p;
    cdf.push(sum);
    p /= k + 1;
  }
  return cdf;
})();

export const MAX_REPLICATES = 100_000;

/**
 * `replicates` Poisson(1) weights of one patient. `nodeKey` is the node's secret (32 bytes), `seed` the task's seed,
 * `patientKey` the patient's stable key inside the node (site code and pseudonym).
 */
export function poissonWeights(nodeKey: Buffer, seed: string, patientKey: string, replicates: number): Uint8Array {
  if (nodeKey.length !== 32) throw new BootstrapWeightError('the bootstrap key is 32 bytes');
  if (!Number.isInteger(replicates) || replicates < 1 || replicates > MAX_REPLICATES)
    throw new BootstrapWeightError(`replicates must be an integer from 1 to ${MAX_REPLICATES}`);
  // One AES-256-CTR stream per (seed, patient): HMAC separates the inputs unambiguously (length-prefixed).
  const key = createHmac('sha256', nodeKey)
    .update(`facet poisson bootstrap v1\u0000${Buffer.byteLength(seed)}:${seed}\u0000${patientKey}`)
    .digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const stream = Buffer.concat([cipher.update(Buffer.alloc(replicates * 8)), cipher.final()]);
  const weights = new Uint8Array(replicates);
  for (let r = 0; r < replicates; r++) {
    // 53 random bits: a uniform double in [0, 1).
    const u = Number(stream.readBigUInt64LE(r * 8) >> 11n) / 2 ** 53;
    let k = 0;
    while (k < POISSON_1_CDF.length - 1 && u >= POISSON_1_CDF[k]) k++;
    weights[r] = k;
  }
  return weights;
}
