import { type MessageHandler } from './context.ts';
import { param, parametersObject } from './frames.ts';

/**
 * `send_email {email_addresses, subject, body}` (camelCase accepted): controllers only, through the
 * configured SMTP server. Past the device's hourly limit the email is dropped without an answer, as
 * rhizo drops it; the Mailer logs it.
 */
export const handleSendEmail: MessageHandler = async (connection, frame) => {
  const controller = connection.controller;
  if (!controller?.deviceId) {
    connection.sendError('send_email is for controllers only');
    return;
  }
  const parameters = parametersObject(frame.parameters);
  const addresses = param(parameters, 'email_addresses', 'emailAddresses');
  const subject = param(parameters, 'subject') ?? '';
  const body = param(parameters, 'body') ?? '';
  // rhizo clients send one text, comma separated; a list is taken too.
  const to = typeof addresses === 'string' ? addresses.split(/[,;]/).map((a) => a.trim()).filter((a) => a !== '') : addresses;
  if (!Array.isArray(to) || typeof subject !== 'string' || typeof body !== 'string') {
    connection.sendError('expected email_addresses, subject and body parameters for send_email message');
    return;
  }
  await connection.hub.services.mailer.sendAsDevice(controller.deviceId, { to, subject, body });
};
