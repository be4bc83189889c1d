import { useState } from 'react';
import { useMutation, useQuery } from 'urql';
import { CONFIRM_REFERENCE, UNCONFIRMED_REFERENCE, type UnconfirmedReferenceData } from '../graphql/documents';
import { ErrorNote } from '../ui';

/** The senior group's view: reference grades not yet confirmed, confirmed (and locked) together, all or none. */
export function ConfirmationView() {
  const [{ data, error }, refetch] = useQuery<UnconfirmedReferenceData>({ query: UNCONFIRMED_REFERENCE });
  const [chosen, setChosen] = useState<Set<string>>(new Set());
  const [state, confirm] = useMutation(CONFIRM_REFERENCE);
  const grades = data?.referenceGrades.nodes ?? [];
  const toggle = (id: string) => setChosen((current) => (current.has(id) ? new Set([...current].filter((x) => x !== id)) : new Set(current).add(id)));
  const submit = async () => {
    const result = await confirm({ ids: [...chosen] });
    if (!result.error) {
      setChosen(new Set());
      refetch({ requestPolicy: 'network-only' });
    }
  };
  return (
    <section className="confirmation">
      <h2>Reference grades to confirm ({data?.referenceGrades.totalCount ?? '…'})</h2>
      <ErrorNote error={error ?? state.error} />
      <table data-testid="confirmation">
        <thead>
          <tr>
            <th>
              <input
                type="checkbox"
                aria-label="all"
                checked={grades.length > 0 && chosen.size === grades.length}
                onChange={() => setChosen(chosen.size === grades.length ? new Set() : new Set(grades.map((g) => g.id)))}
              />
            </th>
            <th>Joint</th>
            <th>Feature</th>
            <th>Grade</th>
            <th>Source</th>
          </tr>
        </thead>
        <tbody>
          {grades.map((g) => (
            <tr key={g.id} data-testid={`reference-${g.id}`}>
              <td>
                <input type="checkbox" checked={chosen.has(g.id)} onChange={() => toggle(g.id)} />
              </td>
              <td>
                {g.joint?.patient?.pseudonym} {g.joint?.level} {g.joint?.side} {g.modality}
              </td>
              <td>{g.feature}</td>
              <td>{g.notAssessable ? 'not assessable' : g.grade}</td>
              <td>{g.source}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <button type="button" disabled={chosen.size === 0 || state.fetching} onClick={() => void submit()}>
        Confirm {chosen.size} grade(s)
      </button>
    </section>
  );
}
