import { allPages as everyPage, type Page, type PageRequest } from '../../../store/page.ts';

/** RDFM's lists are whole, not paginated: fleetd answers with at most this many items. */
export const maxListed = 10_000;

/** Every page of one of fleetd's lists, up to maxListed items. */
export const allPages = <T>(list: (page: PageRequest) => Promise<Page<T>>): Promise<T[]> => everyPage(list, maxListed);
