import { FleetError } from '../../../core/errors.ts';
import type { DeviceLink } from '../../../hub/device-links.ts';
import { updateAvailableMethod } from '../../../hub/update-notices.ts';
import type { Params } from '../../jsonrpc/messages.ts';
import { sendFrame, type RdfmConnection } from './connection.ts';
import { sessionToUuid } from './shell-uuid.ts';

/** RDFM's close code when a server request needs a capability the device lacks; the error code of such a refusal here. */
const missingCapability = 4003;

const refused = (message: string, code: number) => new FleetError('device_error', message, { details: { code, message } });

/**
 * How fleetd's hub reaches an RDFM device: its calls become RDFM's server → device frames. RDFM's
 * frames have no answers, so a call is answered `{}` once the frame is sent; what the device does
 * comes back as frames of its own (the shell's dial-back, action_exec_result, fs_file_*_reply).
 */
export function rdfmLink(connection: RdfmConnection): DeviceLink {
  const send = (frame: { method: string } & Record<string, unknown>, capability: string): Record<string, never> => {
    if (connection.capabilities[capability] !== true) throw refused(`The device does not offer ${capability}`, missingCapability);
    if (!sendFrame(connection, frame)) throw new FleetError('unavailable', `Device ${connection.device.id} is offline`, { details: { reason: 'device_offline' } });
    return {};
  };
  return {
    async call(method: string, params: Params | undefined) {
      const p = (params ?? {}) as Record<string, unknown>;
      switch (method) {
        case 'Fleetd.ShellAttach':
          if (typeof p.sessionId !== 'string') throw refused('ShellAttach needs sessionId', -32602);
          return send({ method: 'shell_attach', mac_addr: connection.mac, uuid: sessionToUuid(p.sessionId) }, 'shell');
        case 'Fleetd.RunAction':
          if (typeof p.runId !== 'string' || typeof p.actionId !== 'string') throw refused('RunAction needs runId and actionId', -32602);
          return send({ method: 'action_exec', execution_id: p.runId, action_id: p.actionId }, 'action');
        case 'Fleetd.UploadFile':
          // RDFM asks for the file's size first; its upload URLs follow the probe's reply (handle-fs-file-probe-reply.ts).
          if (typeof p.pullId !== 'string' || typeof p.path !== 'string') throw refused('UploadFile needs pullId and path', -32602);
          return send({ method: 'fs_file_probe', id: p.pullId, file: p.path }, 'filesystem');
        default:
          throw refused(`An RDFM device does not serve ${method}`, -32601);
      }
    },
    close(code, reason) {
      connection.socket.close(code, reason);
    },
    notify(method) {
      // RDFM has no update notice: an alert says it, and the device finds the update on its next check.
      if (method === updateAvailableMethod) sendFrame(connection, { method: 'alert', alert: { message: 'update available' } });
    },
  };
}
