import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Role } from '../../server/domain';
import { Factory } from '../helpers/factories';
import { gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const DIR = path.resolve(__dirname, '../fixtures/onnx');
const MODEL = readFileSync(path.join(DIR, 'tiny-multitask.onnx'));
const MANIFEST = JSON.parse(readFileSync(path.join(DIR, 'tiny-multitask.manifest.json'), 'utf8'));

async function register(url: string, token: string, model: Buffer, manifest: unknown): Promise<{ status: number; body: any }> {
  const form = new FormData();
  form.append('manifest', new Blob([typeof manifest === 'string' ? manifest : JSON.stringify(manifest)], { type: 'application/json' }), 'manifest.json');
  form.append('model', new Blob([model], { type: 'application/octet-stream' }), 'model.onnx');
  const response = await fetch(`${url}/api/model-versions`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
  return { status: response.status, body: await response.json() };
}

describe('registering an ONNX model version', () => {
  const node = useTestNode();
  let engineer: string;
  let statistician: string;

  beforeAll(async () => {
    const factory = new Factory(node().services);
    engineer = await factory.token(Role.ENGINEER);
    statistician = await factory.token(Role.STATISTICIAN);
  });

  it('opens the model, checks it against the manifest, runs a dummy batch and stores it by sha256', async () => {
    const answer = await register(node().url, engineer, MODEL, MANIFEST);
    expect({ status: answer.status, message: answer.body.errors?.[0]?.message }).toEqual({ status: 201, message: undefined });
    expect(answer.body).toMatchObject({ name: 'tiny-multitask', version: '0.1.0', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect((await node().services.objects.read(answer.body.sha256)).equals(MODEL)).toBe(true);
    const listed = await gqlOk(node().url, statistician, `{ modelVersions { nodes { name version sha256 } } }`);
    expect(listed.modelVersions.nodes).toEqual([{ name: 'tiny-multitask', version: '0.1.0', sha256: answer.body.sha256 }]);
  });

  it('refuses a second registration of the same name and version (CONFLICT)', async () => {
    expect((await register(node().url, engineer, MODEL, MANIFEST)).body.errors[0].extensions.code).toBe('CONFLICT');
  });

  it.each([
    [
      'a model whose outputs differ from the manifest',
      readFileSync(path.join(DIR, 'wrong-heads.onnx')),
      { ...MANIFEST, version: '0.2.0' },
      422,
      'MODEL_MANIFEST_MISMATCH',
      /no output "hypertrophy", "erosion", "cysts"/,
    ],
    [
      'an input name the model lacks',
      MODEL,
      { ...MANIFEST, version: '0.3.0', input: { name: 'pixels', shape: [null, 1, 16, 16] } },
      422,
      'MODEL_MANIFEST_MISMATCH',
      /no input "pixels"/,
    ],
    [
      'an input size the model cannot take',
      MODEL,
      { ...MANIFEST, version: '0.4.0', input: { name: 'image', shape: [null, 1, 32, 32] } },
      422,
      'MODEL_MANIFEST_MISMATCH',
      /dimension 2 is 16/,
    ],
    [
      'a feature with the wrong number of grades',
      MODEL,
      { ...MANIFEST, version: '0.5.0', outputs: MANIFEST.outputs.map((o: any) => (o.name === 'jsn' ? { ...o, grades: 3 } : o)) },
      422,
      'MODEL_MANIFEST_MISMATCH',
      /JOINT_SPACE_NARROWING has 2 grades, not 3/,
    ],
    [
      'a feature named twice',
      MODEL,
      { ...MANIFEST, version: '0.5.1', outputs: MANIFEST.outputs.map((o: any) => (o.name === 'jsn' ? { ...o, feature: 'EROSION', grades: 3 } : o)) },
      400,
      'BAD_USER_INPUT',
      /a feature twice/,
    ],
    [
      'a feature the grading scheme lacks',
      MODEL,
      { ...MANIFEST, version: '0.6.0', outputs: [{ name: 'jsn', feature: 'SPONDYLOSIS', grades: 2 }] },
      422,
      'MODEL_MANIFEST_MISMATCH',
      /SPONDYLOSIS is not a feature/,
    ],
    ['a corrupt (truncated) ONNX file', MODEL.subarray(0, 3000), { ...MANIFEST, version: '0.7.0' }, 400, 'BAD_USER_INPUT', /does not load as an ONNX model/],
    ['a file that is not ONNX', Buffer.from('not a model at all'), { ...MANIFEST, version: '0.8.0' }, 400, 'BAD_USER_INPUT', /does not load as an ONNX model/],
    ['a manifest without outputs', MODEL, { ...MANIFEST, version: '0.9.0', outputs: [] }, 400, 'BAD_USER_INPUT', /outputs must list/],
    ['a manifest that is not JSON', MODEL, '{ nope', 400, 'BAD_USER_INPUT', /not JSON/],
  ])('rejects %s with a precise error', async (_label, model, manifest, status, code, message) => {
    const answer = await register(node().url, engineer, model as Buffer, manifest);
    expect(answer.status).toBe(status);
    expect(answer.body.errors[0].extensions.code).toBe(code);
    expect(answer.body.errors[0].message).toMatch(message as RegExp);
  });

  it('stores nothing for a rejected model, and refuses tokens that are not an engineer’s', async () => {
    expect((await node().dataSource.query('SELECT count(*)::int AS n FROM model_version'))[0].n).toBe(1);
    expect((await register(node().url, statistician, MODEL, { ...MANIFEST, version: '1.0.0' })).status).toBe(403);
    const anonymous = await fetch(`${node().url}/api/model-versions`, { method: 'POST', body: 'x' });
    expect(anonymous.status).toBe(401);
  });

  it('registers through the CLI (register-model), answering with the version', async () => {
    const manifestFile = path.join(os.tmpdir(), `facet-manifest-${process.pid}.json`);
    writeFileSync(manifestFile, JSON.stringify({ ...MANIFEST, version: '2.0.0' }));
    // Asynchronous: the server answering the CLI runs in this very process.
    const run = () =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const child = spawn(process.execPath, [
          path.resolve(__dirname, '../../dist/server/main.js'),
          'register-model',
          '--url',
          node().url,
          '--token',
          engineer,
          '--model',
          path.join(DIR, 'tiny-multitask.onnx'),
          '--manifest',
          manifestFile,
        ]);
        let out = '';
        let err = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.stderr.on('data', (c: Buffer) => (err += c.toString()));
        child.once('exit', (code) => resolve({ code, out, err }));
      });
    const first = await run();
    expect(first.code).toBe(0);
    expect(JSON.parse(first.out)).toMatchObject({ name: 'tiny-multitask', version: '2.0.0' });
    const again = await run();
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/CONFLICT/);
  });
});
