import { z } from 'zod';
import { startSimulator } from './server.js';

const environmentSchema = z.object({
  SIMULATOR_HOST: z.string().min(1).default('127.0.0.1'),
  SIMULATOR_PORT: z.coerce.number().int().min(0).max(65_535).default(7070),
  /** Keep the state across restarts in this JSON file; unset, in memory only. */
  SIMULATOR_STATE_FILE: z.string().min(1).optional(),
  SIMULATOR_CLIENT_ID: z.string().min(1),
  SIMULATOR_CLIENT_SECRET: z.string().min(1),
  SIMULATOR_REDIRECT_URIS: z
    .string()
    .transform((list) =>
      list
        .split(',')
        .map((uri) => uri.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.url()).min(1)),
});

const environment = environmentSchema.safeParse(process.env);
if (!environment.success) {
  console.error(`The Cronofy simulator cannot start:\n${z.prettifyError(environment.error)}`);
  process.exit(1);
}
const env = environment.data;

const simulator = await startSimulator({
  host: env.SIMULATOR_HOST,
  port: env.SIMULATOR_PORT,
  clients: [
    {
      clientId: env.SIMULATOR_CLIENT_ID,
      clientSecret: env.SIMULATOR_CLIENT_SECRET,
      redirectUris: env.SIMULATOR_REDIRECT_URIS,
    },
  ],
  logger: true,
  stateFile: env.SIMULATOR_STATE_FILE,
});
console.log(`Cronofy simulator listening on ${simulator.url}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void simulator.close().then(() => process.exit(0));
  });
}
