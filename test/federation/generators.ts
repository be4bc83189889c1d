import { seededRandom } from '../../server/stats/bootstrap';
import type { JsonValue } from '../../server/federation/canonical-json';

/** Seeded generators for the federation tests: the same seed gives the same cases on every machine. */
export class Gen {
  readonly random: () => number;

  constructor(seed: number) {
    this.random = seededRandom(seed);
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)];
  }

  bool(p = 0.5): boolean {
    return this.random() < p;
  }

  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255);
    return out;
  }

  /** A string mixing ASCII, controls, escapes, Latin-1, BMP and astral characters (never a lone surrogate). */
  string(maxLength = 12): string {
    const pieces = ['a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\t', '\u0001', '\u001f', '\u007f', 'é', 'ö', '€', '\ufb33', '😀', '𝄞', '\u2028'];
    let s = '';
    for (let i = this.int(0, maxLength); i > 0; i--) s += this.pick(pieces);
    return s;
  }

  number(): number {
    switch (this.int(0, 5)) {
      case 0:
        return this.int(-1000, 1000);
      case 1:
        return (this.random() - 0.5) * 10 ** this.int(-30, 30);
      case 2:
        return this.pick([0, -0, 1e21, 1e-7, 5e-324, Number.MAX_VALUE, Number.MAX_SAFE_INTEGER, -Number.MIN_SAFE_INTEGER, 0.1, 1 / 3]);
      default:
        return this.random();
    }
  }

  json(depth = 3): JsonValue {
    const kind = depth <= 0 ? this.int(0, 3) : this.int(0, 5);
    switch (kind) {
      case 0:
        return null;
      case 1:
        return this.bool();
      case 2:
        return this.number();
      case 3:
        return this.string();
      case 4:
        return Array.from({ length: this.int(0, 4) }, () => this.json(depth - 1));
      default: {
        const out: Record<string, JsonValue> = {};
        for (let i = this.int(0, 5); i > 0; i--) out[this.string(6)] = this.json(depth - 1);
        return out;
      }
    }
  }
}
