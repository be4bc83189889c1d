import { EnvelopeKind, signEnvelope, verifyEnvelope } from '../../server/federation/envelope';
import {
  envelopeFromAuthorization,
  inferenceTotal,
  INFERENCE_PHASES,
  isFinalPhase,
  isInferenceAggregate,
  modelDownloadUrl,
  modelRequestAuthorization,
  parseProgressPayload,
  rateAndEta,
  siteInferenceState,
  type InferencePhase,
  type ModelRequestPayload,
  type ProgressPayload,
  type SiteInferenceFacts,
  type SiteInferenceState,
} from '../../server/federation/federated-inference';
import { NodeIdentity, publicKeyFromBase64 } from '../../server/federation/identity';
import { inferenceResultAcceptable } from '../../server/services/federation-hub/federated-inference-result';
import { inferenceQueryOf } from '../../server/services/federation-node/federated-inference-runner';
import { Gen } from './generators';

const SHA = 'a'.repeat(64);
const OTHER_SHA = 'b'.repeat(64);

function progress(gen: Gen): ProgressPayload {
  const total = gen.int(0, 5000);
  const done = gen.int(0, total);
  return {
    taskId: 'c1f0d3a4-0000-4000-8000-000000000001',
    taskSha256: SHA,
    site: gen.pick(['NORTH', 'HARBOUR', 'VALLEY']),
    sequence: gen.int(1, 1000),
    phase: gen.pick(INFERENCE_PHASES),
    total,
    done,
    failed: gen.int(0, total - done),
    elapsedSeconds: gen.random() * 1000,
    executionProvider: gen.pick([null, 'cpu', 'cuda']),
  };
}

const aggregate = () => ({ modelSha256: SHA, executionProvider: 'cpu', facetVersion: '0.1.0', job: { status: 'SUCCEEDED', total: 10, done: 9, failed: 1 } });

describe('federated inference progress reports', () => {
  it('accepts every well-formed report, and refuses each class of malformed one', () => {
    const gen = new Gen(13);
    const breakers: Array<[string, (p: Record<string, unknown>) => void]> = [
      ['an extra field (a joint id, a score…)', (p) => (p.jointId = 'x')],
      ['a missing field', (p) => delete p.done],
      ['an unknown phase', (p) => (p.phase = 'PAUSED')],
      ['a negative count', (p) => (p.done = -1)],
      ['a fractional count', (p) => (p.total = 1.5)],
      ['more counted than the total', (p) => (p.done = (p.total as number) + 1)],
      ['a non-finite elapsed time', (p) => (p.elapsedSeconds = Number.POSITIVE_INFINITY)],
      ['a task hash that is not sha256', (p) => (p.taskSha256 = 'abc')],
      ['an empty site', (p) => (p.site = '')],
      ['free text as the provider', (p) => (p.executionProvider = 'patient NORTH-P001')],
      ['a sequence that is not a count', (p) => (p.sequence = '3')],
    ];
    for (let i = 0; i < 200; i++) {
      const good = progress(gen);
      expect(parseProgressPayload(good)).toEqual(good);
      const [what, breakIt] = gen.pick(breakers);
      const bad: Record<string, unknown> = { ...good, total: Math.max(1, good.total) };
      breakIt(bad);
      expect([what, parseProgressPayload(bad)]).toEqual([what, null]);
    }
    for (const raw of [null, [], 'x', 7]) expect(parseProgressPayload(raw)).toBeNull();
  });

  it('derives the rate and ETA from the counters and the elapsed time', () => {
    expect(rateAndEta({ total: 100, done: 0, failed: 0, elapsedSeconds: 5 })).toEqual({ rate: null, etaSeconds: null });
    expect(rateAndEta({ total: 100, done: 10, failed: 0, elapsedSeconds: 0 })).toEqual({ rate: null, etaSeconds: null });
    expect(rateAndEta({ total: 100, done: 15, failed: 5, elapsedSeconds: 10 })).toEqual({ rate: 2, etaSeconds: 40 });
    expect(rateAndEta({ total: 100, done: 99, failed: 1, elapsedSeconds: 20 })).toEqual({ rate: 5, etaSeconds: 0 });
    const gen = new Gen(5);
    for (let i = 0; i < 200; i++) {
      const total = gen.int(1, 10_000);
      const done = gen.int(1, total);
      const elapsed = 0.01 + gen.random() * 100;
      const { rate, etaSeconds } = rateAndEta({ total, done, failed: 0, elapsedSeconds: elapsed });
      // At that rate, the time spent plus the time left is the time for all of it.
      expect(Math.abs((elapsed + (etaSeconds as number)) * (rate as number) - total)).toBeLessThan(1e-6 * total);
    }
  });
});

