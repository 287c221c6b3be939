import type { IncomingMessage } from 'node:http';
import WebSocket, { type RawData } from 'ws';
import { ApiError, errorFromResponse } from './api-client.ts';
import type { ClientSettings } from './settings.ts';

/** End of transmission (Ctrl-D): what a terminal sends a shell when input ends. */
const endOfInput = Buffer.from([0x04]);

/** The local ends of a shell: the process's own standard streams, or a test's. */
export interface ShellTerminal {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(raw: boolean): unknown };
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number; on(event: 'resize', listener: () => void): unknown; off(event: 'resize', listener: () => void): unknown };
}

/** The operator end of the shell WebSocket of a device (docs/ota.md, "Remote operations"). */
export function shellUrl(settings: ClientSettings, deviceId: string): string {
  const url = new URL(`${settings.url}/api/orgs/${encodeURIComponent(settings.org)}/devices/${encodeURIComponent(deviceId)}/shell`);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}

/**
 * Relays a shell on a device to the local terminal until either side ends it. Keys go out as binary
 * frames, verbatim (raw mode on a terminal, so Ctrl-C reaches the remote program and not this one);
 * the window size goes out as `{"type":"resize"}` text frames. Resolves with the remote exit code.
 */
export function runShell(settings: ClientSettings, deviceId: string, terminal: ShellTerminal): Promise<number> {
  const { stdin, stdout } = terminal;
  const socket = new WebSocket(shellUrl(settings, deviceId), { headers: { authorization: `Bearer ${settings.key}` } });
  let remoteExitCode: number | undefined;
  let rawMode = false;

  const sendSize = () => {
    if (stdout.columns && stdout.rows) socket.send(JSON.stringify({ type: 'resize', cols: stdout.columns, rows: stdout.rows }));
  };
  const sendInput = (chunk: Buffer | string) => socket.send(chunk, { binary: true });
  // Piped input that ends would leave a remote shell waiting for more: end it as a terminal would.
  const sendEndOfInput = () => socket.readyState === WebSocket.OPEN && socket.send(endOfInput, { binary: true });

  const restoreTerminal = () => {
    stdin.off('data', sendInput);
    stdin.off('end', sendEndOfInput);
    stdout.off('resize', sendSize);
    if (rawMode) stdin.setRawMode?.(false);
    rawMode = false;
    stdin.pause();
  };

  return new Promise<number>((resolve, reject) => {
    socket.on('unexpected-response', (_request, response: IncomingMessage) => {
      // Refused before the upgrade (unknown device, no shell capability, offline...): fleetd's JSON error body.
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        reject(errorFromResponse(response.statusCode ?? 0, text, `opening a shell on ${deviceId}`));
        socket.terminate();
      });
      response.on('error', reject);
    });
    socket.on('open', () => {
      if (stdin.isTTY && stdin.setRawMode) {
        stdin.setRawMode(true);
        rawMode = true;
      }
      if (stdout.isTTY) {
        sendSize();
        stdout.on('resize', sendSize);
      }
      stdin.on('data', sendInput);
      stdin.on('end', sendEndOfInput);
      stdin.resume();
    });
    socket.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (isBinary) {
        stdout.write(bytes);
        return;
      }
      const control = parseControl(bytes.toString('utf8'));
      if (control?.type === 'exit') {
        remoteExitCode = typeof control.code === 'number' && Number.isInteger(control.code) ? control.code : 1;
        socket.close(1000);
      }
    });
    socket.on('error', (error) => {
      restoreTerminal();
      reject(new ApiError(`Shell connection to ${settings.url} failed: ${error.message}`, { cause: error }));
    });
    socket.on('close', (code, reason) => {
      restoreTerminal();
      if (remoteExitCode !== undefined) resolve(remoteExitCode);
      else if (code === 1000) resolve(0);
      else reject(new ApiError(`The shell closed: ${reason.toString() || 'no reason given'} (WebSocket close ${code})`));
    });
  });
}

function parseControl(text: string): { type?: unknown; code?: unknown } | undefined {
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    // A control frame that is not JSON means nothing to us; the terminal bytes come as binary frames.
    return undefined;
  }
}
