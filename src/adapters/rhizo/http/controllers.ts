import type { Principal } from '../../../core/access.ts';
import { badRequest } from '../../../core/errors.ts';
import type { ResourceInfo } from '../../../services/resources/resource-info.ts';
import type { Services } from '../../../services/index.ts';

/** A controller folder: rhizo's controller is a fleetd device, and this folder is its data. */
export type ControllerFolder = ResourceInfo & { deviceId: string };

export function asController(folder: ResourceInfo): ControllerFolder {
  if (folder.type !== 'controller_folder' || folder.deviceId === null) throw badRequest(`${folder.path} is not a controller`);
  return folder as ControllerFolder;
}

/** The controller folder at `path`, which the principal may write (what managing its keys takes in rhizo). */
export async function controllerAt(services: Services, principal: Principal, path: string): Promise<ControllerFolder> {
  return asController(await services.resources.resolve(principal, path, 'write'));
}
