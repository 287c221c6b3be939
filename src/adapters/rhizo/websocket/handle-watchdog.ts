import { type MessageHandler } from './context.ts';

/** `watchdog`: the controller is alive (see ControllerWatchdog). From anyone else it means nothing, as in rhizo. */
export const handleWatchdog: MessageHandler = async (connection) => {
  if (connection.controller) await connection.hub.services.watchdog.seen(connection.controller.id);
};
