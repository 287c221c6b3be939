import { badRequest } from './errors.ts';

/** Strict base64 (standard or URL alphabet, padding optional): Node would silently skip bad characters. */
export function decodeBase64(text: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(compact) || compact.replace(/=+$/, '').length % 4 === 1) throw badRequest('The data is not valid base64');
  return Buffer.from(compact, compact.includes('-') || compact.includes('_') ? 'base64url' : 'base64');
}
