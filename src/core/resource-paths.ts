import { badRequest } from './errors.ts';

/**
 * Names and paths of an organization's resource tree. A full path names the organization first,
 * as rhizo does: `/<orgSlug>/a/b`. What the store keeps is the path below the organization
 * (`/a/b`, and '' for its root folder), so that renaming an organization moves no row.
 */

/** The kinds of resource, as rhizo names them; rhizo's numbers are what the store keeps. */
export const resourceTypeCodes = {
  basic_folder: 10,
  organization_folder: 11,
  controller_folder: 12,
  remote_folder: 13,
  file: 20,
  sequence: 21,
  app: 22,
} as const;

export type ResourceType = keyof typeof resourceTypeCodes;

export const resourceTypes = Object.keys(resourceTypeCodes) as ResourceType[];

const typeByCode = new Map<number, ResourceType>(resourceTypes.map((type) => [resourceTypeCodes[type], type]));

export function resourceTypeOf(code: number): ResourceType {
  const type = typeByCode.get(code);
  if (type === undefined) throw badRequest(`Unknown resource type ${code}`);
  return type;
}

/** Folders (rhizo's types 10-19) are what may hold other resources. */
export const isFolderType = (type: ResourceType): boolean => resourceTypeCodes[type] < 20;

export const maxNameLength = 100;

// Control characters (C0, DEL, C1) would make paths unreadable in logs and ambiguous on the wire.
const forbiddenInName = /[/\\\u0000-\u001f\u007f-\u009f]/;

/** Why `name` cannot name a resource, or undefined when it can. */
function nameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > maxNameLength) return `must be 1 to ${maxNameLength} characters`;
  if (name === '.' || name === '..') return 'may not be . or ..';
  if (forbiddenInName.test(name)) return 'may not contain /, \\ or control characters';
  return undefined;
}

export const isValidName = (name: string): boolean => nameProblem(name) === undefined;

/** `text` with each character a name may not have replaced by `_`, for names made from other names. */
export const withoutForbidden = (text: string): string => text.replace(new RegExp(forbiddenInName.source, 'g'), '_');

export function checkName(name: string): string {
  const problem = nameProblem(name);
  if (problem !== undefined) throw badRequest(`Resource name ${JSON.stringify(name)} ${problem}`);
  return name;
}

/** A full path taken apart: the organization's slug and the path below it ('' for its root). */
export interface ParsedPath {
  orgSlug: string;
  relativePath: string;
  names: string[];
}

/** Parses `/<orgSlug>/a/b`; one trailing slash is tolerated, as clients add it to folders. */
export function parseFullPath(fullPath: string): ParsedPath {
  const trimmed = fullPath.length > 1 && fullPath.endsWith('/') ? fullPath.slice(0, -1) : fullPath;
  if (!trimmed.startsWith('/')) throw badRequest(`Resource path ${JSON.stringify(fullPath)} must start with /`);
  const [orgSlug = '', ...names] = trimmed.slice(1).split('/');
  if (orgSlug === '') throw badRequest(`Resource path ${JSON.stringify(fullPath)} names no organization`);
  for (const name of names) checkName(name);
  return { orgSlug, relativePath: relativePathOf(names), names };
}

const relativePathOf = (names: readonly string[]): string => names.map((name) => `/${name}`).join('');

export const childPath = (parentRelativePath: string, name: string): string => `${parentRelativePath}/${name}`;

export const fullPathOf = (orgSlug: string, relativePath: string): string => `/${orgSlug}${relativePath}`;

/** The relative paths of a resource's ancestors and itself, root ('') first. */
export function pathChain(relativePath: string): string[] {
  const names = relativePath === '' ? [] : relativePath.slice(1).split('/');
  return names.reduce((chain, name) => [...chain, childPath(chain[chain.length - 1]!, name)], ['']);
}

/** Whether `path` is `ancestor` or lies below it. */
export const isWithin = (path: string, ancestor: string): boolean => path === ancestor || path.startsWith(`${ancestor}/`);
