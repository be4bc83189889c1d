import { mkdir, readFile } from 'node:fs/promises';
import { addSite, listSites, removeSite, SiteRegistryError, validateSiteEntry, type SiteEntry } from '../federation/site-registry';
import { keyIdOf } from '../federation/identity';

/**
 * `facet site add <file> [--replace] | remove <CODE> | list`: edits the hub's member registry (FACET_SITES_DIR)
 * through site-registry.ts, which validates and writes atomically. A running hub sees the change at the next
 * message (it re-reads the folder when it changes). Every problem is reported with its file and field.
 */
export class SiteCommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SiteCommandError';
  }
}

const line = (site: SiteEntry) => `${site.code}\t${keyIdOf(site.signingKey)}\t${site.name}\t${site.contact.name} <${site.contact.email}>`;

/** Runs one `site` subcommand over `sitesDir`; resolves the text to print, or throws SiteCommandError / SiteRegistryError. */
export async function siteCommand(sitesDir: string, argv: readonly string[]): Promise<string> {
  const [sub, ...rest] = argv;
  const flags = rest.filter((a) => a.startsWith('--'));
  const args = rest.filter((a) => !a.startsWith('--'));
  const unknownFlag = flags.find((f) => f !== '--replace' || sub !== 'add');
  if (unknownFlag) throw new SiteCommandError(`unknown option ${unknownFlag}`);
  switch (sub) {
    case 'add': {
      if (args.length !== 1) throw new SiteCommandError('usage: facet site add <file.json> [--replace]');
      let entry: unknown;
      try {
        entry = JSON.parse(await readFile(args[0], 'utf8'));
      } catch (error) {
        throw new SiteCommandError(`cannot read ${args[0]} as JSON: ${(error as Error).message}`);
      }
      // A new hub's first valid member makes its registry folder (nothing else would); a bad entry makes nothing.
      const code = (entry as { code?: unknown } | null)?.code;
      if (validateSiteEntry(entry, `${String(code)}.json`).site) await mkdir(sitesDir, { recursive: true });
      const site = await addSite(sitesDir, entry, { replace: flags.includes('--replace') });
      // The key id is what the operator reads back to the node's contact on the phone.
      return `${flags.includes('--replace') ? 'replaced' : 'added'} ${line(site)}\n`;
    }
    case 'remove': {
      if (args.length !== 1) throw new SiteCommandError('usage: facet site remove <CODE>');
      return `removed ${line(await removeSite(sitesDir, args[0]))}\n`;
    }
    case 'list': {
      if (args.length !== 0) throw new SiteCommandError('usage: facet site list');
      const sites = await listSites(sitesDir);
      return sites.length === 0 ? `no sites in ${sitesDir}\n` : `${['CODE\tKEY ID\tNAME\tCONTACT', ...sites.map(line)].join('\n')}\n`;
    }
    default:
      throw new SiteCommandError('usage: facet site add <file.json> [--replace] | remove <CODE> | list');
  }
}

/** A registry problem list as the operator reads it: one line per problem, file and field first. */
export function describeRegistryProblems(error: SiteRegistryError): string {
  return error.problems.map((p) => `  ${p.file}${p.field ? ` (${p.field})` : ''}: ${p.code}: ${p.message}`).join('\n');
}
