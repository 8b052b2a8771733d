// The inbound transformer: a WhatsApp webhook arrives (at least once), then a webhook with a batch of statuses.
import assert from "node:assert/strict";
import { test } from "node:test";

import { timestampFromDate } from "@bufbuild/protobuf/wkt";

import { Code, ConversationState, MessageDirection, MessageStatus } from "../src/index.js";
import { newTenant, uniqueId, waId } from "./support.js";

const OK = 0; // google.rpc.Code OK: BatchUpdateMessageStatusResult.code is a google.rpc.Code number

test("a webhook resolves customer, conversation and message in one call; the same webhook again is a no-op", async () => {
  const statemgr = await newTenant();
  const webhook = {
    whatsappId: waId(),
    customerName: "Ada",
    whatsappMessageId: uniqueId("wamid"),
    content: "Hello, my order has not arrived",
    sendTime: timestampFromDate(new Date("2026-01-05T10:00:00Z")),
  };

  const first = await statemgr.integration.resolveInbound(webhook);
  assert.equal(first.customerCreated, true);
  assert.equal(first.conversationCreated, true);
  assert.equal(first.messageCreated, true);
  assert.equal(first.conversation?.state, ConversationState.ACTIVE);
  assert.equal(first.message?.direction, MessageDirection.INBOUND);
  assert.equal(first.context?.customer?.phoneNumber, `+${webhook.whatsappId}`);

  // WhatsApp delivers at least once: the repeat answers with the first record and creates nothing.
  const again = await statemgr.integration.resolveInbound(webhook);
  assert.equal(again.messageCreated, false);
  assert.equal(again.conversationCreated, false);
  assert.equal(again.customerCreated, false);
  assert.equal(again.message?.id, first.message?.id);
  assert.equal(again.conversation?.id, first.conversation?.id);

  // The next message of the customer lands in the same open conversation.
  const next = await statemgr.integration.resolveInbound({ ...webhook, whatsappMessageId: uniqueId("wamid") });
  assert.equal(next.messageCreated, true);
  assert.equal(next.conversation?.id, first.conversation?.id);
});

test("a status batch applies each item on its own: changed, parked for a message not seen yet, refused", async () => {
  const statemgr = await newTenant();
  const inbound = await statemgr.integration.resolveInbound({
    whatsappId: waId(),
    whatsappMessageId: uniqueId("wamid"),
    content: "hi",
  });
  // A reply the business sent earlier, already known by its wamid.
  const sentWamid = uniqueId("wamid");
  await statemgr.messages.recordMessage({
    message: {
      conversationId: inbound.conversation!.id,
      whatsappMessageId: sentWamid,
      direction: MessageDirection.OUTBOUND,
      status: MessageStatus.SENT,
      content: "We are on it",
    },
  });
  const unknownWamid = uniqueId("wamid");

  const { results } = await statemgr.messages.batchUpdateMessageStatus({
    requests: [
      { key: { case: "whatsappMessageId", value: sentWamid }, status: MessageStatus.DELIVERED },
      { key: { case: "whatsappMessageId", value: unknownWamid }, status: MessageStatus.READ },
      { key: { case: "whatsappMessageId", value: sentWamid }, status: MessageStatus.UNSPECIFIED },
    ],
  });

  assert.equal(results.length, 3);
  assert.deepEqual(
    results.map((r) => [r.code, r.changed, r.parked]),
    [
      [OK, true, false],
      [OK, false, true],
      [Code.InvalidArgument, false, false],
    ],
  );
  assert.match(results[2]!.field, /status/);
  const delivered = await statemgr.messages.lookupMessage({ key: { case: "whatsappMessageId", value: sentWamid } });
  assert.equal(delivered.message?.status, MessageStatus.DELIVERED);

  // The parked status is applied when its message is recorded.
  const recorded = await statemgr.messages.recordMessage({
    message: {
      conversationId: inbound.conversation!.id,
      whatsappMessageId: unknownWamid,
      direction: MessageDirection.OUTBOUND,
      status: MessageStatus.SENT,
      content: "late",
    },
  });
  assert.equal(recorded.message?.status, MessageStatus.READ);
});
