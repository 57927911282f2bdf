import { pino, type LoggerOptions } from 'pino';

/** Field paths that may carry credentials; pino replaces them before anything is written. */
const REDACTED_PATHS = [
  '*.access_token',
  '*.refresh_token',
  '*.client_secret',
  '*.code',
  '*.state',
  '*.token',
  '*.authorization',
  '*.accessToken',
  '*.refreshToken',
  'req.headers.authorization',
];

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: {
      // Query strings carry OAuth codes and state: log the path only.
      req: (req: { method: string; url: string }) => ({ method: req.method, path: req.url.split('?')[0] }),
    },
  };
}

export function createLogger(level = 'info', name?: string) {
  return pino({ ...loggerOptions(level), name });
}
