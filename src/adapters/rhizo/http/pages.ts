import type { Page, PageRequest } from '../../../store/page.ts';
import { maxPageSize } from '../../../store/page.ts';

/** rhizo answers lists whole, where fleetd's services page: this walks every page. */
export async function allPages<T>(fetch: (page: PageRequest) => Promise<Page<T>>): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await fetch({ limit: maxPageSize, cursor });
    items.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return items;
}
