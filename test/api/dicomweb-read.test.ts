/**
 * QIDO-RS, WADO-RS metadata, rendered and frames, driven by a real DICOMweb client: dicomweb-client from the npm
 * registry, the library OHIF uses. It is a browser library built on XMLHttpRequest; xhr2 supplies that class over
 * Node's http module, so the unchanged client runs in the test process against the real server.
 */
import XMLHttpRequestOverNode from 'xhr2';
import { api } from 'dicomweb-client';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { Role } from '../../server/domain';
import { replaceUid } from '../../server/dicom/uid';
import { Instance, Study, type Site } from '../../server/entities';
import { fixture, IDENTIFIERS, READABLE } from '../helpers/dicom-fixtures';
import { dicomwebImage, type ImageSpec } from '../helpers/dicomweb-images';
import { Factory } from '../helpers/factories';
import { gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';
import { stow } from '../helpers/stow';
import { Gen } from '../federation/generators';

(globalThis as any).XMLHttpRequest = XMLHttpRequestOverNode;

const IMPORT = `mutation ($csv: String!) { importPatientsManifest(csv: $csv) { stored created rejected { code reason } } }`;
const SIZE = 4;
/** Stored values chosen against the window of the objects (center 1000, width 200): below, at the center, above. */
const PIXELS = [0, 1000, 4000, 1000, 0, 1000, 4000, 1000, 0, 1000, 4000, 1000, 0, 1000, 4000, 1000];
const ROOT = '1.2.826.0.1.3680043.9.7134.77';

type Json = Record<string, { vr: string; Value?: any[]; BulkDataURI?: string; InlineBinary?: string }>;
const v = (item: Json, tag: string) => item[tag]?.Value?.[0];

/** Three studies: two of EAST's patients (one with a CT and an MR series), one of WEST's. */
const SPECS: Array<ImageSpec & { site: 'EAST' | 'WEST' }> = [
  ...[1, 2, 3].map((n) => ({
    site: 'EAST' as const,
    patientId: 'MRN-E1',
    studyUid: `${ROOT}.1`,
    seriesUid: `${ROOT}.1.1`,
    sopUid: `${ROOT}.1.1.${n}`,
    modality: 'CT' as const,
    studyDate: '20230105',
    seriesNumber: 1,
    instanceNumber: n,
    pixels: PIXELS,
    size: SIZE,
    window: { center: 1000, width: 200 },
  })),
  {
    site: 'EAST',
    patientId: 'MRN-E1',
    studyUid: `${ROOT}.1`,
    seriesUid: `${ROOT}.1.2`,
    sopUid: `${ROOT}.1.2.1`,
    modality: 'MR',
    studyDate: '20230105',
    seriesNumber: 2,
    instanceNumber: 1,
    pixels: PIXELS,
    size: SIZE,
    // No window: the VOI LUT maps values below 2000 to 10 and the rest to 200 (8 bits).
    voiLut: { descriptor: [4096, 0, 8], data: Array.from({ length: 4096 }, (_, i) => (i < 2000 ? 10 : 200)) },
    photometric: 'MONOCHROME2',
  },
  {
    site: 'EAST',
    patientId: 'MRN-E2',
    studyUid: `${ROOT}.2`,
    seriesUid: `${ROOT}.2.1`,
    sopUid: `${ROOT}.2.1.1`,
    modality: 'CT',
    studyDate: '20240610',
    seriesNumber: 1,
    instanceNumber: 1,
    pixels: PIXELS,
    size: SIZE,
    window: { center: 1000, width: 200 },
    photometric: 'MONOCHROME1',
  },
  {
    site: 'WEST',
    patientId: 'MRN-W1',
    studyUid: `${ROOT}.3`,
    seriesUid: `${ROOT}.3.1`,
    sopUid: `${ROOT}.3.1.1`,
    modality: 'CT',
    studyDate: '20220301',
    seriesNumber: 1,
    instanceNumber: 1,
    pixels: PIXELS,
    size: SIZE,
    window: { center: 1000, width: 200 },
  },
];

describe('DICOMweb QIDO-RS and WADO-RS reads through dicomweb-client', () => {
  const node = useTestNode();
  let east: string;
  let west: string;
  let admin: string;
  let statistician: string;
  let eastReader: string;
  /** Original UID to the stored (replaced) UID. */
  let uid: (original: string) => string;
  let storedDate: (original: string) => Promise<string>;
  // The package's types are generated from JSDoc and mark every optional option required, so the client is used untyped.
  const client = (token: string | null): any =>
    new api.DICOMwebClient({ url: `${node().url}/dicomweb`, headers: token ? { Authorization: `Bearer ${token}` } : {} } as any);
  /** The HTTP answer of a failing client call: status and Facet's code. */
  const failure = async (call: Promise<unknown>) => {
    try {
      await call;
    } catch (error: any) {
      const body = typeof error.response === 'string' ? JSON.parse(error.response) : error.response;
      const parsed = body instanceof ArrayBuffer ? JSON.parse(Buffer.from(body).toString('utf8')) : body;
      return { status: error.status as number, code: parsed?.errors?.[0]?.extensions?.code as string, parameter: parsed?.errors?.[0]?.extensions?.parameter };
    }
    throw new Error('The call succeeded');
  };
  const get = (path: string, token: string | null, headers: Record<string, string> = {}) =>
    fetch(`${node().url}/dicomweb${path}`, { headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } });

  beforeAll(async () => {
    const factory = new Factory(node().services);
    const sites: Record<string, Site> = { EAST: await factory.site('EAST'), WEST: await factory.site('WEST') };
    east = await factory.token(Role.COORDINATOR, { site: sites.EAST });
    west = await factory.token(Role.COORDINATOR, { site: sites.WEST });
    admin = await factory.token(Role.ADMIN);
    statistician = await factory.token(Role.STATISTICIAN);
    eastReader = (await factory.readerWithToken(sites.EAST)).token;
    const manifest = (site: string, rows: string[]) =>
      `site,patient_id,pseudonym,sex,age,eligible,exclusion_reasons\n${rows.map((r) => `${site},${r}`).join('\n')}\n`;
    expect(
      (await gqlOk(node().url, east, IMPORT, { csv: manifest('EAST', ['MRN-E1,EAST-P001,F,70,yes,', 'MRN-E2,EAST-P002,M,64,yes,']) })).importPatientsManifest
        .stored,
    ).toBe(true);
    expect((await gqlOk(node().url, west, IMPORT, { csv: manifest('WEST', ['MRN-W1,WEST-P001,F,58,yes,']) })).importPatientsManifest.stored).toBe(true);
    for (const site of ['EAST', 'WEST'] as const) {
      const answer = await stow(
        node().url,
        site === 'EAST' ? east : west,
        SPECS.filter((s) => s.site === site).map((s) => ({ bytes: dicomwebImage(s) })),
      );
      expect(answer.failed).toEqual([]);
    }
    const key = await node().services.nodeKeys.identifierKey();
    uid = (original) => replaceUid(key, original);
    storedDate = async (original) =>
      (
        (
          await node()
            .dataSource.getRepository(Study)
            .findOneByOrFail({ studyInstanceUid: uid(original) })
        ).studyDate as string
      ).replaceAll('-', '');
  });

  describe('QIDO-RS search', () => {
    it('finds the studies of the caller’s site only; an ADMIN sees every site', async () => {
      const uids = async (token: string) => ((await client(token).searchForStudies()) as Json[]).map((s) => v(s, '0020000D')).sort();
      expect(await uids(east)).toEqual([uid(`${ROOT}.1`), uid(`${ROOT}.2`)].sort());
      expect(await uids(west)).toEqual([uid(`${ROOT}.3`)]);
      expect(await uids(admin)).toHaveLength(3);
      expect(await uids(eastReader)).toHaveLength(2);
    });

    it('answers the study attributes from de-identified data: pseudonym, shifted date, counts, modalities, Retrieve URL', async () => {
      const [study] = (await client(east).searchForStudies({ queryParams: { PatientID: 'EAST-P001' } })) as Json[];
      expect(v(study, '00100020')).toBe('EAST-P001');
      expect(v(study, '00100010')).toEqual({ Alphabetic: 'EAST-P001' });
      expect(v(study, '00080020')).toBe(await storedDate(`${ROOT}.1`));
      expect(v(study, '00080020')).not.toBe('20230105');
      expect(study['00080061'].Value).toEqual(['CT', 'MR']);
      expect(v(study, '00201206')).toBe(2);
      expect(v(study, '00201208')).toBe(4);
      expect(study['00080050']).toEqual({ vr: 'SH' });
      expect(v(study, '00081190')).toBe(`${node().url}/dicomweb/studies/${uid(`${ROOT}.1`)}`);
      expect(JSON.stringify(study)).not.toContain('MRN-E1');
    });

    it('matches StudyDate ranges, UID lists, modalities, wildcards and Accession Number', async () => {
      const d1 = await storedDate(`${ROOT}.1`);
      const d2 = await storedDate(`${ROOT}.2`);
      const [early, late] = [d1, d2].sort();
      const count = async (queryParams: Record<string, unknown>, token = admin) => ((await client(token).searchForStudies({ queryParams })) as Json[]).length;
      expect(await count({ StudyDate: early })).toBe(1);
      expect(await count({ StudyDate: `${early}-${late}` }, east)).toBe(2);
      expect(await count({ StudyDate: `-${early}` }, east)).toBe(1);
      expect(await count({ StudyDate: `${late}-` }, east)).toBe(1);
      expect(await count({ StudyInstanceUID: `${uid(`${ROOT}.1`)},${uid(`${ROOT}.3`)}` })).toBe(2);
      expect(await count({ ModalitiesInStudy: 'MR' })).toBe(1);
      expect(await count({ PatientID: 'EAST-*' })).toBe(2);
      expect(await count({ PatientName: 'EAST-P00?' })).toBe(2);
      expect(await count({ AccessionNumber: 'ACC-20240117-88' })).toBe(0);
      expect(await count({ AccessionNumber: '*' })).toBe(3);
      expect(await count({ '00100020': 'WEST-P001' })).toBe(1);
      expect(await count({ fuzzymatching: 'false', limit: '2', offset: '0' })).toBe(2);
    });

    it('pages with limit and offset in a stable order', async () => {
      const all = ((await client(admin).searchForStudies()) as Json[]).map((s) => v(s, '0020000D'));
      const pages: string[] = [];
      for (let offset = 0; offset < 3; offset++) {
        const page = (await client(admin).searchForStudies({ queryParams: { limit: '1', offset: String(offset) } })) as Json[];
        pages.push(...page.map((s) => v(s, '0020000D')));
      }
      expect(pages).toEqual(all);
      expect(await client(admin).searchForStudies({ queryParams: { offset: '3' } })).toEqual([]);
    });

    it('finds series and instances in a study, in a series, and across studies, with their filters', async () => {
      const series = (await client(east).searchForSeries({ studyInstanceUID: uid(`${ROOT}.1`) })) as Json[];
      expect(series.map((s) => [v(s, '00080060'), v(s, '00200011'), v(s, '00201209')])).toEqual([
        ['CT', 1, 3],
        ['MR', 2, 1],
      ]);
      expect(((await client(east).searchForSeries({ queryParams: { Modality: 'MR' } })) as Json[]).map((s) => v(s, '0020000E'))).toEqual([uid(`${ROOT}.1.2`)]);
      const inSeries = (await client(east).searchForInstances({ studyInstanceUID: uid(`${ROOT}.1`), seriesInstanceUID: uid(`${ROOT}.1.1`) })) as Json[];
      expect(inSeries.map((i) => v(i, '00200013'))).toEqual([1, 2, 3]);
      expect(inSeries.map((i) => v(i, '00080018'))).toEqual([1, 2, 3].map((n) => uid(`${ROOT}.1.1.${n}`)));
      expect(v(inSeries[0], '00280010')).toBe(SIZE);
      const one = (await client(admin).searchForInstances({ queryParams: { SOPInstanceUID: uid(`${ROOT}.3.1.1`), includefield: 'all' } })) as Json[];
      expect(one).toHaveLength(1);
      expect(v(one[0], '00100020')).toBe('WEST-P001');
      expect(v(one[0], '00083002')).toBe('1.2.840.10008.1.2.1');
      expect(((await client(west).searchForInstances({ queryParams: { SOPInstanceUID: uid(`${ROOT}.1.1.1`) } })) as Json[]).length).toBe(0);
      const byNumber = (await client(east).searchForInstances({
        studyInstanceUID: uid(`${ROOT}.1`),
        queryParams: { InstanceNumber: '2', Modality: 'CT' },
      })) as Json[];
      expect(byNumber.map((i) => v(i, '00080018'))).toEqual([uid(`${ROOT}.1.1.2`)]);
    });

    it('returns what includefield names, and warns for what it cannot return or fuzzy matching', async () => {
      const response = await get(`/studies?includefield=00080020,PatientSex&includefield=00080021&fuzzymatching=true`, east);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^application\/dicom\+json/);
      const warning = response.headers.get('warning') ?? '';
      expect(warning).toContain('fuzzymatching');
      expect(warning).toContain('SeriesDate');
      const studies = (await response.json()) as Json[];
      expect(studies.map((s) => v(s, '00100040')).sort()).toEqual(['F', 'M']);
    });

    it('hides other sites: a search by another site’s UID finds nothing', async () => {
      expect(await client(west).searchForStudies({ queryParams: { StudyInstanceUID: uid(`${ROOT}.1`) } })).toEqual([]);
      expect(await client(west).searchForSeries({ studyInstanceUID: uid(`${ROOT}.1`) })).toEqual([]);
    });
  });

  describe('WADO-RS metadata', () => {
    it('answers study, series and instance metadata of de-identified objects, with pixel data by Bulk Data URI', async () => {
      const study = (await client(east).retrieveStudyMetadata({ studyInstanceUID: uid(`${ROOT}.1`) })) as Json[];
      expect(study).toHaveLength(4);
      expect(study.map((i) => v(i, '00080018')).sort()).toEqual([...[1, 2, 3].map((n) => uid(`${ROOT}.1.1.${n}`)), uid(`${ROOT}.1.2.1`)].sort());
      const text = JSON.stringify(study);
      for (const value of Object.values(IDENTIFIERS)) expect({ value, found: text.includes(value) }).toEqual({ value, found: false });
      const series = (await client(east).retrieveSeriesMetadata({ studyInstanceUID: uid(`${ROOT}.1`), seriesInstanceUID: uid(`${ROOT}.1.1`) })) as Json[];
      expect(series.map((i) => v(i, '00200013'))).toEqual([1, 2, 3]);
      const [instance] = (await client(east).retrieveInstanceMetadata({
        studyInstanceUID: uid(`${ROOT}.1`),
        seriesInstanceUID: uid(`${ROOT}.1.1`),
        sopInstanceUID: uid(`${ROOT}.1.1.2`),
      })) as Json[];
      expect(v(instance, '00100020')).toBe('EAST-P001');
      expect(v(instance, '00281050')).toBe(1000);
      expect(v(instance, '00280010')).toBe(SIZE);
      expect(v(instance, '00120062')).toBe('YES');
      const bulk = instance['7FE00010'].BulkDataURI as string;
      expect(bulk).toBe(`${node().url}/dicomweb/studies/${uid(`${ROOT}.1`)}/series/${uid(`${ROOT}.1.1`)}/instances/${uid(`${ROOT}.1.1.2`)}/frames/1`);
      const [frame] = (await client(east).retrieveBulkData({ BulkDataURI: bulk })) as ArrayBuffer[];
      const expected = Buffer.alloc(PIXELS.length * 2);
      PIXELS.forEach((p, i) => expected.writeUInt16LE(p, 2 * i));
      expect(Buffer.from(frame).equals(expected)).toBe(true);
    });

    it('keeps sequences: the VOI LUT Sequence of the MR object, with its LUT data inline', async () => {
      const [mr] = (await client(admin).retrieveSeriesMetadata({ studyInstanceUID: uid(`${ROOT}.1`), seriesInstanceUID: uid(`${ROOT}.1.2`) })) as Json[];
      const item = mr['00283010'].Value?.[0] as Json;
      expect(item['00283002'].Value).toEqual([4096, 0, 8]);
      expect(Buffer.from(item['00283006'].InlineBinary as string, 'base64').length).toBe(8192);
    });
  });

  describe('WADO-RS rendered', () => {
    const grey = (png: ArrayBuffer) => {
      const image = PNG.sync.read(Buffer.from(png));
      return { width: image.width, height: image.height, levels: Array.from({ length: image.width * image.height }, (_, i) => image.data[4 * i]) };
    };
    const rendered = async (
      token: string,
      original: { study: string; series: string; sop: string },
      mediaType: string,
      queryParams?: Record<string, string>,
    ) => {
      const answer = await client(token).retrieveInstanceRendered({
        studyInstanceUID: uid(original.study),
        seriesInstanceUID: uid(original.series),
        sopInstanceUID: uid(original.sop),
        mediaTypes: [{ mediaType }],
        ...(queryParams ? { queryParams } : {}),
      });
      return (Array.isArray(answer) ? answer[0] : answer) as ArrayBuffer;
    };
    const CT1 = { study: `${ROOT}.1`, series: `${ROOT}.1.1`, sop: `${ROOT}.1.1.1` };

    it('renders PNG with the object’s window (center 1000, width 200: 0 → 0, 1000 → 128, 4000 → 255)', async () => {
      const image = grey(await rendered(east, CT1, 'image/png'));
      expect([image.width, image.height]).toEqual([SIZE, SIZE]);
      expect(image.levels.slice(0, 4)).toEqual([0, 128, 255, 128]);
    });

    it('applies the window parameter over the object’s own, and the VOI LUT where the object has no window', async () => {
      const narrow = grey(await rendered(east, CT1, 'image/png', { window: '4000,2,linear' }));
      expect(narrow.levels.slice(0, 4)).toEqual([0, 0, 255, 0]);
      const sigmoid = grey(await rendered(east, CT1, 'image/png', { window: '1000,200,sigmoid' }));
      expect(sigmoid.levels.slice(0, 4)).toEqual([0, 128, 255, 128]);
      const lut = grey(await rendered(east, { study: `${ROOT}.1`, series: `${ROOT}.1.2`, sop: `${ROOT}.1.2.1` }, 'image/png'));
      expect(lut.levels.slice(0, 4)).toEqual([10, 10, 200, 10]);
      const inverted = grey(await rendered(east, { study: `${ROOT}.2`, series: `${ROOT}.2.1`, sop: `${ROOT}.2.1.1` }, 'image/png'));
      expect(inverted.levels.slice(0, 4)).toEqual([255, 127, 0, 127]);
    });

    it('renders JPEG at the quality asked, and a frame by number', async () => {
      const fine = Buffer.from(await rendered(east, CT1, 'image/jpeg', { quality: '95' }));
      const coarse = Buffer.from(await rendered(east, CT1, 'image/jpeg', { quality: '5' }));
      expect(fine.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
      const decoded = jpeg.decode(fine);
      expect([decoded.width, decoded.height]).toEqual([SIZE, SIZE]);
      expect(Math.abs(decoded.data[4 * 2] - 255)).toBeLessThan(24);
      expect(coarse.equals(fine)).toBe(false);
      const frame = await get(`/studies/${uid(CT1.study)}/series/${uid(CT1.series)}/instances/${uid(CT1.sop)}/frames/1/rendered`, east, {
        accept: 'image/png',
      });
      expect(frame.status).toBe(200);
      expect(frame.headers.get('content-type')).toBe('image/png');
      expect(grey(await frame.arrayBuffer()).levels.slice(0, 4)).toEqual([0, 128, 255, 128]);
      const byParameter = await get(
        `/studies/${uid(CT1.study)}/series/${uid(CT1.series)}/instances/${uid(CT1.sop)}/rendered?accept=image/png&viewport=2,2`,
        east,
      );
      expect(byParameter.headers.get('content-type')).toBe('image/png');
      expect(grey(await byParameter.arrayBuffer()).width).toBe(2);
    });
  });

  describe('errors', () => {
    const CT = () => `/studies/${uid(`${ROOT}.1`)}/series/${uid(`${ROOT}.1.1`)}/instances/${uid(`${ROOT}.1.1.1`)}`;
    const problem = async (response: Response) => ({ status: response.status, code: ((await response.json()) as any).errors[0].extensions.code });

    it('refuses bad query values with 400 BAD_REQUEST naming the parameter', async () => {
      expect(await failure(client(east).searchForStudies({ queryParams: { StudyDate: '2023-01-05' } }))).toEqual({
        status: 400,
        code: 'BAD_REQUEST',
        parameter: 'StudyDate',
      });
      expect(await failure(client(east).searchForStudies({ queryParams: { Modality: 'CT' } }))).toMatchObject({ status: 400, parameter: 'Modality' });
      expect(await failure(client(east).searchForStudies({ queryParams: { NoSuchKey: 'x' } }))).toMatchObject({ status: 400, parameter: 'NoSuchKey' });
      expect(await failure(client(east).searchForStudies({ queryParams: { limit: '-1' } }))).toMatchObject({ status: 400, parameter: 'limit' });
      expect(await failure(client(east).searchForStudies({ queryParams: { includefield: 'NotAnAttribute' } }))).toMatchObject({
        status: 400,
        parameter: 'includefield',
      });
      expect(await problem(await get(`${CT()}/rendered?window=1,0,linear`, east))).toEqual({ status: 400, code: 'BAD_REQUEST' });
      expect(await problem(await get(`${CT()}/rendered?size=2`, east))).toEqual({ status: 400, code: 'BAD_REQUEST' });
      expect(await problem(await get(`${CT()}/frames/0`, east))).toEqual({ status: 400, code: 'BAD_REQUEST' });
    });

    it('answers 404 for unknown and malformed UIDs, frames that do not exist, and another site’s objects', async () => {
      const unknown = `${ROOT}.999`;
      expect(await failure(client(east).retrieveStudyMetadata({ studyInstanceUID: unknown }))).toMatchObject({ status: 404, code: 'NOT_FOUND' });
      expect(await failure(client(east).retrieveSeriesMetadata({ studyInstanceUID: uid(`${ROOT}.1`), seriesInstanceUID: unknown }))).toMatchObject({
        status: 404,
      });
      expect(await failure(client(west).retrieveStudyMetadata({ studyInstanceUID: uid(`${ROOT}.1`) }))).toMatchObject({ status: 404, code: 'NOT_FOUND' });
      expect(
        await failure(
          client(west).retrieveInstanceRendered({
            studyInstanceUID: uid(`${ROOT}.1`),
            seriesInstanceUID: uid(`${ROOT}.1.1`),
            sopInstanceUID: uid(`${ROOT}.1.1.1`),
          }),
        ),
      ).toMatchObject({ status: 404 });
      expect(await problem(await get(`/studies/not-a-uid/metadata`, east))).toEqual({ status: 404, code: 'NOT_FOUND' });
      expect(await problem(await get(`${CT()}/frames/2/rendered`, east))).toEqual({ status: 404, code: 'NOT_FOUND' });
      expect(await problem(await get(`${CT()}/frames/1,2`, east))).toEqual({ status: 404, code: 'NOT_FOUND' });
    });

    it('refuses a role without patient-level access (403), no token (401), and media types it cannot make (406)', async () => {
      expect(await failure(client(statistician).searchForStudies())).toMatchObject({ status: 403, code: 'FORBIDDEN' });
      expect(await failure(client(null).searchForStudies())).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
      expect(await problem(await get('/studies', east, { accept: 'application/dicom+xml' }))).toEqual({ status: 406, code: 'NOT_ACCEPTABLE' });
      expect(await problem(await get(`${CT()}/rendered`, east, { accept: 'image/gif' }))).toEqual({ status: 406, code: 'NOT_ACCEPTABLE' });
      expect(await problem(await get(`${CT()}/frames/1`, east, { accept: 'multipart/related; type="image/jls"' }))).toEqual({
        status: 406,
        code: 'NOT_ACCEPTABLE',
      });
      const frames = await get(`${CT()}/frames/1`, east, { accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*' });
      expect(frames.status).toBe(200);
      expect(frames.headers.get('content-type')).toMatch(/^multipart\/related; type="application\/octet-stream"/);
    });

    it('audits searches by their keys, not their values, and refusals with their code', async () => {
      await client(east).searchForStudies({ queryParams: { PatientID: 'MRN-TYPED-BY-HAND' } });
      await failure(client(west).retrieveStudyMetadata({ studyInstanceUID: uid(`${ROOT}.1`) }));
      const rows: Array<{ details: any }> = await node().dataSource.query(
        `SELECT details FROM audit_event WHERE details->'filter'->>'dicomweb' = 'search' OR details->>'dicomweb' = 'metadata' ORDER BY seq`,
      );
      const search = rows.find((r) => r.details.filter?.keys?.includes('PatientID'));
      expect(search?.details.filter).toEqual({ dicomweb: 'search', keys: ['PatientID'] });
      expect(JSON.stringify(rows)).not.toContain('MRN-TYPED-BY-HAND');
      expect(rows.some((r) => r.details.outcome === 'NOT_FOUND')).toBe(true);
      const count = await node().dataSource.getRepository(Instance).count();
      expect(count).toBe(SPECS.length);
    });
  });

  describe('generated queries, by class of query key', () => {
    const gen = new Gen(20261201);
    const digits = (n: number) => Array.from({ length: n }, () => gen.int(0, 9)).join('');
    const CLASSES: Array<{ key: string; level: 'studies' | 'series' | 'instances'; valid: () => string; invalid: () => string }> = [
      {
        key: 'StudyInstanceUID',
        level: 'studies',
        valid: () => `1.${gen.int(1, 999)}.${gen.int(1, 9)}${digits(gen.int(0, 19))}`,
        invalid: () => gen.pick(['1..2', 'abc', `1.${'9'.repeat(70)}`, '1.2.x', '.1']),
      },
      { key: 'SeriesInstanceUID', level: 'series', valid: () => `2.25.${gen.int(1, 1e9)}`, invalid: () => gen.pick(['2.25.-1', '2 25', '2.25.']) },
      { key: 'SOPInstanceUID', level: 'instances', valid: () => `${gen.int(1, 2)}.${gen.int(0, 40)}`, invalid: () => gen.pick(['01.2', 'x', '1,,2']) },
      {
        key: 'StudyDate',
        level: 'studies',
        valid: () => {
          const day = () => `${gen.int(1900, 2099)}${String(gen.int(1, 12)).padStart(2, '0')}${String(gen.int(1, 28)).padStart(2, '0')}`;
          const [a, b] = [day(), day()].sort();
          return gen.pick([a, `${a}-${b}`, `-${b}`, `${a}-`]);
        },
        invalid: () => gen.pick(['20230230', '2023-01-01', '20230101-20220101', '-', '2023', '20231301', 'today']),
      },
      {
        key: 'PatientID',
        level: 'studies',
        valid: () => gen.pick(['*', 'EAST-*', `P${digits(gen.int(0, 8))}?`, '']),
        invalid: () => gen.pick(['a\\b', 'x'.repeat(65), 'tab\there']),
      },
      { key: 'Modality', level: 'series', valid: () => gen.pick(['CT', 'MR', 'XR', 'CT,MR', 'US']), invalid: () => gen.pick(['ct', 'C-T', 'X'.repeat(17)]) },
      { key: 'ModalitiesInStudy', level: 'studies', valid: () => gen.pick(['CT', 'MR\\CT']), invalid: () => gen.pick(['mr', 'M R!']) },
      { key: 'InstanceNumber', level: 'instances', valid: () => String(gen.int(-5, 1e6)), invalid: () => gen.pick(['1.5', 'one', '99999999999']) },
      { key: 'limit', level: 'studies', valid: () => String(gen.int(1, 5000)), invalid: () => gen.pick(['-1', '0', '1.5', 'ten', '']) },
      { key: 'offset', level: 'instances', valid: () => String(gen.int(0, 100)), invalid: () => gen.pick(['-3', 'x']) },
    ];

    it.each(CLASSES.map((c) => [c.key, c] as const))('%s: valid values answer 200 with a JSON array, invalid ones 400 naming the key', async (_key, c) => {
      for (let i = 0; i < 6; i++) {
        const valid = c.valid();
        const ok = await get(`/${c.level}?${new URLSearchParams({ [c.key]: valid })}`, admin);
        expect({ value: valid, status: ok.status }).toEqual({ value: valid, status: 200 });
        expect(Array.isArray(await ok.json())).toBe(true);
        const invalid = c.invalid();
        const bad = await get(`/${c.level}?${new URLSearchParams({ [c.key]: invalid })}`, admin);
        const body = (await bad.json()) as any;
        expect({ value: invalid, status: bad.status, code: body.errors?.[0]?.extensions?.code, parameter: body.errors?.[0]?.extensions?.parameter }).toEqual({
          value: invalid,
          status: 400,
          code: 'BAD_REQUEST',
          parameter: c.key,
        });
      }
    });

    it('a generated match agrees with filtering the full list: PatientID wildcards over the stored pseudonyms', async () => {
      const all = (await client(admin).searchForStudies()) as Json[];
      for (let i = 0; i < 12; i++) {
        const pattern = gen.pick(['EAST', 'WEST', 'E', '*', '?']) + gen.pick(['', '*', '-P00?', '-P001', '?']);
        const re = new RegExp(`^${pattern.replace(/[-]/g, '\\-').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
        const expected = all.filter((s) => re.test(v(s, '00100020'))).map((s) => v(s, '0020000D'));
        const found = ((await client(admin).searchForStudies({ queryParams: { PatientID: pattern } })) as Json[]).map((s) => v(s, '0020000D'));
        expect({ pattern, found }).toEqual({ pattern, found: expected });
      }
    });
  });
  describe('every stored transfer syntax, through the decoders inference uses', () => {
    /** Each fixture's instance URL (its Retrieve URL), stored at a site of its own so the counts above stay as they are. */
    const urls = new Map<string, string>();
    let north: string;

    beforeAll(async () => {
      const factory = new Factory(node().services);
      const site = await factory.site('NORTH');
      north = await factory.token(Role.COORDINATOR, { site });
      const csv = `site,patient_id,pseudonym,sex,age,eligible,exclusion_reasons\nNORTH,${IDENTIFIERS.PatientID},NORTH-P001,F,76,yes,\n`;
      expect((await gqlOk(node().url, north, IMPORT, { csv })).importPatientsManifest.stored).toBe(true);
      const answer = await stow(
        node().url,
        north,
        READABLE.map(([name]) => ({ bytes: fixture(name) })),
      );
      expect(answer.failed).toEqual([]);
      READABLE.forEach(([name], i) => urls.set(name, answer.stored[i]['00081190'].Value[0]));
    });

    const fetchOf = async (url: string, accept: string) => fetch(url, { headers: { authorization: `Bearer ${north}`, accept } });

    it('renders every lossless syntax to the same PNG as the native object, and JPEG baseline to the same size', async () => {
      const rendered = new Map<string, Buffer>();
      for (const [name] of READABLE) {
        const response = await fetchOf(`${urls.get(name)}/rendered`, 'image/png');
        expect({ name, status: response.status }).toEqual({ name, status: 200 });
        rendered.set(name, Buffer.from(await response.arrayBuffer()));
      }
      const reference = PNG.sync.read(rendered.get('identified-explicit-le.dcm') as Buffer);
      for (const [name] of READABLE) {
        const image = PNG.sync.read(rendered.get(name) as Buffer);
        expect({ name, width: image.width, height: image.height }).toEqual({ name, width: reference.width, height: reference.height });
        if (name !== 'identified-jpeg-baseline.dcm') expect({ name, same: image.data.equals(reference.data) }).toEqual({ name, same: true });
      }
    });

    it('answers frames as stored: native as little-endian octets (the same for every byte order), compressed as their codestream', async () => {
      const framesOf = async (name: string, accept: string) => {
        const response = await fetchOf(`${urls.get(name)}/frames/1`, accept);
        expect({ name, status: response.status }).toEqual({ name, status: 200 });
        const boundary = /boundary=([^;]+)/.exec(response.headers.get('content-type') ?? '')?.[1] as string;
        const body = Buffer.from(await response.arrayBuffer());
        const start = body.indexOf('\r\n\r\n') + 4;
        const head = body.subarray(0, start).toString('latin1');
        return {
          type: /Content-Type: ([^;\r]+)/.exec(head)?.[1],
          syntax: /transfer-syntax=([0-9.]+)/.exec(head)?.[1],
          body: body.subarray(start, body.indexOf(`\r\n--${boundary}--`)),
        };
      };
      // What cornerstone's loader (OHIF, the web app) asks: octets in any transfer syntax, each part labelled with its own.
      const ANY = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';
      const native = await framesOf('identified-explicit-le.dcm', ANY);
      expect(native).toMatchObject({ type: 'application/octet-stream', syntax: '1.2.840.10008.1.2.1' });
      for (const name of ['identified-implicit-le.dcm', 'identified-explicit-be.dcm'])
        expect({ name, same: (await framesOf(name, ANY)).body.equals(native.body) }).toEqual({ name, same: true });
      const expected: Record<string, [string, string]> = {
        'identified-rle.dcm': ['image/x-dicom-rle', '1.2.840.10008.1.2.5'],
        'identified-jpeg-lossless.dcm': ['image/jpeg', '1.2.840.10008.1.2.4.70'],
        'identified-jpeg-ls.dcm': ['image/jls', '1.2.840.10008.1.2.4.80'],
        'identified-jpeg2000.dcm': ['image/jp2', '1.2.840.10008.1.2.4.90'],
      };
      for (const [name, [type, syntax]] of Object.entries(expected)) {
        const any = await framesOf(name, ANY);
        expect({ name, type: any.type, syntax: any.syntax }).toEqual({ name, type: 'application/octet-stream', syntax });
        const own = await framesOf(name, `multipart/related; type="${type}"; transfer-syntax=${syntax}`);
        expect({ name, type: own.type, same: own.body.equals(any.body) }).toEqual({ name, type, same: true });
      }
      // A compressed frame asked for as uncompressed octets only: Facet does not transcode.
      const strict = await fetchOf(`${urls.get('identified-jpeg-ls.dcm')}/frames/1`, 'multipart/related; type="application/octet-stream"');
      expect(strict.status).toBe(406);
    });
  });
});
