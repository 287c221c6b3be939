import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventFilterSchema, filterEvent, type DeviceFacts, type EventFilter } from '../../src/core/event-filter.ts';
import { compileSchema } from '../../src/core/validation.ts';
import type { HubEvent } from '../../src/hub/events.ts';

const plug: DeviceFacts = { id: 'dev_plug', externalId: 'shellyplus1pm-a8032abb995c', tags: ['kitchen', 'power'], groupIds: ['grp_ground'] };

const event = (name: HubEvent['name'], data: HubEvent['data'], deviceId: string | null = plug.id): HubEvent => ({
  id: 'evt_01jb3x0000000000000000000',
  orgId: 'org_a',
  deviceId,
  name,
  at: '2025-01-11T14:01:40.000Z',
  data,
});

/** The status event of Shelly's NotifyStatus example (shelly-gen2.md §10), and one with its energy counter. */
const outputChanged = event('device.status', { changed: { 'switch:0': { id: 0, output: true, source: 'WS_in' } } });
const energyOnly = event('device.status', { changed: { 'switch:0': { aenergy: { total: 12.6 } } } });
const mixed = event('device.status', {
  changed: {
    'switch:0': { output: true, apower: 8.5, aenergy: { total: 12.6 } },
    'switch:1': { output: false },
    'input:0': { state: true },
    sys: { uptime: 40 },
    ts: 1736604100.02,
  },
});
const pushed = event('device.notification', { method: 'NotifyEvent', event: 'single_push', component: 'input:0', id: 0, ts: 1736604300.1 });
const online = event('device.online', { node: 'node_a' });
const pending = event('admission.pending', { pendingId: 'pnd_1', externalId: 'shellyplus1pm-new', endpoint: 'shelly', info: {} }, null);

const changedOf = (result: HubEvent | undefined) => (result === undefined ? undefined : result.data.changed);

