/** What a reply text says, as JSON; `undefined` when nothing is sent back. */
import { Type } from 'typebox';

/** The specification's `subtract`, by name or by position, as both the conformance and hostile tests call it. */
export const subtractMethod = {
  name: 'subtract',
  params: Type.Object({ minuend: Type.Number(), subtrahend: Type.Number() }, { additionalProperties: false }),
  positional: true,
  access: 'public',
  handler: ({ minuend, subtrahend }: { minuend: number; subtrahend: number }) => minuend - subtrahend,
} as const;

export const decoded = (text: string | undefined): unknown => (text === undefined ? undefined : JSON.parse(text));
