import type { Db } from '../../store/store.ts';

/** Deployments that still hand out packages: not cancelled or completed. */
const unfinishedDeployments = ['scheduled', 'running', 'paused'] as const;
/** Device updates whose device may still fetch the package. */
const updatesInProgress = ['pending', 'downloading', 'installing'] as const;

/** Who still needs a package, by kind, with a few ids each; empty when nobody does. */
export interface PackageUsers {
  groupIds?: string[];
  deploymentIds?: string[];
  deviceIds?: string[];
}

const shown = 10;

/**
 * What keeps a package from being deleted: a group's package set listing it, an unfinished
 * deployment with a device row naming it, or a device that was handed it and has not finished.
 */
export async function usersOfPackage(db: Db, packageId: string): Promise<PackageUsers> {
  const groups = await db.selectFrom('group_packages').select('group_id').where('package_id', '=', packageId).limit(shown).execute();
  const deployments = await db
    .selectFrom('deployment_devices')
    .innerJoin('deployments', 'deployments.id', 'deployment_devices.deployment_id')
    .select('deployments.id')
    .distinct()
    .where('deployment_devices.package_id', '=', packageId)
    .where('deployments.status', 'in', unfinishedDeployments)
    .limit(shown)
    .execute();
  const devices = await db.selectFrom('device_updates').select('device_id').where('package_id', '=', packageId).where('status', 'in', updatesInProgress).limit(shown).execute();
  return {
    ...(groups.length > 0 && { groupIds: groups.map((row) => row.group_id) }),
    ...(deployments.length > 0 && { deploymentIds: deployments.map((row) => row.id) }),
    ...(devices.length > 0 && { deviceIds: devices.map((row) => row.device_id) }),
  };
}
