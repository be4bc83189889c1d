import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** A CA and a hub certificate it signed, for 127.0.0.1, made with the openssl CLI in `dir` for this run. */
export async function makeHubCertificates(dir: string): Promise<{ ca: string; key: string; cert: string }> {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=Facet node test CA', '-days', '2');
  run('req', ...ec, '-keyout', 'hub.key', '-out', 'hub.csr', '-subj', '/CN=127.0.0.1');
  await fs.writeFile(path.join(dir, 'hub.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run('x509', '-req', '-in', 'hub.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'hub.pem', '-days', '2', '-extfile', 'hub.ext');
  const read = (f: string) => fs.readFile(path.join(dir, f), 'utf8');
  return { ca: await read('ca.pem'), key: await read('hub.key'), cert: await read('hub.pem') };
}
