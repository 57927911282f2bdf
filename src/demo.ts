/**
 * `npm run demo` (with `npm start` running): creates a Read/Write user on the simulator, starts their
 * downgrade through the typed client, prints the consent link to open in a browser, and waits for the outcome.
 */
import got from 'got';
import { z } from 'zod';
import { DowngradeClient } from './client.js';
import { loadConfig } from './config.js';
import { connectTemporal, SIMULATOR_CLIENT } from './services.js';

const config = loadConfig();
if (!config.useSimulator) {
  console.error('The demo creates its user on the Cronofy simulator; unset CRONOFY_CLIENT_ID to use it.');
  process.exit(1);
}
const simulatorUrl = `http://127.0.0.1:${config.SIMULATOR_PORT}`;
const email = process.argv[2] ?? `demo-${Date.now()}@example.com`;

const account = z
  .object({ sub: z.string() })
  .parse(
    await got
      .post(`${simulatorUrl}/_sim/accounts`, { json: { email, client_id: SIMULATOR_CLIENT.clientId } })
      .json(),
  );

const temporal = await connectTemporal(config);
const downgrades = new DowngradeClient({
  temporal: temporal.client,
  taskQueue: config.TEMPORAL_TASK_QUEUE,
  defaults: {
    deadlineMs: config.DOWNGRADE_DEADLINE,
    reminderIntervalMs: config.DOWNGRADE_REMINDER_INTERVAL,
    maxPrompts: config.DOWNGRADE_MAX_PROMPTS,
  },
});
const { workflowId } = await downgrades.startIndividualDowngrade({ sub: account.sub, userId: email });
console.log(
  `Started ${workflowId} for ${email} (${account.sub}); it revokes the Read/Write connection first.`,
);

let status = await downgrades.getDowngrade(workflowId);
while (!status.authorizationUrl && status.state === 'revoking') {
  await new Promise((resolve) => setTimeout(resolve, 300));
  status = await downgrades.getDowngrade(workflowId);
}
if (status.authorizationUrl) {
  console.log(`\nOpen this link and choose Free/Busy:\n\n  ${status.authorizationUrl}\n`);
  console.log(
    `Follow the run in the Temporal UI: http://127.0.0.1:${config.TEMPORAL_UI_PORT}/namespaces/${config.TEMPORAL_NAMESPACE}/workflows/${workflowId}`,
  );
  console.log('Waiting for the person to answer (Ctrl-C stops waiting; the downgrade goes on)...');
}
const result = await downgrades.waitForResult(workflowId);
console.log(
  `\nDowngrade ended: ${result.state}${result.reason ? ` (${result.reason})` : ''}${result.providerName ? `, provider ${result.providerName}` : ''}`,
);
await temporal.close();
