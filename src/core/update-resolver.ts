/**
 * Which package a device should install next, as RDFM's update resolver decides it
 * (`antmicro/rdfm:server/src/update/resolver.py`, described in rdfm.md §6): packages form a graph over
 * versions, a `requires:<key>` condition of a package (a delta) must hold on the version it is
 * installed on, and the device gets the package on the first hop of the shortest path to its target.
 *
 * Ties are broken as RDFM's networkx calls break them: `shortest_path` with a weight runs a
 * bidirectional Dijkstra (alternating sides, a heap ordered by distance then insertion), and of the
 * edges joining the first two versions of the path the first inserted wins: the device's own edges
 * in package order, then package-to-package edges. Reproduced step by step below.
 *
 * One deliberate difference: RDFM also adds package-to-package edges between packages of another
 * device type (they create their own version nodes), through which a device could be handed a package
 * for other hardware. Only packages of the device's type make edges here.
 */

/** What a device says of itself, or what a package is: the facts `requires:` conditions test. */
export interface Facts {
  version: string;
  deviceType: string;
  /** Free string keys (a device's flags such as `rdfm.software.supports_xdelta`, a package's `requires:` conditions). */
  metadata?: Readonly<Record<string, string>>;
}

/** RDFM's names for the version and the device type, under which conditions may name them too. */
export const rdfmVersionKey = 'rdfm.software.version';
export const rdfmDeviceTypeKey = 'rdfm.hardware.devtype';
const requiresPrefix = 'requires:';

/** Every key a `requires:` condition may test: the metadata, the version and the device type under both names. */
export function factMap(facts: Facts): Map<string, string> {
  const map = new Map(Object.entries(facts.metadata ?? {}));
  map.set('version', facts.version);
  map.set(rdfmVersionKey, facts.version);
  map.set('deviceType', facts.deviceType);
  map.set(rdfmDeviceTypeKey, facts.deviceType);
  return map;
}

/**
 * Whether `update` may be installed on `base`: every `requires:K` of the update holds in base, the
 * version changes, and the device type is the same (RDFM's `requirements_satisfied`).
 */
export function installableOn(base: Map<string, string>, update: Map<string, string>): boolean {
  for (const [key, value] of update) {
    if (key.startsWith(requiresPrefix) && base.get(key.slice(requiresPrefix.length)) !== value) return false;
  }
  return base.get('version') !== update.get('version') && base.get('deviceType') === update.get('deviceType');
}

/** A directed multigraph over version strings; each edge is labelled with a package index. */
class VersionGraph {
  readonly nodes = new Set<string>();
  /** Adjacency in insertion order, as networkx keeps `_succ` and `_pred`: neighbour → package indexes. */
  readonly successors = new Map<string, Map<string, number[]>>();
  readonly predecessors = new Map<string, Map<string, number[]>>();

  addNode(version: string): void {
    if (this.nodes.has(version)) return;
    this.nodes.add(version);
    this.successors.set(version, new Map());
    this.predecessors.set(version, new Map());
  }

  addEdge(from: string, to: string, packageIndex: number): void {
    this.addNode(from);
    this.addNode(to);
    append(this.successors.get(from)!, to, packageIndex);
    append(this.predecessors.get(to)!, from, packageIndex);
  }
}

function append(adjacency: Map<string, number[]>, neighbour: string, packageIndex: number): void {
  const labels = adjacency.get(neighbour);
  if (labels) labels.push(packageIndex);
  else adjacency.set(neighbour, [packageIndex]);
}

/**
 * The index in `packages` of the package the device should install next towards `target`, or null
 * when there is none: no target (the policy says no update), no package of the device's type has the
 * target version, no path leads there, or the device runs the target already.
 */
