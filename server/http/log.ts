/**
 * One-line JSON logs on stderr. Callers pass ids and codes, never PHI; errors are reduced to name,
 * message and stack (no request bodies, no headers).
 */
function serialise(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  return value;
}

function write(level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}): void {
  const entry = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, serialise(v)]));
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...entry })}\n`);
}

export const log = {
  info: (message: string, fields?: Record<string, unknown>) => write('info', message, fields),
  warn: (message: string, fields?: Record<string, unknown>) => write('warn', message, fields),
  error: (message: string, fields?: Record<string, unknown>) => write('error', message, fields),
};
