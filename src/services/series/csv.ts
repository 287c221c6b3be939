/** A CSV field as RFC 4180 wants it: quoted when it holds a separator, a quote or a line break. */
function field(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/**
 * Time series as CSV: a `time,value` header, then one line per point with the ISO time; an unknown
 * point has an empty value, an image its base64.
 */
export function seriesCsv(points: Iterable<{ t: number; value: number | string | Buffer | null }>): string {
  let out = 'time,value\r\n';
  for (const { t, value } of points) {
    const text = value === null ? '' : Buffer.isBuffer(value) ? value.toString('base64') : String(value);
    out += `${new Date(t).toISOString()},${field(text)}\r\n`;
  }
  return out;
}
