import type { Principal } from '../../core/access.ts';
import { FleetError } from '../../core/errors.ts';
import type { Store } from '../../store/store.ts';
import { NodeCache } from '../node-cache.ts';
import type { ResourceInfo, ResourceTree } from '../resources/tree.ts';

type Need = 'read' | 'write';

/** Enough for every sequence of a busy node's writers; the oldest go first beyond it. */
const maxEntries = 200_000;

/**
 * The sequences writers name by full path, as the resource tree resolved them for a principal, kept
 * so that a device sending the same paths request after request costs no query per request.
 *
 * An answer holds for the principal object it was made for (the authenticator hands out one per
 * credential while it caches it, and a new one once that cache is cleared), and only while nothing
 * is committed: any commit through the store on this node (a rename, a move, a deletion, changed
 * permissions) forgets everything at once. Changes committed on another node apply here within
 * `ttlMs`, as for every identity cache of a node (NodeCache). Only sequences found are kept: a path
 * that failed is asked again next time.
 */
export class SequencePaths {
  readonly #resources: Pick<ResourceTree, 'resolveMany'>;
  readonly #cache: NodeCache<ResourceInfo>;
  readonly #principalKeys = new WeakMap<Principal, number>();
  #nextPrincipalKey = 0;

  constructor(options: { store: Pick<Store, 'onCommit'>; resources: Pick<ResourceTree, 'resolveMany'>; ttlMs: number }) {
    this.#resources = options.resources;
    this.#cache = new NodeCache<ResourceInfo>(options.ttlMs, maxEntries);
    options.store.onCommit(() => this.#cache.invalidate());
  }

  /** As ResourceTree.resolveMany: each path's resource, or the error that path alone gets. */
  async resolveMany(p: Principal, fullPaths: readonly string[], need: Need): Promise<Array<ResourceInfo | FleetError>> {
    const generation = this.#cache.generation;
    const prefix = `${this.#principalKey(p)} ${need} `;
    const now = Date.now();
    const results: Array<ResourceInfo | FleetError | undefined> = fullPaths.map((path) => this.#cache.recall(prefix + path, now));
    const unknown: number[] = [];
    results.forEach((result, i) => result === undefined && unknown.push(i));
    if (unknown.length > 0) {
      const found = await this.#resources.resolveMany(p, unknown.map((i) => fullPaths[i]!), need);
      found.forEach((result, k) => {
        const i = unknown[k]!;
        results[i] = result;
        if (!(result instanceof FleetError) && result.type === 'sequence') this.#cache.remember(prefix + fullPaths[i]!, result, generation);
      });
    }
    return results as Array<ResourceInfo | FleetError>;
  }

  /** A number standing for one principal object, as long as it lives. */
  #principalKey(p: Principal): number {
    let key = this.#principalKeys.get(p);
    if (key === undefined) this.#principalKeys.set(p, (key = this.#nextPrincipalKey++));
    return key;
  }
}
