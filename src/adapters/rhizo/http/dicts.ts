import { resourceTypeCodes, type ResourceType } from '../../../core/resource-paths.ts';
import type { ResourceInfo } from '../../../services/resources/resource-info.ts';
import type { SequenceDataType, SequenceInfo } from '../../../services/series/settings.ts';
import { badRequest } from '../../../core/errors.ts';
import { rhizoTimestampOf } from './forms.ts';

/** rhizo's `Resource.as_dict()`: the short form, and the extended one its clients ask for with `meta`/`extended`. */

/** rhizo's sequence data types are numbers on the wire (its clients also say numeric/text/image). */
export const dataTypeCodes: Record<SequenceDataType, number> = { numeric: 1, text: 2, image: 3 };

export function dataTypeOf(value: unknown): SequenceDataType {
  const text = String(value).trim().toLowerCase();
  for (const [name, code] of Object.entries(dataTypeCodes) as Array<[SequenceDataType, number]>) {
    if (text === name || text === String(code)) return name;
  }
  throw badRequest('data_type must be 1 (numeric), 2 (text) or 3 (image)');
}

/** A type name (`file`, `sequence`, ...) as rhizo's listing filter takes it, or its number. */
export function resourceTypeNamed(value: string): ResourceType {
  const type = (Object.keys(resourceTypeCodes) as ResourceType[]).find((name) => name === value || String(resourceTypeCodes[name]) === value);
  if (type === undefined) throw badRequest(`Unknown resource type ${JSON.stringify(value.slice(0, 40))}`);
  return type;
}

/** What a controller folder says of its connection, as rhizo's ControllerStatus did (kept in its system attributes here). */
function controllerStatus(attributes: Record<string, unknown>) {
  const time = (value: unknown) => (typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? rhizoTimestampOf(value) : null);
  return {
    client_version: typeof attributes.client_version === 'string' ? attributes.client_version : '',
    last_connect_timestamp: time(attributes.last_connect_timestamp),
    last_watchdog_timestamp: time(attributes.last_watchdog_timestamp),
    watchdog_notification_sent: attributes.watchdog_notification_sent === true,
    attributes: attributes.attributes ?? {},
  };
}

/** A sequence's settings as rhizo's system attributes name them. */
export function sequenceAttributes(sequence: SequenceInfo): Record<string, unknown> {
  return {
    data_type: dataTypeCodes[sequence.dataType],
    max_history: sequence.maxHistory,
    min_storage_interval: sequence.minStorageInterval,
    ...(sequence.units !== null && { units: sequence.units }),
    ...(sequence.decimalPlaces !== null && { decimal_places: sequence.decimalPlaces }),
  };
}

export interface DictExtras {
  /** Settings of a sequence, merged into its system attributes. */
  sequence?: SequenceInfo;
  /** Size and hash of a file's current revision. */
  file?: { size: number; hash: string };
  /** Controller status fields (rhizo adds them to extended listings). */
  withControllerStatus?: boolean;
}

export function resourceDict(r: ResourceInfo, extended: boolean, extras: DictExtras = {}): Record<string, unknown> {
  const short = { id: r.id, name: r.name, type: resourceTypeCodes[r.type] };
  if (!extended) return short;
  const systemAttributes = { ...r.systemAttributes, ...(extras.sequence && sequenceAttributes(extras.sequence)), ...extras.file };
  const created = rhizoTimestampOf(r.createdAt);
  const modified = rhizoTimestampOf(r.modifiedAt);
  return {
    ...short,
    parent_id: r.parentId,
    creation_timestamp: created,
    creationTimestamp: created,
    modification_timestamp: modified,
    modificationTimestamp: modified,
    permissions: r.permissions ?? [],
    system_attributes: systemAttributes,
    settings: systemAttributes,
    user_attributes: r.userAttributes,
    last_revision_id: r.lastRevisionId,
    lastRevisionId: r.lastRevisionId,
    ...extras.file,
    ...(extras.withControllerStatus && r.type === 'controller_folder' && controllerStatus(r.systemAttributes)),
  };
}
