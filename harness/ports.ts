import { freePorts } from './freePorts.mjs';

export { freePorts };

export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}
