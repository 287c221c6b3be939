import { badRequest } from '../../../core/errors.ts';
import { Tags } from '../../../http/routes/devices.ts';

// fleetd's rules for tags are those of its REST API's schema, whichever API a tag comes through
// (typebox's types do not declare the keywords the schema carries).
const rules = Tags as unknown as { maxItems: number; items: { pattern: string } };
const tagShape = new RegExp(rules.items.pattern);

/** Most tags a device carries. */
export const maxTags = rules.maxItems;

export const isTag = (text: string): boolean => tagShape.test(text);

/** Refuses (400) text that is no fleetd tag. */
export function checkTag(text: string): string {
  if (!isTag(text)) throw badRequest('A tag is 1 to 64 letters, digits or _ . : -');
  return text;
}
