// What every example needs: the server the test harness started (STATEMGR_TEST_BASE_URL) and a fresh tenant on it,
// created with the admin key (STATEMGR_TEST_ADMIN_KEY) through TenantService, as an operator would.
import { randomUUID } from "node:crypto";

import { createStatemgrClient, type StatemgrClient } from "../src/index.js";

export function baseUrl(): string {
  const url = process.env["STATEMGR_TEST_BASE_URL"];
  if (!url) throw new Error("STATEMGR_TEST_BASE_URL is not set: run these through `make test` (pytest starts the server)");
  return url;
}

/** A client acting for a new tenant (region GB) with its own API key. */
export async function newTenant(name = "Examples"): Promise<StatemgrClient> {
  const admin = createStatemgrClient({ baseUrl: baseUrl(), apiKey: process.env["STATEMGR_TEST_ADMIN_KEY"] ?? "" });
  const { tenant } = await admin.tenants.createTenant({ tenant: { displayName: name, defaultRegion: "GB" } });
  const key = await admin.tenants.createApiKey({ tenantId: tenant!.id });
  return createStatemgrClient({ baseUrl: baseUrl(), apiKey: key.secret });
}

/** A provider id nobody else uses (WhatsApp ids, wamids, Genesys ids). */
export function uniqueId(prefix: string): string {
  return `${prefix}.${randomUUID()}`;
}

/** A UK mobile number in WhatsApp's wa_id form (digits, no plus), different per call. */
export function waId(): string {
  return `4474000${String(Math.floor(Math.random() * 90_000) + 10_000)}`;
}
