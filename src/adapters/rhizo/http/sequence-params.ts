import { badRequest } from '../../../core/errors.ts';
import type { SequenceDataType, SequenceSettings } from '../../../services/series/settings.ts';
import { dataTypeOf } from './dicts.ts';
import type { Params } from './forms.ts';

/**
 * A sequence's settings as rhizo's requests give them: in the `system_attributes` JSON, or as
 * top-level parameters (which win, and which older clients send alone).
 */

const settingNames = ['data_type', 'decimal_places', 'units', 'max_history', 'min_storage_interval'] as const;

/** rhizo's defaults for sequences it creates: numeric and image values at most every 50 s. */
export const rhizoMinStorageInterval = (dataType: SequenceDataType) => (dataType === 'text' ? 0 : 50);

function numberOf(value: unknown, name: string, integer: boolean, min: number, max: number): number {
  const number = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!Number.isFinite(number) || (integer && !Number.isInteger(number)) || number < min || number > max) {
    throw badRequest(`${name} must be a ${integer ? 'whole ' : ''}number from ${min} to ${max}`);
  }
  return number;
}

/** Whether the request changes any sequence setting. */
export const changesSettings = (params: Params) => params.has('system_attributes') || settingNames.some((name) => params.has(name));

/** The settings given; on create, the data type is required and rhizo's storage interval default applies. */
export function sequenceSettingsOf(params: Params, creating: true): SequenceSettings;
export function sequenceSettingsOf(params: Params, creating: false): Partial<SequenceSettings>;
export function sequenceSettingsOf(params: Params, creating: boolean): Partial<SequenceSettings> {
  const attributes = params.json('system_attributes') ?? {};
  const given = (name: (typeof settingNames)[number]): unknown => {
    const top = params.string(name);
    return top !== undefined && top !== '' ? top : attributes[name];
  };
  const settings: Partial<SequenceSettings> = {};
  const dataType = given('data_type');
  if (dataType !== undefined && dataType !== null) settings.dataType = dataTypeOf(dataType);
  else if (creating) throw badRequest('A sequence needs data_type (in system_attributes or as a parameter)');
  const units = given('units');
  if (units !== undefined) {
    if (units !== null && (typeof units !== 'string' || units.length > 100)) throw badRequest('units is text of at most 100 characters');
    settings.units = units;
  }
  const decimals = given('decimal_places');
  if (decimals !== undefined) settings.decimalPlaces = decimals === null ? null : numberOf(decimals, 'decimal_places', true, 0, 15);
  const history = given('max_history');
  if (history !== undefined) settings.maxHistory = history === null ? null : numberOf(history, 'max_history', true, 1, Number.MAX_SAFE_INTEGER);
  const interval = given('min_storage_interval');
  if (interval !== undefined && interval !== null) settings.minStorageInterval = numberOf(interval, 'min_storage_interval', false, 0, 10 * 365 * 86_400);
  else if (creating) settings.minStorageInterval = rhizoMinStorageInterval(settings.dataType!);
  return settings;
}
