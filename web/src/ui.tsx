import type { CombinedError } from 'urql';

/** The API's error code and message, as the server sent them (README, Errors). */
export function ErrorNote({ error }: { error: CombinedError | undefined | null }) {
  if (!error) return null;
  const codes = error.graphQLErrors.map((e) => String(e.extensions?.code ?? '')).filter(Boolean);
  return (
    <p className="error" role="alert">
      {codes.length ? <code>{codes.join(', ')}</code> : null} {error.graphQLErrors[0]?.message ?? error.networkError?.message ?? error.message}
    </p>
  );
}

export const fmt = (value: number | null | undefined, digits = 3): string => (value === null || value === undefined ? '—' : value.toFixed(digits));

/** Seconds as a person reads a time left ("4 min 10 s"); "—" when unknown. */
export const duration = (seconds: number | null): string => {
  if (seconds === null || !Number.isFinite(seconds)) return '—';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
};
