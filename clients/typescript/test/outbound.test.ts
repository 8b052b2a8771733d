// The outbound transformer: an agent's reply comes from Genesys, goes to WhatsApp, and WhatsApp's statuses come back
// in whatever order its webhooks happen to arrive.
import assert from "node:assert/strict";
import { test } from "node:test";

import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";

import { MessageDirection, MessageStatus, type StatemgrClient } from "../src/index.js";
import { newTenant, uniqueId, waId } from "./support.js";

/** A customer wrote in and Genesys opened its conversation for it: the mapping the outbound side resolves. */
async function conversationWithGenesys(statemgr: StatemgrClient, whatsappId: string, genesysId: string) {
  const inbound = await statemgr.integration.resolveInbound({
    whatsappId,
    whatsappMessageId: uniqueId("wamid"),
    content: "Is anyone there?",
  });
  const { conversation } = await statemgr.conversations.updateConversation({
    conversation: { id: inbound.conversation!.id, genesysConversationId: genesysId },
    updateMask: { paths: ["genesys_conversation_id"] },
  });
  return conversation!;
}

test("ResolveOutbound finds the customer for a Genesys conversation and records the reply once", async () => {
  const statemgr = await newTenant();
  const whatsappId = waId();
  const genesysId = uniqueId("genesys-conv");
  const conversation = await conversationWithGenesys(statemgr, whatsappId, genesysId);

  const reply = { genesysConversationId: genesysId, genesysMessageId: uniqueId("genesys-msg"), content: "Yes, hello" };
  const resolved = await statemgr.integration.resolveOutbound(reply);
  assert.equal(resolved.whatsappId, whatsappId);
  assert.equal(resolved.phoneNumber, `+${whatsappId}`);
  assert.equal(resolved.replyWindowOpen, true);
  assert.equal(resolved.conversation?.id, conversation.id);
  assert.equal(resolved.message?.direction, MessageDirection.OUTBOUND);
  assert.equal(resolved.messageCreated, true);

  // Genesys retries its webhook: the same message, not a second one.
  const again = await statemgr.integration.resolveOutbound(reply);
  assert.equal(again.messageCreated, false);
  assert.equal(again.message?.id, resolved.message?.id);
});

test("the wamid WhatsApp assigns is stored with UpdateMessage; statuses out of order never move the status back", async () => {
  const statemgr = await newTenant();
  const genesysId = uniqueId("genesys-conv");
  await conversationWithGenesys(statemgr, waId(), genesysId);
  const { message } = await statemgr.integration.resolveOutbound({
    genesysConversationId: genesysId,
    genesysMessageId: uniqueId("genesys-msg"),
    content: "Your parcel is on its way",
  });

  // WhatsApp's send API answered with the wamid: store it so status webhooks (keyed by wamid) find the message.
  const wamid = uniqueId("wamid");
  await statemgr.messages.updateMessage({
    message: { id: message!.id, whatsappMessageId: wamid },
    updateMask: { paths: ["whatsapp_message_id"] },
  });
  const byWamid = await statemgr.messages.lookupMessage({ key: { case: "whatsappMessageId", value: wamid } });
  assert.equal(byWamid.message?.id, message!.id);

  // read arrives before delivered, and sent comes last of all.
  const key = { case: "whatsappMessageId" as const, value: wamid };
  const sentAt = new Date("2026-01-05T10:00:00Z");
  const deliveredAt = new Date("2026-01-05T10:00:02Z");
  const readAt = new Date("2026-01-05T10:00:07Z");
  const read = await statemgr.messages.updateMessageStatus({
    key,
    status: MessageStatus.READ,
    statusTime: timestampFromDate(readAt),
  });
  assert.equal(read.changed, true);
  assert.equal(read.message?.status, MessageStatus.READ);

  const delivered = await statemgr.messages.updateMessageStatus({
    key,
    status: MessageStatus.DELIVERED,
    statusTime: timestampFromDate(deliveredAt),
  });
  assert.equal(delivered.message?.status, MessageStatus.READ, "a late delivered does not move read back");
  assert.equal(timestampDate(delivered.message!.deliverTime!).toISOString(), deliveredAt.toISOString());

  const sent = await statemgr.messages.updateMessageStatus({
    key,
    status: MessageStatus.SENT,
    statusTime: timestampFromDate(sentAt),
  });
  assert.equal(sent.message?.status, MessageStatus.READ);
  assert.equal(timestampDate(sent.message!.readTime!).toISOString(), readAt.toISOString());
});
