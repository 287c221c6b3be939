import { sql } from 'kysely';
import { FleetError } from '../../core/errors.ts';
import type { Db } from '../../store/store.ts';

/** What RDFM numbers: each kind counts from 1 on its own, as RDFM's tables do. */
export type RdfmKind = 'device' | 'package' | 'group' | 'log';

/** Attempts at taking the next free number when other nodes take numbers at the same time. */
const attempts = 20;
/** Pairs a node remembers; past this it starts over (they are read again as needed). */
const maxRemembered = 100_000;

/**
 * RDFM's integer ids for fleetd's text ids (table rdfm_ids). An object gets its number the first
 * time an RDFM client sees it, the next one of its kind; two nodes numbering at once both try
 * `max + 1`, one wins and the other tries again, so that numbers stay small and consecutive.
 */
export class RdfmIds {
  /**
   * Pairs already read, by `kind\0id`: a pair never changes once numbered, so every node may keep
   * it, and a device polling for updates costs no query for its package's number.
   */
  readonly #known = new Map<string, number>();

  constructor(private readonly db: Db) {}

  /** The numbers of `ids` (numbering those that have none yet), by id. */
  async numbers(kind: RdfmKind, ids: readonly string[]): Promise<Map<string, number>> {
    const numbers = new Map<string, number>();
    for (const id of ids) {
      const known = this.#known.get(`${kind}\0${id}`);
      if (known !== undefined) numbers.set(id, known);
    }
    const unknown = [...new Set(ids)].filter((id) => !numbers.has(id));
    for (let start = 0; start < unknown.length; start += 500) {
      const slice = unknown.slice(start, start + 500);
      const rows = await this.db.selectFrom('rdfm_ids').select(['fleetd_id', 'number']).where('kind', '=', kind).where('fleetd_id', 'in', slice).execute();
      for (const row of rows) numbers.set(row.fleetd_id, Number(row.number));
    }
    for (const id of unknown) if (!numbers.has(id)) numbers.set(id, await this.#assign(kind, id));
    for (const id of unknown) this.#remember(kind, id, numbers.get(id)!);
    return numbers;
  }

  async number(kind: RdfmKind, id: string): Promise<number> {
    return (await this.numbers(kind, [id])).get(id)!;
  }

  /** The fleetd id an RDFM number names, if any (whether the object still exists is the caller's question). */
  async fleetdId(kind: RdfmKind, number: number): Promise<string | undefined> {
    if (!Number.isSafeInteger(number) || number < 1 || number > 2 ** 31 - 1) return undefined;
    const row = await this.db.selectFrom('rdfm_ids').select('fleetd_id').where('kind', '=', kind).where('number', '=', number).executeTakeFirst();
    return row?.fleetd_id;
  }

  async #assign(kind: RdfmKind, id: string): Promise<number> {
    for (let attempt = 0; attempt < attempts; attempt++) {
      await this.db
        .insertInto('rdfm_ids')
        .columns(['kind', 'number', 'fleetd_id'])
        .expression((eb) =>
          eb
            .selectFrom('rdfm_ids')
            .select([sql.val(kind).as('kind'), sql<number>`coalesce(max(number), 0) + 1`.as('number'), sql.val(id).as('fleetd_id')])
            .where('kind', '=', kind),
        )
        .onConflict((oc) => oc.doNothing())
        .execute();
      const row = await this.db.selectFrom('rdfm_ids').select('number').where('kind', '=', kind).where('fleetd_id', '=', id).executeTakeFirst();
      if (row) return Number(row.number);
    }
    throw new FleetError('unavailable', `Could not number ${kind} ${id} for RDFM: too many taken at once, try again`);
  }

  #remember(kind: RdfmKind, id: string, number: number): void {
    if (this.#known.size >= maxRemembered) this.#known.clear();
    this.#known.set(`${kind}\0${id}`, number);
  }
}
