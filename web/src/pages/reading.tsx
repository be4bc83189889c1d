import { Component, lazy, Suspense, useCallback, useEffect, useMemo, useState, type ReactNode } from 'react';
import { useClient, useMutation, useQuery, type Client } from 'urql';
import {
  GRADING_SCHEME,
  READER_ROLE,
  type ReaderRoleData,
  OWN_READINGS,
  RECORD_READING,
  WORKLIST_IMAGES,
  type GradingSchemeData,
  type Modality,
  type OwnReading,
  type OwnReadingsData,
  type Page,
  type Viewer,
  type WorklistImage,
  type WorklistImagesData,
} from '../graphql/documents';
import { ErrorNote } from '../ui';
import { AdjudicationQueue } from './adjudication';
import { ConfirmationView } from './confirmation';
import type { ViewerImage } from '../viewer/joint-viewport';

/** cornerstone3D, its decoding worker and WASM codecs load with the first joint shown, not with the app. */
const JointViewport = lazy(() => import('../viewer/joint-viewport'));

/** A viewer that cannot load (its chunk unreachable) says so, and leaves the worklist and grading working. */
class ViewerBoundary extends Component<{ children: ReactNode }, { error: Error | null }> {
  state = { error: null as Error | null };
  static getDerivedStateFromError(error: Error) {
    return { error };
  }
  render() {
    return this.state.error ? (
      <p className="error" role="alert">
        The image viewer could not load: {this.state.error.message}
      </p>
    ) : (
      this.props.children
    );
  }
}

/** Every page of a connection, following endCursor (a site's joint images and a reader's readings exceed one page). */
async function allPages<D, T>(client: Client, query: string, variables: Record<string, unknown>, pick: (data: D) => Page<T>): Promise<T[]> {
  const all: T[] = [];
  let after: string | null = null;
  for (;;) {
    const result = await client.query<D>(query, { ...variables, after }, { requestPolicy: 'network-only' }).toPromise();
    if (result.error) throw result.error;
    const page = pick(result.data!);
    all.push(...page.nodes);
    if (!page.pageInfo.hasNextPage) return all;
    after = page.pageInfo.endCursor;
  }
}

interface Item {
  key: string;
  jointId: string;
  modality: Modality;
  label: string;
  /** The joint's images in this modality (usually one). */
  images: ViewerImage[];
}

/** A worklist image as the viewer takes it, or null when the API withheld its instance. */
function viewerImage(image: WorklistImage): ViewerImage | null {
  const instance = image.instance;
  const study = instance?.series?.study;
  if (!instance || !instance.series || !study) return null;
  return {
    uids: { study: study.studyInstanceUid, series: instance.series.seriesInstanceUid, instance: instance.sopInstanceUid },
    frame: image.frame,
    numberOfFrames: instance.numberOfFrames,
    roi: { x: image.roiX, y: image.roiY, width: image.roiWidth, height: image.roiHeight },
  };
}

/**
 * A reader's worklist (joint × modality of their site, from the joint images) and keyboard grading: a digit records
 * that grade of the current feature, N records it not assessable, ↑/↓ move between features and ←/→ between joints.
 * Only the reader's own readings are read, so the page shows nothing the API's blinding would withhold.
 */
