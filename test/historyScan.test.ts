/**
 * The history scan that every workflow test file ends with: a payload stored unencrypted fails it unless Temporal
 * itself must read it (search attributes, the trace-context header, the SDK's marker bookkeeping).
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import proto from '@temporalio/proto';
import { ENCRYPTED_ENCODING } from '../src/codec/encryptionCodec.js';
import { payloadsStoredInPlaintext } from '../harness/histories.js';

const { GetWorkflowExecutionHistoryResponse } = proto.temporal.api.workflowservice.v1;

const payload = (encoding: string, data: string) => ({
  metadata: { encoding: Buffer.from(encoding) },
  data: Buffer.from(data),
});

/** A page as the server sends it: encoded and decoded again, so the shapes are protobufjs's own. */
function page(events: object[]) {
  const message = GetWorkflowExecutionHistoryResponse.fromObject({ history: { events } });
  return GetWorkflowExecutionHistoryResponse.decode(
    GetWorkflowExecutionHistoryResponse.encode(message).finish(),
  );
}

test('a history whose payloads are encrypted, but for search attributes and trace context, passes', () => {
  const history = page([
    {
      eventId: 1,
      workflowExecutionStartedEventAttributes: {
        input: { payloads: [payload(ENCRYPTED_ENCODING, 'ciphertext')] },
        searchAttributes: {
          indexedFields: {
            DowngradeState: payload('json/plain', '"revoking"'),
            Custom_2: payload('json/plain', '"x"'),
          },
        },
        header: { fields: { '_tracer-data': payload('json/plain', '{"traceparent":"00-1-2-01"}') } },
      },
    },
    {
      eventId: 2,
      activityTaskScheduledEventAttributes: {
        input: { payloads: [payload(ENCRYPTED_ENCODING, 'ciphertext')] },
        header: { fields: { '_tracer-data': payload('json/plain', '{}') } },
      },
    },
    {
      eventId: 3,
      markerRecordedEventAttributes: {
        markerName: 'core_local_activity',
        details: {
          data: { payloads: [payload('json/plain', '{"seq":1,"activity_type":"notifyApplication"}')] },
          result: { payloads: [payload(ENCRYPTED_ENCODING, 'ciphertext')] },
        },
      },
    },
  ]);
  assert.deepEqual(payloadsStoredInPlaintext(history), []);
});

test('a payload stored as plain JSON anywhere else is reported with its path', () => {
  const history = page([
    {
      eventId: 1,
      workflowExecutionStartedEventAttributes: {
        input: { payloads: [payload('json/plain', '{"sub":"acc_1"}')] },
        memo: { fields: { note: payload('json/plain', '"hello"') } },
      },
    },
    {
      eventId: 2,
      workflowExecutionSignaledEventAttributes: {
        signalName: 'reauthorized',
        input: { payloads: [payload(ENCRYPTED_ENCODING, 'ciphertext'), payload('binary/null', '')] },
        header: { fields: { other: payload('json/plain', '{}') } },
      },
    },
    {
      eventId: 3,
      // A map whose keys look like a Payload's fields is still read entry by entry.
      workflowExecutionStartedEventAttributes: {
        memo: { fields: { metadata: payload('json/plain', '1'), data: payload('json/plain', '2') } },
      },
    },
    {
      eventId: 4,
      // A local activity's result is the workflow's data, not the SDK's bookkeeping.
      markerRecordedEventAttributes: {
        markerName: 'core_local_activity',
        details: { result: { payloads: [payload('json/plain', '{"userId":"u1"}')] } },
      },
    },
    {
      eventId: 5,
      // Only the SDK's two markers keep bookkeeping in plain; a `data` field elsewhere is no exception.
      markerRecordedEventAttributes: {
        markerName: 'other_marker',
        details: { data: { payloads: [payload('json/plain', '{"sub":"acc_1"}')] } },
      },
    },
  ]);
  assert.deepEqual(payloadsStoredInPlaintext(history), [
    'history.events.workflowExecutionStartedEventAttributes.input.payloads (json/plain)',
    'history.events.workflowExecutionStartedEventAttributes.memo.fields.note (json/plain)',
    'history.events.workflowExecutionSignaledEventAttributes.input.payloads (binary/null)',
    'history.events.workflowExecutionSignaledEventAttributes.header.fields.other (json/plain)',
    'history.events.workflowExecutionStartedEventAttributes.memo.fields.metadata (json/plain)',
    'history.events.workflowExecutionStartedEventAttributes.memo.fields.data (json/plain)',
    'history.events.markerRecordedEventAttributes[core_local_activity].details.result.payloads (json/plain)',
    'history.events.markerRecordedEventAttributes[other_marker].details.data.payloads (json/plain)',
  ]);
});