describe('filterEvent', () => {
  it("drops a status event whose only change Shelly Fleet Manager's `*:aenergy` deny removes, and keeps the others", () => {
    const filter: EventFilter = { events: ['device.status'], status: { deny: ['*:aenergy'] } };
    assert.equal(filterEvent(filter, energyOnly, plug), undefined);
    assert.equal(filterEvent(filter, outputChanged, plug), outputChanged);
    assert.deepEqual(changedOf(filterEvent(filter, mixed, plug)), {
      'switch:0': { output: true, apower: 8.5 },
      'switch:1': { output: false },
      'input:0': { state: true },
      sys: { uptime: 40 },
      ts: 1736604100.02,
    });
  });

  const statusTable: Array<[string, EventFilter['status'], unknown]> = [
    ['no rules keep everything', {}, mixed.data.changed],
    ['`switch` allows every switch:<id>', { allow: ['switch'] }, { 'switch:0': { output: true, apower: 8.5, aenergy: { total: 12.6 } }, 'switch:1': { output: false } }],
    ['`switch:0` allows only that one', { allow: ['switch:0'] }, { 'switch:0': { output: true, apower: 8.5, aenergy: { total: 12.6 } } }],
    ['`switch:*` is `switch` with every field', { allow: ['switch:*'] }, { 'switch:0': { output: true, apower: 8.5, aenergy: { total: 12.6 } }, 'switch:1': { output: false } }],
    ['a field of every component', { allow: ['*:output'] }, { 'switch:0': { output: true }, 'switch:1': { output: false } }],
    ['a field of one component', { allow: ['switch:1:output'] }, { 'switch:1': { output: false } }],
    ['a field of one type', { allow: ['switch:apower'] }, { 'switch:0': { apower: 8.5 } }],
    ['`*:0` is every component with id 0', { allow: ['*:0'] }, { 'switch:0': { output: true, apower: 8.5, aenergy: { total: 12.6 } }, 'input:0': { state: true } }],
    ['deny goes before allow', { allow: ['switch'], deny: ['switch:0:aenergy', 'switch:1'] }, { 'switch:0': { output: true, apower: 8.5 } }],
    ['`*:*` denies everything', { deny: ['*:*'] }, undefined],
    ['`*` denies everything', { deny: ['*'] }, undefined],
    ['an allow rule matching nothing leaves nothing', { allow: ['cover'] }, undefined],
    // Entries that are not objects have no fields: only rules whose field part is `*` (or absent) name them.
    ['a non-object entry survives a field rule', { deny: ['*:uptime'] }, { 'switch:0': { output: true, apower: 8.5, aenergy: { total: 12.6 } }, 'switch:1': { output: false }, 'input:0': { state: true }, ts: 1736604100.02 }],
    ['a non-object entry named whole', { deny: ['ts', 'switch', 'input', 'sys'] }, undefined],
    ['a non-object entry denied by `ts:*`', { deny: ['ts:*'], allow: ['ts', 'sys:uptime'] }, { sys: { uptime: 40 } }],
    ['a non-object entry is not a field of `*:x` for allow', { allow: ['*:uptime'] }, { sys: { uptime: 40 } }],
  ];
  for (const [name, status, expected] of statusTable) {
    it(`status rules: ${name}`, () => {
      assert.deepEqual(changedOf(filterEvent({ status }, mixed, plug)), expected);
    });
  }

  it('never changes the event it is given (it is shared by every subscriber)', () => {
    const before = structuredClone(mixed);
    filterEvent({ status: { deny: ['*:aenergy'] } }, mixed, plug);
    assert.deepEqual(mixed, before);
  });

  it('status rules leave other events alone', () => {
    assert.equal(filterEvent({ status: { deny: ['*:*'] } }, online, plug), online);
    assert.equal(filterEvent({ status: { allow: ['switch'] } }, pushed, plug), pushed);
  });

  const nameTable: Array<[string[], HubEvent, boolean]> = [
    [['*'], online, true],
    [['*'], pending, true],
    [['device.*'], online, true],
    [['device.*'], pending, false],
    [['*.online'], online, true],
    [['*.online'], outputChanged, false],
    [['device.online', 'admission.pending'], pending, true],
    [['device'], online, false],
    [['device.online.extra'], online, false],
    [['device.status'], online, false],
  ];
  for (const [events, subject, kept] of nameTable) {
    it(`event names ${JSON.stringify(events)} ${kept ? 'keep' : 'drop'} ${subject.name}`, () => {
      assert.equal(filterEvent({ events }, subject, plug) !== undefined, kept);
    });
  }

  it('devices by fleetd id or external id; admission events by the external id in their data', () => {
    assert.ok(filterEvent({ deviceIds: ['dev_plug'] }, online, plug));
    assert.ok(filterEvent({ deviceIds: ['shellyplus1pm-a8032abb995c'] }, online, plug));
    assert.ok(filterEvent({ deviceIds: ['dev_plug'] }, online, undefined), 'the event names its device itself');
    assert.equal(filterEvent({ deviceIds: ['dev_other'] }, online, plug), undefined);
    assert.equal(filterEvent({ deviceIds: ['shellyplus1pm-a8032abb995c'] }, online, undefined), undefined);
    assert.ok(filterEvent({ deviceIds: ['shellyplus1pm-new'] }, pending, undefined));
    assert.equal(filterEvent({ deviceIds: ['dev_plug'] }, pending, undefined), undefined);
  });

  it('groups and tags need the facts of the device and one match', () => {
    assert.ok(filterEvent({ groups: ['grp_other', 'grp_ground'] }, online, plug));
    assert.equal(filterEvent({ groups: ['grp_other'] }, online, plug), undefined);
    assert.equal(filterEvent({ groups: ['grp_ground'] }, pending, undefined), undefined);
    assert.ok(filterEvent({ tags: ['power'] }, online, plug));
    assert.equal(filterEvent({ tags: ['garden'] }, online, plug), undefined);
    assert.equal(filterEvent({ tags: ['power'] }, online, undefined), undefined);
  });

  it('notification names match the event or the method, and only notifications', () => {
    assert.ok(filterEvent({ notifications: ['single_push'] }, pushed, plug));
    assert.ok(filterEvent({ notifications: ['NotifyEvent'] }, pushed, plug));
    assert.equal(filterEvent({ notifications: ['long_push'] }, pushed, plug), undefined);
    assert.equal(filterEvent({ notifications: ['long_push'] }, online, plug), online);
  });

  it('every part of a filter must match', () => {
    const filter: EventFilter = { events: ['device.status'], deviceIds: ['dev_plug'], tags: ['kitchen'], groups: ['grp_ground'], status: { allow: ['switch:output'] } };
    assert.deepEqual(changedOf(filterEvent(filter, mixed, plug)), { 'switch:0': { output: true }, 'switch:1': { output: false } });
    assert.equal(filterEvent({ ...filter, tags: ['garden'] }, mixed, plug), undefined);
    assert.equal(filterEvent(filter, online, plug), undefined);
  });
});

describe('EventFilterSchema', () => {
  const validate = compileSchema(EventFilterSchema);

  it("accepts Shelly Fleet Manager's subscription options, translated", () => {
    const filter: EventFilter = { events: ['device.status'], deviceIds: ['shellyplus1pm-a8032abb995c'], status: { deny: ['*:aenergy'] } };
    assert.ok(validate(filter), JSON.stringify(validate.errors));
    assert.ok(validate({}));
    assert.ok(validate({ events: ['*', 'device.*', 'admission.pending'], status: { allow: ['switch', 'switch:0', 'switch:0:output', '*:*'] } }));
  });

  const refused: Array<[string, unknown]> = [
    ['an unknown field', { shellyIDs: ['x'] }],
    ['an unknown field of status', { status: { allow: ['*:*'], paths: [] } }],
    ['an empty list', { deviceIds: [] }],
    ['too many device ids', { deviceIds: Array.from({ length: 1001 }, (_, i) => `dev_${i}`) }],
    ['too many patterns', { status: { deny: Array.from({ length: 101 }, () => '*:*') } }],
    ['too many groups', { groups: Array.from({ length: 101 }, (_, i) => `grp_${i}`) }],
    ['a long id', { deviceIds: ['x'.repeat(129)] }],
    ['an empty pattern part', { status: { deny: ['switch:'] } }],
    ['four pattern parts', { status: { deny: ['a:b:c:d'] } }],
    ['a wildcard inside an event token', { events: ['device.on*'] }],
    ['an event name with a space', { events: ['device. online'] }],
    ['a number for a list', { tags: 3 }],
    ['a non-string entry', { notifications: [1] }],
  ];
  for (const [name, value] of refused) {
    it(`refuses ${name}`, () => {
      assert.equal(validate(value), false);
    });
  }
});
