import { useState } from 'react';
import { useMutation, useQuery } from 'urql';
import { ADJUDICATE, ADJUDICATION_QUEUE, type AdjudicationQueueData } from '../graphql/documents';
import { ErrorNote } from '../ui';

type QueueItem = AdjudicationQueueData['adjudicationQueue']['nodes'][number];

function Decision({ item, onDecided }: { item: QueueItem; onDecided: () => void }) {
  const [grade, setGrade] = useState('');
  const [rationale, setRationale] = useState('');
  const [state, adjudicate] = useMutation(ADJUDICATE);
  const joint = item.readings[0]?.joint;
  const submit = async () => {
    const notAssessable = grade.trim().toLowerCase() === 'n';
    const result = await adjudicate({
      input: {
        jointId: item.jointId,
        modality: item.modality,
        feature: item.feature,
        rationale,
        ...(notAssessable ? { notAssessable } : { grade: Number(grade) }),
      },
    });
    if (!result.error) onDecided();
  };
  return (
    <tr data-testid={`adjudicate-${item.id}`}>
      <td>
        {joint?.patient?.pseudonym} {joint?.level} {joint?.side} {item.modality}
      </td>
      <td>{item.feature}</td>
      <td>{item.readings.map((r) => `${r.reader?.code ?? '?'}: ${r.notAssessable ? 'not assessable' : r.grade}`).join(' · ')}</td>
      <td>
        <input name="grade" size={3} placeholder="grade or N" value={grade} onChange={(e) => setGrade(e.target.value)} />
        <input name="rationale" placeholder="rationale" value={rationale} onChange={(e) => setRationale(e.target.value)} />
        <button type="button" disabled={state.fetching || !grade.trim() || !rationale.trim()} onClick={() => void submit()}>
          Decide
        </button>
        <ErrorNote error={state.error} />
      </td>
    </tr>
  );
}

/** An adjudicator's queue: each disagreement with the two grades, decided with a grade and a rationale. */
export function AdjudicationQueue() {
  const [{ data, error }, refetch] = useQuery<AdjudicationQueueData>({ query: ADJUDICATION_QUEUE });
  return (
    <section className="adjudication">
      <h2>Adjudication queue ({data?.adjudicationQueue.totalCount ?? '…'})</h2>
      <ErrorNote error={error} />
      <table data-testid="adjudication-queue">
        <thead>
          <tr>
            <th>Joint</th>
            <th>Feature</th>
            <th>The two grades</th>
            <th>Decision</th>
          </tr>
        </thead>
        <tbody>
          {(data?.adjudicationQueue.nodes ?? []).map((item) => (
            <Decision key={item.id} item={item} onDecided={() => refetch({ requestPolicy: 'network-only' })} />
          ))}
        </tbody>
      </table>
    </section>
  );
}
