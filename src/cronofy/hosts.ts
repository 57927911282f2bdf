import { z } from 'zod';

export const dataCentres = ['us', 'uk', 'de', 'au', 'ca', 'sg'] as const;
export const DataCentre = z.enum(dataCentres);
export type DataCentre = z.infer<typeof DataCentre>;

export interface CronofyHosts {
  /** Serves `/v1/*` and the token endpoints. */
  api: string;
  /** Serves the browser pages, `/oauth/authorize` and `/enterprise_connect/oauth/authorize`. */
  app: string;
}

export function cronofyHosts(dataCentre: DataCentre): CronofyHosts {
  const suffix = dataCentre === 'us' ? '' : `-${dataCentre}`;
  return { api: `https://api${suffix}.cronofy.com`, app: `https://app${suffix}.cronofy.com` };
}
