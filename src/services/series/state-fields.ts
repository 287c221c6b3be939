/**
 * Which fields of a device's reported state become sequences of its folder. A field path is
 * `component:id.field.subfield` as Shelly reports it (`switch:0.aenergy.total`); `*` as the id
 * matches any id, and a `*` in the sequence name stands for the id matched.
 */
export interface StateField {
  path: string;
  name: string;
  units: string | null;
}

const meter = (component: string): Array<[string, string, string]> => [
  [`${component}:*.apower`, `${component}_*_apower`, 'W'],
  [`${component}:*.voltage`, `${component}_*_voltage`, 'V'],
  [`${component}:*.current`, `${component}_*_current`, 'A'],
  [`${component}:*.aenergy.total`, `${component}_*_energy`, 'Wh'],
];

/** The Shelly Gen2+ fields worth a history: power, energy, voltage, current, temperature, humidity, illumination, battery. */
const shellyDefaults: Array<[string, string, string]> = [
  ...meter('switch'),
  ...meter('pm1'),
  ...meter('cover'),
  ...meter('light'),
  ['switch:*.temperature.tC', 'switch_*_temperature', 'degrees C'],
  ['em:*.total_act_power', 'em_*_power', 'W'],
  ['emdata:*.total_act', 'em_*_energy', 'Wh'],
  ['em1:*.act_power', 'em1_*_power', 'W'],
  ['em1:*.voltage', 'em1_*_voltage', 'V'],
  ['em1:*.current', 'em1_*_current', 'A'],
  ['em1data:*.total_act_energy', 'em1_*_energy', 'Wh'],
  ['temperature:*.tC', 'temperature_*', 'degrees C'],
  ['humidity:*.rh', 'humidity_*', 'percent'],
  ['illuminance:*.lux', 'illuminance_*', 'lux'],
  ['devicepower:*.battery.percent', 'battery_*', 'percent'],
];

/** The defaults, with the configured mapping (`stateSequences`) added over them. */
export function stateFields(configured: Record<string, string>): StateField[] {
  const fields = new Map<string, StateField>(shellyDefaults.map(([path, name, units]) => [path, { path, name, units }]));
  for (const [path, name] of Object.entries(configured)) fields.set(path, { path, name, units: fields.get(path)?.units ?? null });
  return [...fields.values()];
}

interface CompiledField extends StateField {
  component: string;
  anyId: boolean;
  keys: string[];
}

export type StateMatcher = (changed: Record<string, unknown>) => Array<{ name: string; units: string | null; value: number }>;

/** A function finding, in a device.status change, the numbers the fields name. */
export function stateMatcher(fields: StateField[]): StateMatcher {
  const compiled: CompiledField[] = fields.map((field) => {
    const [component = '', ...keys] = field.path.split('.');
    const anyId = component.endsWith(':*');
    return { ...field, component: anyId ? component.slice(0, -1) : component, anyId, keys };
  });
  return (changed) => {
    const found: Array<{ name: string; units: string | null; value: number }> = [];
    for (const [key, part] of Object.entries(changed)) {
      for (const field of compiled) {
        if (field.anyId ? !key.startsWith(field.component) : key !== field.component) continue;
        let value: unknown = part;
        for (const k of field.keys) value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[k] : undefined;
        if (typeof value !== 'number' || !Number.isFinite(value)) continue;
        const id = field.anyId ? key.slice(field.component.length) : '';
        found.push({ name: field.name.replaceAll('*', id), units: field.units, value });
      }
    }
    return found;
  };
}
