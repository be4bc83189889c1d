import { readFile } from 'node:fs/promises';
import { canonicalJson, canonicalSha256, type JsonValue } from '../federation/canonical-json';
import { EnvelopeKind, verifyEnvelope, type SignerKeys } from '../federation/envelope';
import { IdentityError, keyIdOf, publicKeyFromBase64 } from '../federation/identity';
import { federatedAnswerRows, type AnswerPart } from '../federation/answer-rows';
import { checkResultPayload, rowsSha256, type AnswerRow } from '../federation/pool';
import { secureDeclarationOf, type FederationTaskKind, type ResultPayload, type SecureDeclaration, type TaskPayload } from '../federation/protocol';
import { secureTotalsOf, type SecureTranscript } from '../federation/secure-sum-transport';
import { loadSiteRegistry, SiteRegistryError, type SiteRegistry } from '../federation/site-registry';

/** The hub's names, as it signs (services/federation-hub/hub-registry.ts; the CLI does not import services). */
const HUB_SIGNER = 'hub';
const ANSWER_AUDIENCE = 'public';

export interface VerifyReport {
  ok: boolean;
  /** Every mismatch found, each prefixed by what it concerns (ANSWER, TASK <site>, RESULT <site>, ROWS). */
  problems: string[];
  /** Each contributing site's signed provenance manifest. */
  manifests: { site: string; manifest: JsonValue }[];
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Checks an exported federated answer (`federatedAnswer(id) { export }`) without trusting the hub: the hub's
 * signature with the key given, each task's hub signature, each result's signature against the registry, that
 * each result names its site's task hash and carries a manifest bound to it, and that the rows and their sha256 are
 * exactly what pool.ts computes from the signed results. Secure-summed pooled rows are recomputed from the round's
 * transcript: every masked vector and self-mask seed signed by its site, summed and unmasked as the hub did; the
 * verifier learns the totals, as the hub did, and no site's numbers. Reports every problem, not only the first.
 */
export function verifyAnswer(raw: unknown, registry: SiteRegistry, hubKeyBase64: string): VerifyReport {
  const problems: string[] = [];
  const manifests: VerifyReport['manifests'] = [];
  const hubKey = publicKeyFromBase64('ed25519', hubKeyBase64);
  const hubKeyId = keyIdOf(hubKeyBase64);
  const hubKeys: SignerKeys = (signer, keyId) => (signer === HUB_SIGNER && keyId === hubKeyId ? hubKey : null);
  const answer = verifyEnvelope(raw, { kind: EnvelopeKind.ANSWER, audience: ANSWER_AUDIENCE, keys: hubKeys });
  if (!answer.ok) problems.push(`ANSWER: ${answer.code}: ${answer.message}`);
  const payload = isObject(raw) && isObject(raw.payload) ? raw.payload : null;
  if (!payload || !Array.isArray(payload.tasks) || !Array.isArray(payload.results) || typeof payload.kind !== 'string' || !Array.isArray(payload.rows)) {
    problems.push('ANSWER: MALFORMED: not an exported federated answer (payload with kind, tasks, results, rows)');
    return { ok: false, problems, manifests };
  }
  // The query's own task, then each part the hub chained to it (AUC round 2, the bootstrap), each checked alike.
  const rounds = Array.isArray(payload.rounds) ? payload.rounds.filter(isObject) : [];
  if (payload.rounds !== undefined && (!Array.isArray(payload.rounds) || rounds.length !== payload.rounds.length))
    problems.push('ANSWER: MALFORMED: rounds must list { taskId, kind, query, tasks, results }');
  const parts: AnswerPart[] = [];
  for (const [i, part] of [payload, ...rounds].entries()) {
    const label = i === 0 ? '' : ` (round ${i + 1}, ${String(part.kind)})`;
    if (typeof part.taskId !== 'string' || typeof part.kind !== 'string' || !Array.isArray(part.tasks) || !Array.isArray(part.results)) {
      problems.push(`ANSWER: MALFORMED: part ${i + 1} is not { taskId, kind, query, tasks, results }`);
      continue;
    }
    parts.push(checkPart(part as unknown as PartPayload, label, hubKeys, registry, problems, manifests));
  }
  // Secure-summed pooled rows of the query's own part: every masked vector and seed signed by its site, summed and
  // unmasked again here.
  if (isObject(payload.secureSum) && parts.length > 0) {
    const transcript = payload.secureSum as unknown as SecureTranscript;
    const own = parts[0];
    const firstTask = payload.tasks.find((t) => isObject(t) && isObject(t.payload));
    const kind = isObject(firstTask) && isObject(firstTask.payload) ? String(firstTask.payload.kind) : payload.kind;
    const declarations = new Map<string, SecureDeclaration>();
    for (const r of own.results) {
      const d = r.state === 'SUCCEEDED' ? secureDeclarationOf(r.payload) : null;
      if (d) declarations.set(r.site, d);
    }
    try {
      if (transcript.phase === 'DONE' && transcript.keys.length > 0)
        parts[0] = { ...own, totals: secureTotalsOf(kind as FederationTaskKind, transcript, declarations, registry.signingKeyOf) };
    } catch (error) {
      problems.push(`SECURE: TRANSCRIPT_INVALID: ${(error as Error).message}`);
    }
  }
  const minGroupPatients = typeof payload.minGroupPatients === 'number' ? payload.minGroupPatients : 1;
  const pooled = federatedAnswerRows(payload.kind, parts, { minGroupPatients });
  if (!pooled.ok) problems.push(`ROWS: BAD_AGGREGATE: ${pooled.problem}`);
  else {
    const expected = payload.status === 'INSUFFICIENT' || (payload.kind === 'AUC' && payload.status === 'RUNNING') ? [] : pooled.rows;
    const expectedSha256 = expected.length > 0 ? rowsSha256(expected as AnswerRow[]) : null;
    if (canonicalJson(payload.rows) !== canonicalJson(expected)) problems.push('ROWS: ROWS_MISMATCH: the rows are not what the signed results pool to');
    if (payload.rowsSha256 !== expectedSha256)
      problems.push(`ROWS: ROWS_SHA256_MISMATCH: rowsSha256 is ${String(payload.rowsSha256)}, the signed results give ${expectedSha256}`);
  }
  return { ok: problems.length === 0, problems, manifests };
}

interface PartPayload {
  taskId: string;
  kind: string;
  query: JsonValue;
  tasks: unknown[];
  results: unknown[];
}

/** One part's hub-signed tasks and site-signed results: signatures, addressees, task hashes and manifests. */
function checkPart(
  part: PartPayload,
  label: string,
  hubKeys: SignerKeys,
  registry: SiteRegistry,
  problems: string[],
  manifests: VerifyReport['manifests'],
): AnswerPart {
  const taskSha256BySite = new Map<string, string>();
  for (const task of part.tasks) {
    const site = isObject(task) && typeof task.audience === 'string' ? task.audience : '?';
    const checked = verifyEnvelope<TaskPayload>(task, { kind: EnvelopeKind.TASK, audience: site, keys: hubKeys });
    if (!checked.ok) problems.push(`TASK ${site}${label}: ${checked.code}: ${checked.message}`);
    const taskPayload = isObject(task) && isObject(task.payload) ? task.payload : null;
    if (!taskPayload || taskPayload.site !== site || taskPayload.taskId !== part.taskId || canonicalJson(taskPayload.query) !== canonicalJson(part.query))
      problems.push(`TASK ${site}${label}: MALFORMED: not this answer's task for ${site}`);
    else taskSha256BySite.set(site, canonicalSha256(taskPayload));
  }
  const results: AnswerPart['results'][number][] = [];
  for (const result of part.results) {
    const site = isObject(result) && typeof result.signer === 'string' ? result.signer : '?';
    const checked = verifyEnvelope<ResultPayload>(result, { kind: EnvelopeKind.RESULT, audience: 'hub', keys: registry.signingKeyOf });
    if (!checked.ok) problems.push(`RESULT ${site}${label}: ${checked.code}: ${checked.message}`);
    const resultPayload = isObject(result) ? result.payload : null;
    const shape = checkResultPayload(resultPayload);
    if (!shape.ok) {
      problems.push(`RESULT ${site}${label}: ${shape.code}`);
      continue;
    }
    const r = resultPayload as ResultPayload;
    if (r.site !== site) problems.push(`RESULT ${site}${label}: NOT_ADDRESSEE: the result is for ${r.site}`);
    if (r.taskId !== part.taskId) problems.push(`RESULT ${site}${label}: UNKNOWN_TASK: the result answers task ${r.taskId}`);
    if (taskSha256BySite.get(site) !== r.taskSha256)
      problems.push(`RESULT ${site}${label}: TASK_HASH_MISMATCH: the result does not name the hash of ${site}'s task`);
    results.push({ site, state: r.state, payload: r });
    if (r.state === 'SUCCEEDED') manifests.push({ site, manifest: r.manifest });
  }
  return { kind: part.kind, query: part.query, sites: [...taskSha256BySite.keys()], results };
}

/** `facet verify <answer.json> --sites <dir> --hub-key <base64>`: the text to print and the exit code. */
export async function verifyCommand(file: string, sitesDir: string, hubKey: string): Promise<{ text: string; exitCode: number }> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    return { text: `cannot read ${file} as JSON: ${(error as Error).message}\n`, exitCode: 2 };
  }
  let registry: SiteRegistry;
  try {
    registry = await loadSiteRegistry(sitesDir);
  } catch (error) {
    if (error instanceof SiteRegistryError) return { text: `the registry ${sitesDir} is not valid:\n${error.message}\n`, exitCode: 2 };
    throw error;
  }
  let report: VerifyReport;
  try {
    report = verifyAnswer(isObject(raw) && isObject(raw.export) ? raw.export : raw, registry, hubKey);
  } catch (error) {
    if (error instanceof IdentityError) return { text: `--hub-key: ${error.message}\n`, exitCode: 2 };
    throw error;
  }
  const lines = report.manifests.map(({ site, manifest }) => `manifest ${site}: ${canonicalJson(manifest)}`);
  lines.push(...report.problems.map((p) => `MISMATCH ${p}`));
  lines.push(report.ok ? 'verified: every signature, task hash and pooled row checks out' : `NOT VERIFIED: ${report.problems.length} problem(s)`);
  return { text: `${lines.join('\n')}\n`, exitCode: report.ok ? 0 : 1 };
}
