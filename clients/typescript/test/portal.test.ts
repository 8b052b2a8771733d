// The agent portal: follow a conversation live, lose the connection, resume from the last cursor without missing or
// repeating anything, and act on the details statemgr puts on its errors.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import {
  Code,
  ConnectError,
  ConversationState,
  EventType,
  errorInfo,
  existingId,
  isRetryable,
  violatedFields,
  type Event,
  type StatemgrClient,
  type SubscribeResponse,
} from "../src/index.js";
import { newTenant, uniqueId, waId } from "./support.js";

type Stream = AsyncIterator<SubscribeResponse>;

function subscribe(statemgr: StatemgrClient, conversationId: string, start: { after?: string }, signal: AbortSignal) {
  const startAt = start.after
    ? { case: "afterCursor" as const, value: start.after }
    : { case: "fromNow" as const, value: true };
  const responses = statemgr.events.subscribe(
    { conversationIds: [conversationId], start: startAt },
    // A generous bound: a loaded machine is slow, and a stuck stream must still end.
    { signal: AbortSignal.any([signal, AbortSignal.timeout(90_000)]) },
  );
  return responses[Symbol.asyncIterator]();
}

/** The next item that is an event (heartbeats only mark time). */
async function nextEvent(stream: Stream): Promise<Event> {
  for (;;) {
    const { value, done } = await stream.next();
    assert.ok(!done, "the stream ended");
    if (value.item.case === "event") return value.item.value;
  }
}

/** Waits for the first heartbeat: from then on every committed event reaches this stream. */
async function live(stream: Stream): Promise<void> {
  const { value } = await stream.next();
  assert.equal(value?.item.case, "heartbeat");
}

async function openConversation(statemgr: StatemgrClient) {
  const inbound = await statemgr.integration.resolveInbound({
    whatsappId: waId(),
    whatsappMessageId: uniqueId("wamid"),
    content: "I need help",
  });
  return inbound.conversation!;
}

test("a portal follows a conversation, is disconnected, and resumes from its cursor with no gap", async () => {
  const statemgr = await newTenant();
  const conversation = await openConversation(statemgr);
  const elsewhere = await openConversation(statemgr);
  const [agent1, agent2] = [randomUUID(), randomUUID()];

  const first = new AbortController();
  let transferred: Event;
  try {
    const stream = subscribe(statemgr, conversation.id, {}, first.signal);
    await live(stream);
    await statemgr.conversations.transferConversation({ conversationId: conversation.id, agentId: agent1, reason: "queue" });
    transferred = await nextEvent(stream);
    assert.equal(transferred.type, EventType.CONVERSATION_TRANSFERRED);
    assert.equal(transferred.agentId, agent1);
  } finally {
    first.abort(); // the portal's connection drops here
  }

  // While it is away: two changes to its conversation, one to another conversation it does not follow.
  await statemgr.conversations.transitionConversation({
    conversationId: conversation.id,
    state: ConversationState.WAITING,
    reason: "waiting for the customer",
  });
  await statemgr.conversations.transitionConversation({
    conversationId: elsewhere.id,
    state: ConversationState.WAITING,
    reason: "not followed",
  });
  await statemgr.conversations.transferConversation({ conversationId: conversation.id, agentId: agent2, reason: "shift" });

  const second = new AbortController();
  try {
    const resumed = subscribe(statemgr, conversation.id, { after: transferred.cursor }, second.signal);
    const waiting = await nextEvent(resumed);
    assert.equal(waiting.type, EventType.CONVERSATION_STATE_CHANGED, "the first change after the cursor, not before");
    assert.equal(waiting.conversationId, conversation.id);
    assert.equal(waiting.conversationState, ConversationState.WAITING);
    const handedOver = await nextEvent(resumed);
    assert.equal(handedOver.type, EventType.CONVERSATION_TRANSFERRED);
    assert.equal(handedOver.agentId, agent2);

    // Caught up, and live again: a change made now is the very next event.
    await statemgr.conversations.closeConversation({ conversationId: conversation.id, reason: "resolved" });
    const closed = await nextEvent(resumed);
    assert.equal(closed.conversationId, conversation.id);
    assert.equal(closed.conversationState, ConversationState.CLOSED);
  } finally {
    second.abort();
  }
});

test("resending a transition the conversation has made already answers OK and announces nothing", async () => {
  const statemgr = await newTenant();
  const conversation = await openConversation(statemgr);
  const first = new AbortController();
  try {
    const stream = subscribe(statemgr, conversation.id, {}, first.signal);
    await live(stream);
    const joined = { conversationId: conversation.id, state: ConversationState.WAITING, reason: "agent joined" };
    const moved = await statemgr.conversations.transitionConversation(joined);
    const resent = await statemgr.conversations.transitionConversation(joined); // the transformer's retry
    assert.equal(resent.conversation?.etag, moved.conversation?.etag, "unchanged: same etag");
    await statemgr.conversations.closeConversation({ conversationId: conversation.id, reason: "done" });

    // The stream shows one state change, then the closure: the resend made no event.
    assert.equal((await nextEvent(stream)).conversationState, ConversationState.WAITING);
    assert.equal((await nextEvent(stream)).conversationState, ConversationState.CLOSED);
  } finally {
    first.abort();
  }
});

test("errors carry what a client acts on: the existing id of ALREADY_EXISTS, the field of INVALID_ARGUMENT", async () => {
  const statemgr = await newTenant();
  const conversation = await openConversation(statemgr);

  // A second open conversation for the same WhatsApp thread is refused, and the answer names the open one.
  const duplicate = await statemgr.conversations
    .createConversation({
      conversation: { customerId: conversation.customerId, whatsappConversationId: conversation.whatsappConversationId },
    })
    .then(() => assert.fail("CreateConversation should have been refused"), (error: unknown) => error);
  assert.equal(ConnectError.from(duplicate).code, Code.AlreadyExists);
  assert.equal(existingId(duplicate), conversation.id);
  assert.equal(errorInfo(duplicate)?.reason, "ALREADY_EXISTS");
  assert.equal(isRetryable(duplicate), false);

  // Bad input names the field (google.rpc.BadRequest in grpc-status-details-bin).
  const invalid = await statemgr.conversations
    .transitionConversation({ conversationId: conversation.id, state: ConversationState.UNSPECIFIED })
    .then(() => assert.fail("an UNSPECIFIED state should have been refused"), (error: unknown) => error);
  assert.equal(ConnectError.from(invalid).code, Code.InvalidArgument);
  assert.deepEqual(violatedFields(invalid), ["state"]);

  const paging = await statemgr.conversations
    .listConversations({ pageSize: -1 })
    .then(() => assert.fail("a negative page_size should have been refused"), (error: unknown) => error);
  assert.deepEqual(violatedFields(paging), ["page_size"]);

  // Unknown ids (and other tenants' ids) are NOT_FOUND, with the kind of resource in ErrorInfo.
  const missing = await statemgr.conversations
    .getConversation({ conversationId: "00000000-0000-4000-8000-000000000000" })
    .then(() => assert.fail("an unknown id should be NOT_FOUND"), (error: unknown) => error);
  assert.equal(ConnectError.from(missing).code, Code.NotFound);
  assert.equal(errorInfo(missing)?.metadata["resource"], "conversation");
});
