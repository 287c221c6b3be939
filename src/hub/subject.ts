import { badRequest } from '../core/errors.ts';

/** Longest subject or pattern accepted, in bytes: far above what fleetd builds, far below what strains NATS. */
export const maxSubjectBytes = 256;

// NATS splits its protocol lines on whitespace, so a space would silently cut a subject in two.
const forbiddenCharacter = /[\s\u0000-\u001f\u007f]/u;

function tokensOf(text: string, what: string): string[] {
  if (typeof text !== 'string' || text === '') throw badRequest(`A bus ${what} must be a non-empty text`);
  if (Buffer.byteLength(text) > maxSubjectBytes) throw badRequest(`The bus ${what} ${JSON.stringify(text.slice(0, 40))}... is longer than ${maxSubjectBytes} bytes`);
  if (forbiddenCharacter.test(text)) throw badRequest(`The bus ${what} ${JSON.stringify(text)} contains whitespace or a control character`);
  const tokens = text.split('.');
  if (tokens.includes('')) throw badRequest(`The bus ${what} ${JSON.stringify(text)} has an empty token: tokens are separated by single dots`);
  return tokens;
}

/** The tokens of a subject to publish on: no wildcards. */
export function subjectTokens(subject: string): string[] {
  const tokens = tokensOf(subject, 'subject');
  if (tokens.some((t) => t.includes('*') || t.includes('>'))) {
    throw badRequest(`The bus subject ${JSON.stringify(subject)} contains a wildcard (* or >): only subscriptions may use them`);
  }
  return tokens;
}

/** The tokens of a subscription pattern: `*` as a whole token anywhere, `>` as the whole last token. */
export function patternTokens(pattern: string): string[] {
  const tokens = tokensOf(pattern, 'pattern');
  tokens.forEach((token, index) => {
    const wildcard = token === '*' || (token === '>' && index === tokens.length - 1);
    // NATS reads `a*` as a literal token; refusing it keeps a typo from silently matching nothing.
    if (!wildcard && (token.includes('*') || token.includes('>'))) {
      throw badRequest(`The bus pattern ${JSON.stringify(pattern)} misuses a wildcard: * must be a whole token, > the whole last token`);
    }
  });
  return tokens;
}

/** Checks a queue group name: one token-like text, as NATS accepts it. */
export function checkQueueName(queue: string): void {
  if (typeof queue !== 'string' || queue === '') throw badRequest('A bus queue group name must be a non-empty text');
  if (Buffer.byteLength(queue) > maxSubjectBytes) throw badRequest(`The bus queue group name is longer than ${maxSubjectBytes} bytes`);
  if (forbiddenCharacter.test(queue)) throw badRequest(`The bus queue group name ${JSON.stringify(queue)} contains whitespace or a control character`);
}

/** Whether a subject (validated tokens) matches a pattern (validated tokens), with NATS semantics. */
export function subjectMatches(pattern: readonly string[], subject: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === '>') return subject.length > i;
    if (i >= subject.length) return false;
    if (pattern[i] !== '*' && pattern[i] !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}
