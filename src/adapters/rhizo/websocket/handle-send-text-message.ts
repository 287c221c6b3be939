import { type MessageHandler } from './context.ts';

/** `send_text_message`: rhizo sends SMS through Twilio; fleetd has no SMS gateway, and says so. */
export const handleSendTextMessage: MessageHandler = (connection) => {
  connection.sendError('send_text_message is not supported: this server sends no text messages');
};