export function ReadingPage({ viewer }: { viewer: Viewer }) {
  const client = useClient();
  const [scheme] = useQuery<GradingSchemeData>({ query: GRADING_SCHEME });
  const [role] = useQuery<ReaderRoleData>({ query: READER_ROLE, variables: { readerId: viewer.readerId }, pause: !viewer.readerId });
  const [images, setImages] = useState<WorklistImage[] | null>(null);
  const [readings, setReadings] = useState<OwnReading[]>([]);
  const [loadError, setLoadError] = useState<Error | null>(null);
  const loadReadings = useCallback(
    () =>
      allPages<OwnReadingsData, OwnReading>(client, OWN_READINGS, { readerId: viewer.readerId }, (d) => d.readings)
        .then(setReadings)
        .catch(setLoadError),
    [client, viewer.readerId],
  );
  useEffect(() => {
    void allPages<WorklistImagesData, WorklistImage>(client, WORKLIST_IMAGES, {}, (d) => d.jointImages)
      .then(setImages)
      .catch(setLoadError);
    void loadReadings();
  }, [client, loadReadings]);
  const [recordState, record] = useMutation(RECORD_READING);
  const [itemIndex, setItemIndex] = useState(0);
  const [featureIndex, setFeatureIndex] = useState(0);
  const [imageIndex, setImageIndex] = useState(0);
  const features = scheme.data?.gradingScheme ?? [];
  const items = useMemo<Item[]>(() => {
    const seen = new Map<string, Item>();
    for (const image of images ?? []) {
      const modality = image.instance?.series?.modality;
      if (!image.joint || !modality) continue;
      const key = `${image.joint.id}:${modality}`;
      if (!seen.has(key))
        seen.set(key, {
          key,
          jointId: image.joint.id,
          modality,
          label: `${image.joint.patient?.pseudonym ?? ''} ${image.joint.level} ${image.joint.side} ${modality}`,
          images: [],
        });
      const shown = viewerImage(image);
      if (shown) seen.get(key)!.images.push(shown);
    }
    return [...seen.values()].sort((a, b) => a.label.localeCompare(b.label));
  }, [images]);
  const mine = useMemo(() => {
    const byCell = new Map<string, { grade: number | null; notAssessable: boolean }>();
    for (const r of readings) byCell.set(`${r.jointId}:${r.modality}:${r.feature}`, r);
    return byCell;
  }, [readings]);
  const left = (item: Item) => features.filter((f) => !mine.has(`${item.key}:${f.code}`)).length;
  const item = items[itemIndex];
  const feature = features[featureIndex];
  const shown = item?.images[Math.min(imageIndex, item.images.length - 1)];
  useEffect(() => setImageIndex(0), [item?.key]);

  useEffect(() => {
    if (!item || !feature) return;
    const onKey = async (event: KeyboardEvent) => {
      if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
      const move = (d: number) => setFeatureIndex((i) => Math.min(features.length - 1, Math.max(0, i + d)));
      if (event.key === 'ArrowDown') move(1);
      else if (event.key === 'ArrowUp') move(-1);
      else if (event.key === 'ArrowRight' || event.key === 'ArrowLeft') {
        setItemIndex((i) => Math.min(items.length - 1, Math.max(0, i + (event.key === 'ArrowRight' ? 1 : -1))));
        setFeatureIndex(0);
      } else if (/^\d$/.test(event.key) || event.key.toLowerCase() === 'n') {
        const notAssessable = event.key.toLowerCase() === 'n';
        const grade = notAssessable ? null : Number(event.key);
        if (!notAssessable && !feature.grades.some((g) => g.grade === grade)) return;
        const result = await record({
          input: { jointId: item.jointId, modality: item.modality, feature: feature.code, ...(notAssessable ? { notAssessable } : { grade }) },
        });
        if (result.error) return;
        await loadReadings();
        if (featureIndex < features.length - 1) setFeatureIndex(featureIndex + 1);
        else if (itemIndex < items.length - 1) {
          setItemIndex(itemIndex + 1);
          setFeatureIndex(0);
        }
      } else return;
      event.preventDefault();
    };
    const listener = (event: KeyboardEvent) => void onKey(event);
    window.addEventListener('keydown', listener);
    return () => window.removeEventListener('keydown', listener);
  }, [item, feature, features, items, itemIndex, featureIndex, record, loadReadings]);

  if (!viewer.readerId) return <p className="refused">This token acts as no reader.</p>;
  return (
    <section className="reading">
      <h1>Reading</h1>
      {role.data?.reader.role === 'ADJUDICATOR' ? <AdjudicationQueue /> : null}
      {role.data?.reader.role === 'SENIOR' ? <ConfirmationView /> : null}
      <ErrorNote error={scheme.error ?? recordState.error} />
      {loadError ? (
        <p className="error" role="alert">
          {loadError.message}
        </p>
      ) : null}
      <p className="hint">Digits grade the highlighted feature, N marks it not assessable, ↑/↓ move between features, ←/→ between joints.</p>
      <div className="reading-layout">
        <ol className="worklist" data-testid="worklist">
          {items.map((it, i) => (
            <li key={it.key} className={i === itemIndex ? 'active' : undefined} data-left={left(it)}>
              <button
                type="button"
                onClick={() => {
                  setItemIndex(i);
                  setFeatureIndex(0);
                }}
              >
                {it.label} · {left(it) === 0 ? 'done' : `${left(it)} left`}
              </button>
            </li>
          ))}
        </ol>
        {shown ? (
          <div className="viewer-column">
            <ViewerBoundary>
              <Suspense fallback={<p className="hint">Loading the viewer…</p>}>
                <JointViewport image={shown} />
              </Suspense>
            </ViewerBoundary>
            {item.images.length > 1 ? (
              <p className="image-choice">
                {item.images.map((_, i) => (
                  <button key={i} type="button" aria-pressed={i === imageIndex} onClick={() => setImageIndex(i)}>
                    Image {i + 1}
                  </button>
                ))}
              </p>
            ) : null}
          </div>
        ) : null}
        {item ? (
          <table className="grading" data-testid="grading">
            <caption>{item.label}</caption>
            <tbody>
              {features.map((f, i) => {
                const own = mine.get(`${item.key}:${f.code}`);
                return (
                  <tr key={f.code} className={i === featureIndex ? 'active' : undefined} data-feature={f.code}>
                    <td>{f.label}</td>
                    <td>{f.grades.map((g) => `${g.grade} ${g.label}`).join(' · ')}</td>
                    <td data-testid="own-grade">{own ? (own.notAssessable ? 'not assessable' : own.grade) : ''}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        ) : images ? (
          <p>No joint images to read at your site.</p>
        ) : null}
      </div>
    </section>
  );
}
