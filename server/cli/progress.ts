/** A one-line progress bar on a terminal; on a pipe, one plain line every few seconds. */
export class Progress {
  private started = Date.now();
  private lastLine = 0;
  private done = { files: 0, bytes: 0 };

  constructor(
    private readonly total: { files: number; bytes: number },
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  advance(files: number, bytes: number): void {
    this.done.files += files;
    this.done.bytes += bytes;
    this.render(false);
  }

  finish(): void {
    this.render(true);
    if (this.out.isTTY) this.out.write('\n');
  }

  /** "120/1000 files  61.2/512.0 MB  12.3 MB/s  ETA 0:36" */
  line(): string {
    const seconds = Math.max((Date.now() - this.started) / 1000, 0.001);
    const rate = this.done.bytes / seconds;
    const left = rate > 0 ? (this.total.bytes - this.done.bytes) / rate : NaN;
    const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
    const eta = Number.isFinite(left) ? `${Math.floor(left / 60)}:${String(Math.round(left % 60)).padStart(2, '0')}` : '-';
    return `${this.done.files}/${this.total.files} files  ${mb(this.done.bytes)}/${mb(this.total.bytes)} MB  ${mb(rate)} MB/s  ETA ${eta}`;
  }

  private render(final: boolean): void {
    if (this.out.isTTY) {
      const width = 24;
      const filled = this.total.bytes ? Math.round((this.done.bytes / this.total.bytes) * width) : width;
      this.out.write(`\r[${'='.repeat(filled)}${' '.repeat(width - filled)}] ${this.line()}   `);
    } else if (final || Date.now() - this.lastLine > 2000) {
      this.lastLine = Date.now();
      this.out.write(`progress: ${this.line()}\n`);
    }
  }
}
