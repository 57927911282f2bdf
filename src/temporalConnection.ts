import { readFileSync } from 'node:fs';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { Config } from './config.js';

export type TemporalConnectionConfig = Pick<
  Config,
  | 'TEMPORAL_ADDRESS'
  | 'TEMPORAL_NAMESPACE'
  | 'TEMPORAL_API_KEY'
  | 'TEMPORAL_TLS'
  | 'TEMPORAL_TLS_CERT_PATH'
  | 'TEMPORAL_TLS_KEY_PATH'
  | 'TEMPORAL_TLS_CA_PATH'
  | 'TEMPORAL_TLS_SERVER_NAME'
>;

/**
 * How the client and the workers reach Temporal: plain gRPC to a dev server or a cluster inside the network, or TLS
 * with a client certificate (mTLS) or an API key, as Temporal Cloud requires. Certificate files are read here, once,
 * and an unreadable one is reported by its variable's name.
 */
export function temporalConnectionOptions(config: TemporalConnectionConfig): {
  address: string;
  tls?: TLSConfig | false;
  apiKey?: string;
  metadata?: Record<string, string>;
} {
  const clientCertPair =
    config.TEMPORAL_TLS_CERT_PATH && config.TEMPORAL_TLS_KEY_PATH
      ? {
          crt: readConfiguredFile('TEMPORAL_TLS_CERT_PATH', config.TEMPORAL_TLS_CERT_PATH),
          key: readConfiguredFile('TEMPORAL_TLS_KEY_PATH', config.TEMPORAL_TLS_KEY_PATH),
        }
      : undefined;
  // parseConfig refuses TEMPORAL_TLS=false together with a key or certificate.
  const useTls =
    config.TEMPORAL_TLS === 'true' || clientCertPair !== undefined || config.TEMPORAL_API_KEY !== undefined;
  return {
    address: config.TEMPORAL_ADDRESS,
    tls: useTls
      ? {
          clientCertPair,
          serverRootCACertificate: config.TEMPORAL_TLS_CA_PATH
            ? readConfiguredFile('TEMPORAL_TLS_CA_PATH', config.TEMPORAL_TLS_CA_PATH)
            : undefined,
          serverNameOverride: config.TEMPORAL_TLS_SERVER_NAME,
        }
      : false,
    ...(config.TEMPORAL_API_KEY
      ? {
          apiKey: config.TEMPORAL_API_KEY,
          // Temporal Cloud's regional endpoints route API-key calls by this header.
          metadata: { 'temporal-namespace': config.TEMPORAL_NAMESPACE },
        }
      : {}),
  };
}

function readConfiguredFile(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`${variable}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/**
 * A client for a short-lived process such as the operators' CLI: the SDK's JavaScript gRPC connection, which
 * needs neither the worker package (and the workflow bundler it loads) nor the SDK's Runtime. The service itself
 * connects through `connectTemporal` (services.ts).
 */
export async function connectTemporalClient(config: TemporalConnectionConfig, dataConverter: DataConverter) {
  const connection = await Connection.connect(temporalConnectionOptions(config));
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, dataConverter });
  return { client, close: () => connection.close() };
}
