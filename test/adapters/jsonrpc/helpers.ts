/** What a reply text says, as JSON; `undefined` when nothing is sent back. */
export const decoded = (text: string | undefined): unknown => (text === undefined ? undefined : JSON.parse(text));
