import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { data } from 'dcmjs';
import { Role } from '../../server/domain';
import { TAGS } from '../../server/dicom/dictionary';
import { readPart10, type Part10File } from '../../server/dicom/reader';
import { replaceUid } from '../../server/dicom/uid';
import { Instance, type Site } from '../../server/entities';
import { syntheticImage } from '../helpers/synthetic-dicom';
import { textBytes } from '../../server/dicom/dataset';
import { tag } from '../../server/dicom/dictionary';
import { writePart10 } from '../../server/dicom/writer';
import { FIXTURES, IDENTIFIED, IDENTIFIERS } from '../helpers/dicom-fixtures';
import { emptyItemsSequence, insertElement } from '../helpers/dicom-mutations';
import { Factory } from '../helpers/factories';
import { gqlOk, subscribe } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';
import { failureCode, multipartRelated, stow } from '../helpers/stow';

const fixture = (name: string) => readFile(path.join(FIXTURES, name));
const IMPORT = `mutation ($csv: String!) { importPatientsManifest(csv: $csv) { stored rows created updated rejected { source code reason } } }`;

describe('DICOMweb STOW-RS ingest', () => {
  const node = useTestNode();
  let factory: Factory;
  let siteA: Site;
  let coordinatorA: string;
  let coordinatorB: string;
  let admin: string;
  const count = async (table: string) => (await node().dataSource.query(`SELECT count(*)::int AS n FROM ${table}`))[0].n as number;
  const objectFiles = async (): Promise<string[]> => {
    const root = path.join(node().dataDir, 'objects');
    const out: string[] = [];
    const walk = async (dir: string) => {
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory()) await walk(path.join(dir, e.name));
        else out.push(path.join(dir, e.name));
      }
    };
    await walk(root);
    return out;
  };

  beforeAll(async () => {
    factory = new Factory(node().services);
    siteA = await factory.site('EAST');
    const siteB = await factory.site('WEST');
    coordinatorA = await factory.token(Role.COORDINATOR, { site: siteA });
    coordinatorB = await factory.token(Role.COORDINATOR, { site: siteB });
    admin = await factory.token(Role.ADMIN);
    const manifest = `site,patient_id,pseudonym,sex,age,eligible,exclusion_reasons\nEAST,${IDENTIFIERS.PatientID},EAST-P001,F,76,yes,\n`;
    const result = await gqlOk(node().url, coordinatorA, IMPORT, { csv: manifest });
    expect(result.importPatientsManifest).toMatchObject({ stored: true, created: 1 });
  });

  it('stores every transfer syntax (native LE/BE, implicit, RLE, JPEG, JPEG-LS, JPEG 2000) and answers 202 with coercion warnings', async () => {
    const files = await Promise.all(IDENTIFIED.map(async (name) => ({ bytes: await fixture(name) })));
    const answer = await stow(node().url, coordinatorA, files);
    expect(answer.status).toBe(202);
    expect(answer.failed).toEqual([]);
    expect(answer.stored).toHaveLength(IDENTIFIED.length);
    for (const item of answer.stored) {
      expect(item['00081155'].Value[0]).toMatch(/^2\.25\.\d+$/);
      expect(item['00081196'].Value).toEqual([0xb000]);
    }
    expect(await count('instance')).toBe(IDENTIFIED.length);
    const transferSyntaxes = (await node().dataSource.getRepository(Instance).find()).map((i) => i.transferSyntaxUid).sort();
    expect(new Set(transferSyntaxes).size).toBe(8);
  });

  it('leaves no identifying value in the stored files or in any database column', async () => {
    const files = await objectFiles();
    expect(files).toHaveLength(IDENTIFIED.length);
    for (const file of files) {
      const text = (await readFile(file)).toString('latin1');
      for (const value of [...Object.values(IDENTIFIERS), '20240117', '19480312'])
        expect({ file, value, found: text.includes(value) }).toEqual({ file, value, found: false });
    }
    const tables: Array<{ tablename: string }> = await node().dataSource.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`);
    for (const { tablename } of tables) {
      const dump = JSON.stringify(await node().dataSource.query(`SELECT row_to_json(t) AS r FROM "${tablename}" t`));
      for (const value of [...Object.values(IDENTIFIERS), '2024-01-17', '1948-03-12'])
        expect({ tablename, value, found: dump.includes(value) }).toEqual({ tablename, value, found: false });
    }
  });

  it('keeps each stored file valid DICOM that dcmjs reads back with the same pixel data', async () => {
    const key = await node().services.nodeKeys.identifierKey();
    const pixels = (b: Buffer) =>
      Buffer.concat(
        data.DicomMetaDictionary.naturalizeDataset(
          data.DicomMessage.readFile(b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer).dict,
        ).PixelData.map((f: ArrayBuffer) => Buffer.from(f)),
      );
    for (const name of IDENTIFIED) {
      const original = await fixture(name);
      const sopInstanceUid = readPart10(original).dataset.get(TAGS.sopInstanceUid)?.bytes?.toString('latin1').replace(/\0+$/, '') as string;
      const instance = await node()
        .dataSource.getRepository(Instance)
        .findOneByOrFail({ sopInstanceUid: replaceUid(key, sopInstanceUid) });
      const stored = await node().services.objects.read(instance.sha256);
      expect({ name, same: pixels(stored).equals(pixels(original)) }).toEqual({ name, same: true });
    }
  });

  it('treats a re-upload as a no-op: same UIDs, no new rows, no new files', async () => {
    const before = { instances: await count('instance'), studies: await count('study'), files: (await objectFiles()).length };
    const answer = await stow(node().url, coordinatorA, [
      { bytes: await fixture('identified-explicit-le.dcm') },
      { bytes: await fixture('identified-rle.dcm') },
    ]);
    expect(answer.status).toBe(202);
    expect(answer.stored).toHaveLength(2);
    expect({ instances: await count('instance'), studies: await count('study'), files: (await objectFiles()).length }).toEqual(before);
  });

  it.each([
    ['not-part10.bin', 'NOT_PART10', 0xc000],
    ['no-preamble.bin', 'NOT_PART10', 0xc000],
    ['truncated.dcm', 'TRUNCATED', 0xc000],
    ['impossible-length.dcm', 'IMPOSSIBLE_LENGTH', 0xc000],
    ['rt-plan.dcm', 'UNSUPPORTED_SOP_CLASS', 0x0122],
    ['structured-report.dcm', 'UNSUPPORTED_SOP_CLASS', 0x0122],
    ['waveform.dcm', 'UNSUPPORTED_SOP_CLASS', 0x0122],
    ['pixel-length-mismatch.dcm', 'PIXEL_LENGTH_MISMATCH', 0xa900],
  ])('rejects %s (%s) and, with it, the whole batch: 409 and nothing stored', async (name, code, reason) => {
    const before = { instances: await count('instance'), files: (await objectFiles()).length, audit: await count('audit_event') };
    const answer = await stow(node().url, coordinatorA, [{ bytes: await fixture('identified-mr.dcm') }, { bytes: await fixture(name) }]);
    expect(answer.status).toBe(409);
    expect(answer.stored).toEqual([]);
    const bad = answer.failed.find((f) => failureCode(f) === code);
    expect(bad?.['00081197'].Value).toEqual([reason]);
    expect(answer.failed.map(failureCode).sort()).toEqual([code, 'BATCH_REJECTED'].sort());
    expect({ instances: await count('instance'), files: (await objectFiles()).length, audit: await count('audit_event') }).toEqual(before);
  });

  it('rejects an object whose Patient ID no manifest named (UNKNOWN_PATIENT)', async () => {
    const answer = await stow(node().url, coordinatorB, [{ bytes: await fixture('identified-mr.dcm') }]);
    expect(answer.status).toBe(409);
    expect(answer.failed.map(failureCode)).toEqual(['UNKNOWN_PATIENT']);
  });

  it('refuses a coordinator storing into another site, an unauthenticated client, and a wrong media type', async () => {
    const file = [{ bytes: await fixture('identified-mr.dcm') }];
    expect((await stow(node().url, coordinatorB, file, '?site=EAST')).status).toBe(403);
    expect((await stow(node().url, null, file)).status).toBe(401);
    expect((await stow(node().url, admin, file)).status).toBe(400); // an ADMIN must name the site
    expect((await stow(node().url, admin, file, '?site=EAST')).status).toBe(202);
    const wrongType = await stow(node().url, coordinatorA, [{ bytes: Buffer.from('{}'), contentType: 'application/json' }]);
    expect(wrongType.status).toBe(409);
    expect(wrongType.failed.map(failureCode)).toEqual(['UNSUPPORTED_MEDIA_TYPE']);
    const response = await fetch(`${node().url}/dicomweb/studies`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${coordinatorA}` },
      body: '{}',
    });
    expect(response.status).toBe(415);
  });

  it('answers the target-site rule with its code: a role that stores nothing, an unknown site, another site; nothing is stored', async () => {
    const file = [{ bytes: syntheticImage({ instance: 7101 }) }];
    const problem = (answer: { status: number; body: Record<string, any> }) => [
      answer.status,
      answer.body.errors?.[0]?.extensions?.code,
      answer.body.errors?.[0]?.message,
    ];
    const before = await count('instance');
    for (const role of [Role.STATISTICIAN, Role.ENGINEER, Role.HUB]) {
      expect(problem(await stow(node().url, await factory.token(role), file, '?site=EAST'))).toEqual([403, 'FORBIDDEN', 'Only coordinators store objects']);
    }
    expect(problem(await stow(node().url, admin, file, '?site=NOWHERE'))).toEqual([400, 'BAD_USER_INPUT', 'No site with code NOWHERE']);
    expect(problem(await stow(node().url, admin, file))).toEqual([400, 'BAD_USER_INPUT', 'Name the target site with ?site=<code>']);
    expect(problem(await stow(node().url, coordinatorB, file, '?site=EAST'))).toEqual([403, 'FORBIDDEN', 'A coordinator stores into their own site only']);
    expect(await count('instance')).toBe(before);
    // A coordinator naming its own site stores there, as without ?site.
    const own = await stow(node().url, coordinatorA, file, '?site=EAST');
    expect([own.status, own.stored.length, own.failed]).toEqual([202, 1, []]);
    expect(await count('instance')).toBe(before + 1);
  });

  it('serves each stored instance at its Retrieve URL (WADO-RS), de-identified, to its own site only', async () => {
    const answer = await stow(node().url, coordinatorA, [{ bytes: await fixture('identified-jpeg-ls.dcm') }]);
    const retrieveUrl: string = answer.stored[0]['00081190'].Value[0];
    const response = await fetch(retrieveUrl, { headers: { authorization: `Bearer ${coordinatorA}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^multipart\/related; type="application\/dicom"/);
    const body = Buffer.from(await response.arrayBuffer());
    expect(body.includes(Buffer.from('DICM'))).toBe(true);
    expect(body.toString('latin1')).not.toContain(IDENTIFIERS.PatientName);
    expect((await fetch(retrieveUrl, { headers: { authorization: `Bearer ${coordinatorB}` } })).status).toBe(404);
    expect((await fetch(retrieveUrl)).status).toBe(401);
  });

  it('stores into /studies/{uid} only instances of that study (STUDY_MISMATCH otherwise)', async () => {
    const file = [{ bytes: await fixture('identified-mr.dcm') }];
    expect((await stow(node().url, coordinatorA, file, '')).status).toBe(202);
    const parts = multipartRelated(file);
    const right = await fetch(`${node().url}/dicomweb/studies/${IDENTIFIERS.StudyInstanceUID}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${coordinatorA}`, 'content-type': parts.contentType },
      body: parts.body,
    });
    expect(right.status).toBe(202);
    const wrong = await fetch(`${node().url}/dicomweb/studies/1.2.3.4.5`, {
      method: 'POST',
      headers: { authorization: `Bearer ${coordinatorA}`, 'content-type': parts.contentType },
      body: parts.body,
    });
    expect(wrong.status).toBe(409);
    const failed = ((await wrong.json()) as Record<string, any>)['00081198'].Value;
    expect(failed.map(failureCode)).toEqual(['STUDY_MISMATCH']);
  });

  it('lands a batch whole or not at all when the database fails mid-batch: no rows and no new files', async () => {
    const before = { instances: await count('instance'), studies: await count('study'), files: (await objectFiles()).length };
    // Injected failure: the instance insert fails after the files were written and the study rows inserted.
    await node().dataSource.query(`ALTER TABLE instance ADD CONSTRAINT injected_failure CHECK (rows < 0) NOT VALID`);
    try {
      // Two objects not stored before: the MR fixture under two new SOP Instance UIDs (same length, so the file stays valid).
      const mr = await fixture('identified-mr.dcm');
      const renamed = (last: string) =>
        Buffer.from(mr.toString('latin1').replaceAll(`${IDENTIFIERS.SOPInstanceUID}.4`, `${IDENTIFIERS.SOPInstanceUID}.${last}`), 'latin1');
      const answer = await stow(node().url, admin, [{ bytes: renamed('8') }, { bytes: renamed('9') }], '?site=EAST');
      expect(answer.status).toBeGreaterThanOrEqual(400);
      expect(answer.stored).toEqual([]);
    } finally {
      await node().dataSource.query(`ALTER TABLE instance DROP CONSTRAINT injected_failure`);
    }
    expect({ instances: await count('instance'), studies: await count('study'), files: (await objectFiles()).length }).toEqual(before);
  });

  /** `bytes` with some elements replaced (explicit or implicit VR, as the file is). */
  const edited = (bytes: Buffer, edit: (file: Part10File) => void): Buffer => {
    const file = readPart10(bytes);
    edit(file);
    return writePart10(file.meta, file.dataset, file.transferSyntax);
  };
  const instanceOf = async (clientUid: string) => {
    const key = await node().services.nodeKeys.identifierKey();
    return node()
      .dataSource.getRepository(Instance)
      .findOneBy({ sopInstanceUid: replaceUid(key, clientUid) });
  };
  const pixelsViaDcmjs = (b: Buffer): Buffer =>
    Buffer.concat(
      data.DicomMetaDictionary.naturalizeDataset(
        data.DicomMessage.readFile(b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer).dict,
      ).PixelData.map((f: ArrayBuffer) => Buffer.from(f)),
    );

  it('refuses the same SOP Instance UID with other content (INSTANCE_CONFLICT, 0111) and keeps the first: no row, no file, same Retrieve answer', async () => {
    const first = syntheticImage({ instance: 501 });
    const stored = await stow(node().url, coordinatorA, [{ bytes: first }]);
    expect(stored.status).toBe(202);
    const retrieveUrl: string = stored.stored[0]['00081190'].Value[0];
    // The object inside the multipart/related answer (its boundary differs per answer).
    const retrieve = async () => {
      const body = Buffer.from(await (await fetch(retrieveUrl, { headers: { authorization: `Bearer ${coordinatorA}` } })).arrayBuffer());
      return body.subarray(body.indexOf('\r\n\r\n') + 4, body.lastIndexOf('\r\n--'));
    };
    const before = { instances: await count('instance'), files: await objectFiles(), retrieved: await retrieve() };

    const other = syntheticImage({ instance: 501, paddingBytes: 2 }); // valid, same UID, other bytes
    const answer = await stow(node().url, coordinatorA, [{ bytes: other }]);
    expect(answer.status).toBe(409);
    expect(answer.failed.map(failureCode)).toEqual(['INSTANCE_CONFLICT']);
    expect(answer.failed[0]['00081197'].Value).toEqual([0x0111]);
    expect(answer.failed[0]['00081155'].Value).toEqual(['1.2.826.0.1.3680043.9.7134.3.501']);
    expect({ instances: await count('instance'), files: await objectFiles(), retrieved: await retrieve() }).toEqual(before);

    // The identical object again is still a no-op with the same answer.
    const again = await stow(node().url, coordinatorA, [{ bytes: first }]);
    expect(again.status).toBe(202);
    expect(again.stored[0]['00081190'].Value).toEqual([retrieveUrl]);
    expect({ instances: await count('instance'), files: await objectFiles() }).toEqual({ instances: before.instances, files: before.files });
  });

  it('stores an object sent twice in one batch once and answers both; the same UID with other content in one batch refuses the batch', async () => {
    const twice = syntheticImage({ instance: 502 });
    const before = { instances: await count('instance'), files: (await objectFiles()).length };
    const answer = await stow(node().url, coordinatorA, [{ bytes: twice }, { bytes: twice }]);
    expect(answer.status).toBe(202);
    expect(answer.stored.map((s) => s['00081155'].Value[0])).toEqual([answer.stored[0]['00081155'].Value[0], answer.stored[0]['00081155'].Value[0]]);
    expect({ instances: await count('instance'), files: (await objectFiles()).length }).toEqual({ instances: before.instances + 1, files: before.files + 1 });

    const mixed = await stow(node().url, coordinatorA, [
      { bytes: syntheticImage({ instance: 503 }) },
      { bytes: syntheticImage({ instance: 503, paddingBytes: 4 }) },
      { bytes: syntheticImage({ instance: 504 }) },
    ]);
    expect(mixed.status).toBe(409);
    expect(mixed.failed.map(failureCode)).toEqual(['INSTANCE_CONFLICT', 'BATCH_REJECTED', 'BATCH_REJECTED']);
    expect(mixed.failed[0]['00000902'].Value[0]).toMatch(/^INSTANCE_CONFLICT part 2: The SOP Instance UID is also in part 1/);
    expect({ instances: await count('instance'), files: (await objectFiles()).length }).toEqual({ instances: before.instances + 1, files: before.files + 1 });
  });

  it('stores exactly one of two concurrent uploads of one SOP Instance UID with different content, and leaves no file of the other', async () => {
    const before = { instances: await count('instance'), files: (await objectFiles()).length };
    const answers = await Promise.all([
      stow(node().url, coordinatorA, [{ bytes: syntheticImage({ instance: 505 }) }]),
      stow(node().url, coordinatorA, [{ bytes: syntheticImage({ instance: 505, paddingBytes: 2 }) }]),
    ]);
    expect(answers.map((a) => a.status).sort()).toEqual([202, 409]);
    expect(answers.flatMap((a) => a.failed.map(failureCode))).toEqual(['INSTANCE_CONFLICT']);
    expect({ instances: await count('instance'), files: (await objectFiles()).length }).toEqual({ instances: before.instances + 1, files: before.files + 1 });
  });

  it('answers an image of a modality outside Facet’s scope with UNSUPPORTED_MODALITY and Processing failure (0110), not A900', async () => {
    const pet = edited(syntheticImage({ instance: 506 }), (f) => f.dataset.set(TAGS.modality, { tag: TAGS.modality, vr: 'CS', bytes: textBytes('CS', 'PT') }));
    const answer = await stow(node().url, coordinatorA, [{ bytes: pet }]);
    expect(answer.status).toBe(409);
    expect(answer.failed.map(failureCode)).toEqual(['UNSUPPORTED_MODALITY']);
    expect(answer.failed[0]['00081197'].Value).toEqual([0x0110]);
    expect(answer.failed[0]['00000902'].Value[0]).toBe('UNSUPPORTED_MODALITY part 1: Modality PT is outside XR, CT, MR');
  });

  it.each([
    ['native YBR_FULL_422 (two samples per pixel)', { modality: 'DX', photometric: 'YBR_FULL_422', instance: 510 }, '1.2.840.10008.1.2.1'],
    ['pixel data with trailing padding', { paddingBytes: 64, instance: 511 }, '1.2.840.10008.1.2.1'],
    ['Deflated Explicit VR Little Endian, stored inflated', { syntax: 'deflated', frames: 2, instance: 512 }, '1.2.840.10008.1.2.1'],
    ['multi-frame with functional group sequences, implicit VR', { syntax: 'implicit-le', frames: 3, modality: 'MR', instance: 513 }, '1.2.840.10008.1.2'],
  ] as const)('stores %s (202), as a file dcmjs reads back with the same pixel data', async (_name, options, storedSyntax) => {
    const original = syntheticImage(options);
    const answer = await stow(node().url, coordinatorA, [{ bytes: original }]);
    expect(answer.status).toBe(202);
    const instance = await instanceOf(`1.2.826.0.1.3680043.9.7134.3.${options.instance}`);
    expect(instance?.transferSyntaxUid).toBe(storedSyntax);
    const stored = await node().services.objects.read(instance?.sha256 as string);
    expect(pixelsViaDcmjs(stored).equals(readPart10(original).dataset.get(TAGS.pixelData)?.bytes as Buffer)).toBe(true);
  });

  it.each([
    ['Series Number 2^31', (f: Part10File) => f.dataset.set(tag(0x0020, 0x0011), { tag: tag(0x0020, 0x0011), vr: 'IS', bytes: textBytes('IS', '2147483648') })],
    [
      'Instance Number of 13 digits',
      (f: Part10File) => f.dataset.set(tag(0x0020, 0x0013), { tag: tag(0x0020, 0x0013), vr: 'IS', bytes: textBytes('IS', '-999999999999') }),
    ],
    ['Rows as UL 4294967295', (f: Part10File) => f.dataset.set(TAGS.rows, { tag: TAGS.rows, vr: 'UL', bytes: Buffer.from([0xff, 0xff, 0xff, 0xff]) })],
    [
      'Number of Frames 3000000000',
      (f: Part10File) => f.dataset.set(TAGS.numberOfFrames, { tag: TAGS.numberOfFrames, vr: 'IS', bytes: textBytes('IS', '3000000000') }),
    ],
    [
      'a CS of 33 characters',
      (f: Part10File) =>
        f.dataset.set(TAGS.photometricInterpretation, { tag: TAGS.photometricInterpretation, vr: 'CS', bytes: textBytes('CS', 'M'.repeat(33)) }),
    ],
    [
      'a CS holding NUL',
      (f: Part10File) =>
        f.dataset.set(TAGS.photometricInterpretation, { tag: TAGS.photometricInterpretation, vr: 'CS', bytes: Buffer.from('MONO\0CHROME2', 'latin1') }),
    ],
    [
      'a UID with a backslash',
      (f: Part10File) => f.dataset.set(TAGS.seriesInstanceUid, { tag: TAGS.seriesInstanceUid, vr: 'UI', bytes: textBytes('UI', '1.2.3\\1.2.4') }),
    ],
    [
      'a UID of 65 characters',
      (f: Part10File) => f.dataset.set(TAGS.studyInstanceUid, { tag: TAGS.studyInstanceUid, vr: 'UI', bytes: textBytes('UI', `1.2${'.3'.repeat(31)}`) }),
    ],
  ])('refuses %s with INVALID_VALUE (C000), never a 500, and stores nothing', async (_name, edit) => {
    const before = { instances: await count('instance'), files: (await objectFiles()).length };
    const answer = await stow(node().url, coordinatorA, [{ bytes: edited(syntheticImage({ instance: 520 }), edit) }]);
    expect(answer.status).toBe(409);
    expect(answer.failed.map(failureCode)).toEqual(['INVALID_VALUE']);
    expect(answer.failed[0]['00081197'].Value).toEqual([0xc000]);
    expect({ instances: await count('instance'), files: (await objectFiles()).length }).toEqual(before);
  });

  it('records Bits Allocated 40000, a valid US value, in a column that holds it', async () => {
    const wide = edited(syntheticImage({ size: 1, instance: 521 }), (f) => {
      f.dataset.set(TAGS.bitsAllocated, { tag: TAGS.bitsAllocated, vr: 'US', bytes: Buffer.from([0x40, 0x9c]) });
      f.dataset.set(TAGS.pixelData, { tag: TAGS.pixelData, vr: 'OB', bytes: Buffer.alloc(5000) });
    });
    expect((await stow(node().url, coordinatorA, [{ bytes: wide }])).status).toBe(202);
    expect((await instanceOf('1.2.826.0.1.3680043.9.7134.3.521'))?.bitsAllocated).toBe(40000);
  });

  it('refuses an object whose UIDs outgrow their 2-byte length once replaced (TOO_COMPLEX, named), rather than failing', async () => {
    // 20,000 one-digit UIDs (40 kB) become 20,000 UIDs of 44 digits (900 kB): more than an explicit UI value can hold.
    const frameOfReference = tag(0x0020, 0x0052);
    const many = edited(syntheticImage({ instance: 522 }), (f) =>
      f.dataset.set(frameOfReference, { tag: frameOfReference, vr: 'UI', bytes: textBytes('UI', Array(20_000).fill('1').join('\\')) }),
    );
    const answer = await stow(node().url, coordinatorA, [{ bytes: many }]);
    expect(answer.status).toBe(409);
    expect(answer.failed.map(failureCode)).toEqual(['TOO_COMPLEX']);
    expect(answer.failed[0]['00000902'].Value[0]).toMatch(/^TOO_COMPLEX part 1: After de-identification: \(0020,0052\) would/);
  });

  it('refuses an object of 1,000,000 empty items (TOO_COMPLEX, A700), and answers /healthz while a batch of hostile objects is parsed', async () => {
    const live = await subscribe<{ ingestProgress: { status: string; objectsDone: number } }>(
      node().url,
      coordinatorA,
      `subscription ($site: ID!) { ingestProgress(siteId: $site) { status objectsDone } }`,
      { site: siteA.id },
    );
    try {
      const referencedSeries = tag(0x0008, 0x1115);
      const valid = syntheticImage({ instance: 530 });
      // One object over the limit, then ten just under it (90,000 items each), a few seconds of parsing: far longer than the progress event takes to arrive.
      const flood = insertElement(valid, referencedSeries, emptyItemsSequence(referencedSeries, 1_000_000));
      const heavy = Array.from({ length: 10 }, (_, i) =>
        insertElement(syntheticImage({ instance: 531 + i }), referencedSeries, emptyItemsSequence(referencedSeries, 90_000)),
      );
      const before = { instances: await count('instance'), files: (await objectFiles()).length };
      const order: string[] = [];
      const batch = stow(
        node().url,
        coordinatorA,
        [flood, ...heavy].map((bytes) => ({ bytes })),
      ).then((answer) => {
        order.push('batch');
        return answer;
      });
      await live.waitFor((e) => e.ingestProgress.status === 'RUNNING', 30_000);
      const health = await fetch(`${node().url}/healthz`);
      order.push('healthz');
      expect(health.status).toBe(200);
      const answer = await batch;
      expect(order).toEqual(['healthz', 'batch']);
      expect(answer.status).toBe(409);
      expect(answer.failed.map(failureCode)).toEqual(['TOO_COMPLEX', ...heavy.map(() => 'BATCH_REJECTED')]);
      expect(answer.failed[0]['00081197'].Value).toEqual([0xa700]);
      expect({ instances: await count('instance'), files: (await objectFiles()).length }).toEqual(before);
    } finally {
      await live.close();
    }
  });
});
