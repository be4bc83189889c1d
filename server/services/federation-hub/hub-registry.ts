import { stat } from 'node:fs/promises';
import type { Db } from '../../db/transaction';
import { ErrorCode } from '../../domain';
import { AppError } from '../../errors/app-error';
import type { NodeIdentity } from '../../federation/identity';
import { MAX_AGGREGATE_BYTES } from '../../federation/release-policy';
import { ReplayGuard } from '../../federation/replay-guard';
import { loadSiteRegistry, type SiteRegistry } from '../../federation/site-registry';
import { PostgresNonceStore } from './postgres-nonce-store';

/** The hub's own name as a signer (TASK, RECEIPT and ANSWER envelopes); nodes pin its key (FACET_HUB_SIGNING_KEY). */
export const HUB_SIGNER = 'hub';
/** The audience of envelopes sent to the hub. */
export const HUB_AUDIENCE = 'hub';
/** The audience of an exported answer: anyone may check it (`facet verify`). */
export const ANSWER_AUDIENCE = 'public';

/** What makes a deployment a hub: its registry folder, its signing identity, and its timing. */
export interface HubOptions {
  sitesDir: string;
  identity: NodeIdentity;
  /** The registry as validated at start (the folder is re-read whenever it changes). */
  registry: SiteRegistry;
  /** How long a claim holds a task before it is offered again (docs/federation.md 3.1: 10 min). */
  leaseSeconds?: number;
  /** How long each attempt of a secure round waits for its masked vectors, then for its seeds (FACET_SECURE_ROUND_SECONDS). */
  secureRoundSeconds?: number;
  /** Told when the folder changed into an invalid registry (the last valid one stays in force): the operator's log. */
  onRegistryProblem?: (error: unknown) => void;
}

/**
 * The registry as the running hub sees it: re-read when the folder changes (`facet site add|remove` on a running
 * hub takes effect at the next message, so a removed site's key is refused at once); a folder that became invalid
 * keeps the last valid registry in force, since refusing every member over one bad file would stop the federation.
 */
export class LiveRegistry {
  private loadedAt: number;

  constructor(
    private readonly dir: string,
    private registry: SiteRegistry,
    private readonly onProblem: (error: unknown) => void = () => undefined,
  ) {
    this.loadedAt = 0;
  }

  async current(): Promise<SiteRegistry> {
    let changed: number;
    try {
      const info = await stat(this.dir);
      changed = Math.max(info.mtimeMs, info.ctimeMs);
    } catch (error) {
      this.onProblem(error);
      return this.registry;
    }
    if (changed !== this.loadedAt) {
      // Read once per change of the folder, valid or not: a broken file is reported once, not at every message.
      this.loadedAt = changed;
      try {
        this.registry = await loadSiteRegistry(this.dir);
      } catch (error) {
        this.onProblem(error);
      }
    }
    return this.registry;
  }
}

/**
 * Nodes post without a bearer token (the signature authenticates them), and a result carries up to
 * MAX_AGGREGATE_BYTES of aggregate, about twice that as escaped JSON inside a GraphQL request: a hub reads
 * anonymous bodies up to this size (a plain node keeps its few KB).
 */
export const HUB_ANONYMOUS_BODY_BYTES = 2 * MAX_AGGREGATE_BYTES + 64 * 1024;

/** Ten minutes: long enough for a node to compute a study's aggregates, short enough that a dead node's task is offered again soon. */
export const DEFAULT_LEASE_SECONDS = 600;
/** Two minutes per attempt of a secure round: nodes answer its requests from their claim loop within seconds. */
export const DEFAULT_SECURE_ROUND_SECONDS = 120;
/** Nonces are pruned at most once a minute, by whichever request comes first. */
const NONCE_PRUNE_MS = 60_000;

/** A running hub's shared state: its identity, its live registry, its replay guard and its lease. */
export class Hub {
  readonly identity: NodeIdentity;
  readonly replay: ReplayGuard;
  readonly leaseMs: number;
  readonly secureRoundMs: number;
  private readonly live: LiveRegistry;
  private nextPrune = 0;

  constructor(
    db: Db,
    options: HubOptions,
    readonly clock: () => Date = () => new Date(),
  ) {
    this.identity = options.identity;
    this.live = new LiveRegistry(options.sitesDir, options.registry, options.onRegistryProblem);
    this.replay = new ReplayGuard(new PostgresNonceStore(db), { clock });
    this.leaseMs = (options.leaseSeconds ?? DEFAULT_LEASE_SECONDS) * 1000;
    this.secureRoundMs = (options.secureRoundSeconds ?? DEFAULT_SECURE_ROUND_SECONDS) * 1000;
  }

  registry(): Promise<SiteRegistry> {
    return this.live.current();
  }

  /** Drops nonces the replay window refuses anyway, at most once a minute. */
  async pruneNonces(): Promise<void> {
    const now = this.clock().getTime();
    if (now < this.nextPrune) return;
    this.nextPrune = now + NONCE_PRUNE_MS;
    await this.replay.forgetExpired();
  }
}

/** The hub, or NOT_A_HUB on a deployment that is not one. */
export function requireHub(hub: Hub | null): Hub {
  if (!hub) throw new AppError(ErrorCode.NOT_A_HUB, 'This deployment is not a federation hub (start it with `facet serve --hub`)');
  return hub;
}
