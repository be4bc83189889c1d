import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const SERVER = path.resolve(__dirname, '../../server');

/** Every TypeScript file under server/, as a path relative to the repo root. */
function serverFiles(dir = SERVER): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return serverFiles(full);
    return entry.name.endsWith('.ts') ? [path.relative(path.resolve(SERVER, '..'), full)] : [];
  });
}

/** The files under server/ that spell `value` as a string literal ('x', "x" or `x`), comments included. */
export function filesSpelling(value: string): string[] {
  const escaped = value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const literal = new RegExp(`(['"\`])${escaped}\\1`);
  return serverFiles().filter((file) => literal.test(readFileSync(path.resolve(SERVER, '..', file), 'utf8')));
}
