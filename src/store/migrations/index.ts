import type { Migration } from 'kysely';
import * as identity from './0001_identity.ts';
import * as devices from './0002_devices.ts';
import * as deviceRegistry from './0003_device_registry.ts';
import * as hub from './0004_hub.ts';
import * as data from './0005_data.ts';
import * as ota from './0006_ota.ts';
import * as seriesSpeed from './0007_series_speed.ts';
import * as rdfmIds from './0008_rdfm_ids.ts';
import * as sequenceRevisions from './0009_sequence_revisions.ts';
import * as valuesWithoutForeignKeys from './0010_values_without_foreign_keys.ts';
import * as filePullParts from './0011_file_pull_parts.ts';
import * as clusteredSeriesTables from './0012_clustered_series_tables.ts';

/** Every migration, in order. A name, once released, never changes: databases record it. */
export const migrations: Record<string, Migration> = {
  '0001_identity': identity,
  '0002_devices': devices,
  '0003_device_registry': deviceRegistry,
  '0004_hub': hub,
  '0005_data': data,
  '0006_ota': ota,
  '0007_series_speed': seriesSpeed,
  '0008_rdfm_ids': rdfmIds,
  '0009_sequence_revisions': sequenceRevisions,
  '0010_values_without_foreign_keys': valuesWithoutForeignKeys,
  '0011_file_pull_parts': filePullParts,
  '0012_clustered_series_tables': clusteredSeriesTables,
};
