import { isWithin } from '../../../core/resource-paths.ts';
import { badRequest } from '../../../core/errors.ts';
import type { FolderMessage, FolderMessages, FolderMessageSender } from '../../../services/folder-messages.ts';
import type { ResourceInfo } from '../../../services/resources/resource-info.ts';

export interface Subscription {
  orgId: string;
  folderId: string;
  /** The folder's path below its organization, as at subscribe time. */
  folderPath: string;
  includeChildren: boolean;
  /** Null: every type. */
  messageType: string | null;
}

/** Bounds what one connection keeps: rhizo clients subscribe to a handful of folders. */
export const maxSubscriptions = 200;

/**
 * The subscriptions of one connection, and the delivery of the folder messages they match: each
 * message once, however many subscriptions match it, and never to its own sender (a user's or a
 * device's messages do not come back to any of its connections, as in rhizo).
 *
 * With include_children, rhizo snapshots the descendant folders at subscribe time; here a message
 * matches when its folder lies below the subscribed folder's path when it arrives, so folders created
 * after the subscription count too (an intended improvement). A subscribed folder later moved or
 * renamed keeps matching by its id, its children by its old path.
 */
export class FolderSubscriptions {
  readonly #list: Subscription[] = [];
  readonly #stopListening = new Map<string, () => void>();

  constructor(
    private readonly messages: Pick<FolderMessages, 'listen'>,
    private readonly self: () => FolderMessageSender,
    private readonly deliver: (message: FolderMessage) => void,
  ) {}

  get size(): number {
    return this.#list.length;
  }

  add(folder: ResourceInfo, options: { includeChildren: boolean; messageType: string | null }): void {
    const subscription: Subscription = { orgId: folder.orgId, folderId: folder.id, folderPath: folder.relativePath, ...options };
    const same = this.#list.some((s) => s.folderId === subscription.folderId && s.includeChildren === subscription.includeChildren && s.messageType === subscription.messageType);
    if (same) return;
    if (this.#list.length >= maxSubscriptions) throw badRequest(`A connection holds at most ${maxSubscriptions} subscriptions`);
    this.#list.push(subscription);
    if (!this.#stopListening.has(folder.orgId)) this.#stopListening.set(folder.orgId, this.messages.listen(folder.orgId, (message) => this.#received(message)));
  }

  close(): void {
    for (const stop of this.#stopListening.values()) stop();
    this.#stopListening.clear();
    this.#list.length = 0;
  }

  #received(message: FolderMessage): void {
    const self = this.self();
    if (message.sender.kind === self.kind && message.sender.id === self.id) return;
    if (this.#list.some((s) => matches(s, message))) this.deliver(message);
  }
}

function matches(subscription: Subscription, message: FolderMessage): boolean {
  if (subscription.orgId !== message.orgId) return false;
  if (subscription.messageType !== null && subscription.messageType !== message.type) return false;
  if (message.folderId === subscription.folderId) return true;
  return subscription.includeChildren && isWithin(message.folderPath, subscription.folderPath);
}
