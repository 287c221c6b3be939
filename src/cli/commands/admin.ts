import { Command } from 'commander';
import { FleetError } from '../../core/errors.ts';
import { systemActor } from '../../services/actor.ts';
import { recordAudit } from '../../services/audit.ts';
import { findOrganization } from '../../services/organizations.ts';
import { slugPattern } from '../../services/organizations.ts';
import { findUserByEmail, insertUser } from '../../services/users.ts';
import { nowIso } from '../../store/page.ts';
import { newId } from '../../core/ids.ts';
import { openStore } from '../../store/store.ts';
import { configFromOptions, withConfigOptions } from '../config-options.ts';
import { promptPassword, readStdin } from '../password.ts';

const minPasswordLength = 8;

export function adminCommand(): Command {
  const admin = new Command('admin').description('manage system admins on this server');
  admin.addCommand(
    withConfigOptions(new Command('create'))
      .description('create a system admin who owns organization NAME (created when missing); an existing user is made admin and owner')
      .argument('<email>', 'email of the admin; also the login name')
      .option('--org <name>', 'organization slug the admin owns', 'default')
      .option('--name <name>', 'display name')
      .option('--password-stdin', 'read the password from standard input (else FLEETD_ADMIN_PASSWORD, else a prompt)')
      .action(async (email: string, options: Record<string, unknown>) => {
        const { config } = configFromOptions(options);
        const org = String(options.org);
        if (!new RegExp(slugPattern).test(org)) throw new FleetError('bad_request', `--org ${JSON.stringify(org)} must be lowercase letters, digits and dashes`);
        if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw new FleetError('bad_request', `${JSON.stringify(email)} is not an email address`);
        const store = openStore(config.database);
        try {
          await store.migrate();
          const existing = await findUserByEmail(store.db, email);
          const password = existing ? undefined : await readPassword(Boolean(options.passwordStdin));
          const result = await store.transaction(async (tx) => {
            const now = nowIso();
            let orgRow = await findOrganization(tx, org);
            if (!orgRow) {
              const id = newId('org');
              await tx.insertInto('organizations').values({ id, slug: org, name: org, created_at: now, updated_at: now }).execute();
              await recordAudit(tx, systemActor, { orgId: id, action: 'org.create', target: { type: 'org', id }, details: { slug: org, via: 'cli' } });
              orgRow = { id, slug: org, name: org, createdAt: now, updatedAt: now };
            }
            let userId: string;
            if (existing) {
              userId = existing.id;
              await tx.updateTable('users').set({ system_admin: 1, updated_at: now }).where('id', '=', userId).execute();
              await recordAudit(tx, systemActor, { orgId: null, action: 'user.update', target: { type: 'user', id: userId }, details: { systemAdmin: true, via: 'cli' } });
            } else {
              userId = (await insertUser(tx, { email, name: options.name as string | undefined, password: password!, systemAdmin: true })).id;
              await recordAudit(tx, systemActor, { orgId: null, action: 'user.create', target: { type: 'user', id: userId }, details: { email, systemAdmin: true, via: 'cli' } });
            }
            await tx
              .insertInto('memberships')
              .values({ org_id: orgRow.id, user_id: userId, role: 'owner', created_at: now, updated_at: now })
              .onConflict((oc) => oc.columns(['org_id', 'user_id']).doUpdateSet({ role: 'owner', updated_at: now }))
              .execute();
            await recordAudit(tx, systemActor, { orgId: orgRow.id, action: 'member.add', target: { type: 'user', id: userId }, details: { role: 'owner', via: 'cli' } });
            return { userId, orgId: orgRow.id };
          });
          process.stdout.write(
            `${existing ? 'Made existing user' : 'Created'} system admin ${email} (${result.userId}), owner of organization ${org} (${result.orgId}).\nLog in with POST /api/auth/login {"email", "password"}.\n`,
          );
        } finally {
          await store.close();
        }
      }),
  );
  return admin;
}

async function readPassword(fromStdin: boolean): Promise<string> {
  const password = fromStdin ? await readStdin() : (process.env.FLEETD_ADMIN_PASSWORD ?? (await promptPassword()));
  if (password.length < minPasswordLength) throw new FleetError('bad_request', `The password must have at least ${minPasswordLength} characters`);
  return password;
}
