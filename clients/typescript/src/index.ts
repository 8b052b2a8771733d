// The statemgr client: generated messages and service descriptors (src/gen, never edited by hand) plus the few
// helpers every caller needs: a gRPC transport that sends the tenant's API key, and readers for the google.rpc
// details statemgr puts on its errors.
import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, type GrpcTransportOptions } from "@connectrpc/connect-node";

import { BadRequestSchema, ErrorInfoSchema, type ErrorInfo } from "./gen/google/rpc/error_details_pb.js";
import { ConversationService } from "./gen/statemgr/v1/conversation_service_pb.js";
import { CustomerService } from "./gen/statemgr/v1/customer_service_pb.js";
import { EventService } from "./gen/statemgr/v1/event_service_pb.js";
import { IntegrationService } from "./gen/statemgr/v1/integration_service_pb.js";
import { MessageService } from "./gen/statemgr/v1/message_service_pb.js";
import { TenantService } from "./gen/statemgr/v1/tenant_service_pb.js";

export * from "./gen/google/rpc/error_details_pb.js";
export * from "./gen/statemgr/v1/analytics_service_pb.js";
export * from "./gen/statemgr/v1/conversation_pb.js";
export * from "./gen/statemgr/v1/conversation_service_pb.js";
export * from "./gen/statemgr/v1/customer_pb.js";
export * from "./gen/statemgr/v1/customer_service_pb.js";
export * from "./gen/statemgr/v1/event_pb.js";
export * from "./gen/statemgr/v1/event_service_pb.js";
export * from "./gen/statemgr/v1/integration_service_pb.js";
export * from "./gen/statemgr/v1/message_pb.js";
export * from "./gen/statemgr/v1/message_service_pb.js";
export * from "./gen/statemgr/v1/tenant_pb.js";
export * from "./gen/statemgr/v1/tenant_service_pb.js";
export { Code, ConnectError } from "@connectrpc/connect";

/** Where statemgr listens and which key to send. */
export interface StatemgrOptions {
  /** For example "http://statemgr:50051" (plaintext HTTP/2) or "https://..." behind TLS. */
  baseUrl: string;
  /** The tenant's API key (or the admin key for TenantService); sent as `authorization: Bearer <key>`. */
  apiKey: string;
  /** Anything else for Connect's gRPC transport (TLS options, default timeout, more interceptors). */
  transport?: Partial<GrpcTransportOptions>;
}

/** A client for every service statemgr serves, sharing one HTTP/2 connection. */
export interface StatemgrClient {
  transport: Transport;
  tenants: Client<typeof TenantService>;
  conversations: Client<typeof ConversationService>;
  customers: Client<typeof CustomerService>;
  messages: Client<typeof MessageService>;
  integration: Client<typeof IntegrationService>;
  events: Client<typeof EventService>;
}

/** An interceptor that adds the API key to every call. */
export function bearer(apiKey: string): Interceptor {
  return (next) => (request) => {
    request.header.set("authorization", `Bearer ${apiKey}`);
    return next(request);
  };
}

/** Connect's Node transport speaking the gRPC protocol, which is what statemgr (grpc.aio) serves. */
export function createStatemgrTransport(options: StatemgrOptions): Transport {
  const extra = options.transport ?? {};
  return createGrpcTransport({
    ...extra,
    baseUrl: options.baseUrl,
    interceptors: [bearer(options.apiKey), ...(extra.interceptors ?? [])],
  });
}

export function createStatemgrClient(options: StatemgrOptions): StatemgrClient {
  const transport = createStatemgrTransport(options);
  return {
    transport,
    tenants: createClient(TenantService, transport),
    conversations: createClient(ConversationService, transport),
    customers: createClient(CustomerService, transport),
    messages: createClient(MessageService, transport),
    integration: createClient(IntegrationService, transport),
    events: createClient(EventService, transport),
  };
}

/** The fields an INVALID_ARGUMENT names (google.rpc.BadRequest field violations), in order. */
export function violatedFields(error: unknown): string[] {
  return ConnectError.from(error)
    .findDetails(BadRequestSchema)
    .flatMap((detail) => detail.fieldViolations.map((violation) => violation.field));
}

/** The google.rpc.ErrorInfo of any other error: its reason (UPPER_SNAKE) and metadata. */
export function errorInfo(error: unknown): ErrorInfo | undefined {
  return ConnectError.from(error).findDetails(ErrorInfoSchema)[0];
}

/** The id of the resource that already exists, from an ALREADY_EXISTS answer (empty when it has none). */
export function existingId(error: unknown): string {
  return errorInfo(error)?.metadata["existing_id"] ?? "";
}

/**
 * Whether the same call may be sent again as it is. UNAVAILABLE (a dependency down, the server stopping) and
 * RESOURCE_EXHAUSTED (a subscriber too far behind: resume from the cursor) are transient; ABORTED (a concurrent
 * change won) needs a fresh read first when the call carried an etag. Every other code needs a different request.
 */
export function isRetryable(error: unknown): boolean {
  const code = ConnectError.from(error).code;
  return code === Code.Unavailable || code === Code.ResourceExhausted || code === Code.Aborted;
}
