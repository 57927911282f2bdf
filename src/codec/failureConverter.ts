import { DefaultFailureConverter } from '@temporalio/common';

/**
 * Failures keep their message and stack trace in an encoded payload instead of plain fields, so the payload codec
 * encrypts them like every other payload: an error that quotes a user's email or Cronofy's answer stays out of the
 * server's plaintext. The history shows "Encoded failure"; clients, workers and the codec server decode it.
 *
 * Loaded by path (`failureConverterPath`): the workflow bundle and the client must use the same converter.
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