describe('a site’s state at the hub', () => {
  const facts = (f: Partial<SiteInferenceFacts>): SiteInferenceFacts => ({ siteTaskState: 'CLAIMED', reason: null, taskCancelled: false, phase: null, ...f });

  it('is WAITING until the site claims, then what the node reports, then what its signed result says', () => {
    expect(siteInferenceState(facts({ siteTaskState: 'QUEUED' }))).toBe('WAITING');
    expect(siteInferenceState(facts({}))).toBe('QUEUED');
    for (const phase of ['APPROVING', 'QUEUED', 'RUNNING', 'FINISHED', 'FAILED'] as InferencePhase[]) expect(siteInferenceState(facts({ phase }))).toBe(phase);
    expect(siteInferenceState(facts({ siteTaskState: 'SUCCEEDED', phase: 'RUNNING' }))).toBe('FINISHED');
    expect(siteInferenceState(facts({ siteTaskState: 'REFUSED', reason: 'MODEL_SHA256_MISMATCH' }))).toBe('REFUSED');
    expect(siteInferenceState(facts({ siteTaskState: 'FAILED', reason: 'INFERENCE_FAILED', phase: 'FAILED' }))).toBe('FAILED');
    expect(siteInferenceState(facts({ siteTaskState: 'EXPIRED', reason: 'SITE_UNAVAILABLE' }))).toBe('EXPIRED');
  });

  it('is CANCELLING after a cancel until the node confirms, CANCELLED at once where nothing ran', () => {
    expect(siteInferenceState(facts({ siteTaskState: 'EXPIRED', reason: 'CANCELLED', taskCancelled: true, phase: 'RUNNING' }))).toBe('CANCELLING');
    expect(siteInferenceState(facts({ siteTaskState: 'EXPIRED', reason: 'CANCELLED', taskCancelled: true, phase: 'APPROVING' }))).toBe('CANCELLING');
    expect(siteInferenceState(facts({ siteTaskState: 'EXPIRED', reason: 'CANCELLED', taskCancelled: true, phase: 'CANCELLED' }))).toBe('CANCELLED');
    expect(siteInferenceState(facts({ siteTaskState: 'EXPIRED', reason: 'CANCELLED', taskCancelled: true }))).toBe('CANCELLED');
    // A site that finished before the cancel keeps its answer.
    expect(siteInferenceState(facts({ siteTaskState: 'SUCCEEDED', taskCancelled: true, phase: 'FINISHED' }))).toBe('FINISHED');
  });

  it('sums the sites into the total: counts added, rates of running sites added, the slowest ETA', () => {
    const gen = new Gen(21);
    const states: SiteInferenceState[] = ['WAITING', 'RUNNING', 'FINISHED', 'REFUSED', 'CANCELLED', 'EXPIRED', 'QUEUED'];
    for (let i = 0; i < 100; i++) {
      const sites = Array.from({ length: gen.int(0, 6) }, () => {
        const total = gen.int(0, 500);
        const done = gen.int(0, total);
        return { state: gen.pick(states), total, done, failed: total - done, rate: gen.bool() ? gen.random() * 10 : null, etaSeconds: gen.random() * 100 };
      });
      const sum = inferenceTotal(sites);
      expect(sum.total).toBe(sites.reduce((a, s) => a + s.total, 0));
      expect(sum.done + sum.failed).toBe(sum.total);
      expect(sum.finished).toBe(sites.filter((s) => s.state === 'FINISHED').length);
      expect(sum.ended).toBe(sites.filter((s) => ['FINISHED', 'REFUSED', 'CANCELLED', 'EXPIRED'].includes(s.state)).length);
      const running = sites.filter((s) => s.state === 'RUNNING');
      expect(sum.etaSeconds).toBe(running.length ? Math.max(...running.map((s) => s.etaSeconds)) : null);
      const rates = running.filter((s) => s.rate !== null).map((s) => s.rate as number);
      expect(sum.rate).toBe(rates.length ? rates.reduce((a, b) => a + b, 0) : null);
    }
    expect(INFERENCE_PHASES.filter(isFinalPhase)).toEqual(['FINISHED', 'FAILED', 'REFUSED', 'CANCELLED']);
  });
});

