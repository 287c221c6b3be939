import { badRequest } from './errors.ts';

/**
 * rrduino's `update` template (`"N:{temperature}:{humidity}"`): Python `str.format` filled with the
 * key/value pairs of an update line, giving `rrdtool update`'s one argument, whose readings go to the
 * data sources in the order they were created. fleetd keeps one sequence per data source, so a
 * template becomes, per data source, the line key it reads (or a constant the template writes).
 */

/** What one data source gets from an update line. */
export type UpdateField = { source: string; key: string } | { source: string; constant: string };

/** Keys of update lines a template may name: what Arduino sketches use, nothing to escape in logs. */
export const updateKeyPattern = /^[A-Za-z0-9_.-]{1,64}$/;
const fieldPattern = /^\{([^{}]*)\}$/;
/** rrdtool's readings: a number, or U for unknown. */
const constantPattern = /^(U|[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$/;

/**
 * Reads a template against the profile's data sources. fleetd stores each value when it arrives,
 * so the time must be `N`; each reading is one `{key}` or a constant. Format specs (`{t:.1f}`) and
 * readings glued from several fields are refused, rather than guessed at.
 */
export function parseUpdateTemplate(template: string, sources: readonly string[]): UpdateField[] {
  const [time, ...readings] = template.split(':');
  if (time !== 'N') throw badRequest(`The update template ${JSON.stringify(template)} must start with N: (the time a value arrives)`);
  if (readings.length !== sources.length) {
    throw badRequest(`The update template has ${readings.length} readings for ${sources.length} data sources (${sources.join(', ') || 'none'})`);
  }
  return readings.map((reading, i) => {
    const source = sources[i]!;
    const field = fieldPattern.exec(reading);
    if (field) {
      if (!updateKeyPattern.test(field[1]!)) throw badRequest(`The update template field ${JSON.stringify(reading)} must name a key of letters, digits, _ . or -`);
      return { source, key: field[1]! };
    }
    if (!constantPattern.test(reading)) throw badRequest(`The update template reading ${JSON.stringify(reading)} is neither {key} nor a number nor U`);
    return { source, constant: reading };
  });
}