export function resolveUpdate(device: Facts, packages: readonly Facts[], target: string | null): number | null {
  if (target === null) return null;
  const deviceFacts = factMap(device);
  const packageFacts = packages.map(factMap);
  const graph = new VersionGraph();
  graph.addNode(device.version);
  for (const pkg of packages) if (pkg.deviceType === device.deviceType) graph.addNode(pkg.version);
  if (!graph.nodes.has(target)) return null;
  // The device's own edges first, judged on what it says of itself: only these are sure to hold on it.
  packageFacts.forEach((update, index) => {
    if (installableOn(deviceFacts, update)) graph.addEdge(device.version, packages[index]!.version, index);
  });
  // Then package on package, judged on the packages' metadata.
  packages.forEach((base, baseIndex) => {
    if (base.deviceType !== device.deviceType) return;
    packageFacts.forEach((update, index) => {
      if (installableOn(packageFacts[baseIndex]!, update)) graph.addEdge(base.version, packages[index]!.version, index);
    });
  });
  const path = bidirectionalShortestPath(graph, device.version, target);
  if (path === null || path.length < 2) return null;
  return graph.successors.get(path[0]!)!.get(path[1]!)![0]!;
}

/** A binary min-heap of [distance, insertion count, node], compared as Python compares the tuples. */
class Fringe {
  readonly #items: Array<[number, number, string]> = [];

  get size(): number {
    return this.#items.length;
  }

  push(item: [number, number, string]): void {
    const items = this.#items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): [number, number, string] {
    const items = this.#items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < items.length && before(items[left]!, items[smallest]!)) smallest = left;
        if (right < items.length && before(items[right]!, items[smallest]!)) smallest = right;
        if (smallest === i) break;
        [items[i], items[smallest]] = [items[smallest]!, items[i]!];
        i = smallest;
      }
    }
    return top;
  }
}

const before = (a: [number, number, string], b: [number, number, string]) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

/**
 * networkx's `bidirectional_dijkstra` with every edge of cost 1: the same alternation, the same heap
 * order and the same choice of meeting node, so that among paths of equal length the same one is
 * found. Null when the target cannot be reached.
 */
function bidirectionalShortestPath(graph: VersionGraph, source: string, target: string): string[] | null {
  if (source === target) return [source];
  const neighbours = [graph.successors, graph.predecessors];
  const dists: Array<Map<string, number>> = [new Map(), new Map()];
  const preds: Array<Map<string, string | null>> = [new Map([[source, null]]), new Map([[target, null]])];
  const seen: Array<Map<string, number>> = [new Map([[source, 0]]), new Map([[target, 0]])];
  const fringe = [new Fringe(), new Fringe()];
  let counter = 0;
  fringe[0]!.push([0, counter++, source]);
  fringe[1]!.push([0, counter++, target]);
  let finalDist: number | null = null;
  let meetNode: string | null = null;
  let direction = 1;
  const walk = (from: string | null, side: number) => {
    const nodes: string[] = [];
    for (let node = from; node !== null; node = preds[side]!.get(node)!) nodes.push(node);
    return side === 0 ? nodes.reverse() : nodes;
  };
  while (fringe[0]!.size > 0 && fringe[1]!.size > 0) {
    direction = 1 - direction;
    const [dist, , v] = fringe[direction]!.pop();
    if (dists[direction]!.has(v)) continue;
    dists[direction]!.set(v, dist);
    if (dists[1 - direction]!.has(v)) return [...walk(meetNode, 0), ...walk(preds[1]!.get(meetNode!)!, 1)];
    for (const w of neighbours[direction]!.get(v)!.keys()) {
      const length = dist + 1;
      if (dists[direction]!.has(w)) continue;
      const known = seen[direction]!.get(w);
      if (known !== undefined && length >= known) continue;
      seen[direction]!.set(w, length);
      fringe[direction]!.push([length, counter++, w]);
      preds[direction]!.set(w, v);
      const other = seen[1 - direction]!.get(w);
      if (other !== undefined && (finalDist === null || finalDist > length + other)) {
        finalDist = length + other;
        meetNode = w;
      }
    }
  }
  return null;
}