describe('what a site releases for an INFERENCE task', () => {
  it('is exactly the provenance of its run, naming the task’s model', () => {
    expect(isInferenceAggregate(aggregate())).toBe(true);
    const broken: Array<[string, Record<string, any>]> = [
      ['per-case predictions', { ...aggregate(), predictions: [[0.1, 0.9]] }],
      ['a job field more', { ...aggregate(), job: { ...aggregate().job, cursor: 'x' } }],
      ['counts that do not add up', { ...aggregate(), job: { ...aggregate().job, done: 10 } }],
      ['a job that did not succeed', { ...aggregate(), job: { ...aggregate().job, status: 'RUNNING' } }],
      ['no sha256', { ...aggregate(), modelSha256: 'facet-reference' }],
      ['free text as the provider', { ...aggregate(), executionProvider: 'GPU of Dr. Smith' }],
    ];
    for (const [what, value] of broken) expect([what, isInferenceAggregate(value)]).toEqual([what, false]);
    const manifest = { modelSha256: SHA } as never;
    const query = { model: { sha256: SHA } };
    const result = (over: Record<string, unknown>) =>
      ({ taskId: 't', taskSha256: SHA, site: 'NORTH', state: 'SUCCEEDED', reason: null, aggregate: aggregate(), manifest, ...over }) as never;
    expect(inferenceResultAcceptable(result({}), query)).toBe(true);
    expect(inferenceResultAcceptable(result({}), { model: { sha256: OTHER_SHA } })).toBe(false);
    expect(inferenceResultAcceptable(result({ manifest: { modelSha256: OTHER_SHA } }), query)).toBe(false);
    expect(inferenceResultAcceptable(result({ state: 'REFUSED', reason: 'MODEL_SHA256_MISMATCH', aggregate: null }), query)).toBe(true);
    expect(inferenceResultAcceptable(result({ state: 'FAILED', reason: 'CANCELLED', aggregate: { groups: [] } }), query)).toBe(false);
  });

  it('reads the task’s query only when it names a model by sha256, a manifest and modalities', () => {
    const good = { model: { sha256: SHA, name: 'm', version: '1', bytes: 10 }, manifest: { name: 'm' }, modalities: ['XR'] };
    expect(inferenceQueryOf(good)).toEqual(good);
    for (const bad of [
      null,
      [],
      { ...good, model: { ...good.model, sha256: 'x' } },
      { ...good, manifest: [] },
      { ...good, modalities: [1] },
      { ...good, model: null },
    ])
      expect(inferenceQueryOf(bad)).toBeNull();
  });
});

describe('the model download’s authorization', () => {
  it('carries a signed MODEL_REQUEST envelope the hub verifies, and nothing else passes as one', () => {
    const node = NodeIdentity.generate();
    const payload: ModelRequestPayload = { site: 'NORTH', taskId: 't-1', modelSha256: SHA };
    const envelope = signEnvelope(node, { kind: EnvelopeKind.MODEL_REQUEST, signer: 'NORTH', audience: 'hub', payload });
    const header = modelRequestAuthorization(envelope);
    expect(header.startsWith('Facet-Envelope ')).toBe(true);
    const parsed = envelopeFromAuthorization(header);
    const key = publicKeyFromBase64('ed25519', node.public.signingKey);
    const checked = verifyEnvelope(parsed, { kind: EnvelopeKind.MODEL_REQUEST, audience: 'hub', keys: () => key });
    expect(checked.ok).toBe(true);
    // A claim envelope is not a model request.
    expect(verifyEnvelope(parsed, { kind: EnvelopeKind.CLAIM, audience: 'hub', keys: () => key })).toMatchObject({ ok: false, code: 'WRONG_KIND' });
    for (const bad of [
      undefined,
      '',
      'Bearer fct_abc',
      'Facet-Envelope',
      'Facet-Envelope a b',
      'Facet-Envelope !!!',
      `Facet-Envelope ${'A'.repeat(9000)}`,
      'Facet-Envelope bm90IGpzb24',
    ])
      expect([bad, envelopeFromAuthorization(bad)]).toEqual([bad, null]);
    expect(modelDownloadUrl('https://hub.example.org/graphql', SHA)).toBe(`https://hub.example.org/federation/models/${SHA}`);
    expect(modelDownloadUrl('http://127.0.0.1:4000/facet/graphql', SHA)).toBe(`http://127.0.0.1:4000/facet/federation/models/${SHA}`);
  });
});
