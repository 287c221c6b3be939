import type { TSchema } from 'typebox';
import type { RdfmConnection } from './connection.ts';

/** One device → server method: the shape of its frame, and what it does. */
export interface FrameHandler<F = any> {
  method: string;
  schema: TSchema;
  handle(connection: RdfmConnection, frame: F): Promise<void>;
}
