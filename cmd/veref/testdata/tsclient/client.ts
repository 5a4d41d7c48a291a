// A TypeScript client generated from Veref's OpenAPI document by tools
// nobody here wrote: openapi-typescript writes gen/schema.d.ts from the
// served document, openapi-fetch makes the calls, and tsc checks this file
// against the generated types before it runs. TestGeneratedTSClient in
// cmd/veref generates, compiles and runs it against a `veref serve --dev`,
// with its URL, printed key and tenant.
import createClient from "openapi-fetch";
import type { paths } from "./gen/schema.js";

const baseUrl = process.env.VEREF_CLIENTGEN_URL;
const key = process.env.VEREF_CLIENTGEN_KEY;
const tenant = process.env.VEREF_CLIENTGEN_TENANT;
if (!baseUrl || !key || !tenant) {
  throw new Error("run through TestGeneratedTSClient in cmd/veref, which starts a server and generates gen/schema.d.ts");
}

function check(ok: boolean, what: string, got: unknown): void {
  if (!ok) {
    throw new Error(`${what}: ${JSON.stringify(got)}`);
  }
}

const veref = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${key}` } });

const me = await veref.GET("/v1/api/me");
check(me.response.status === 200 && me.data?.tenantId === tenant && me.data.environment === "test", "whoami", me.data ?? me.error);
check(me.response.headers.get("RateLimit-Policy") === `"default";q=600;w=60`, "whoami RateLimit-Policy", me.response.headers.get("RateLimit-Policy"));

const started = await veref.POST("/v1/api/references", {
  params: { header: { "Idempotency-Key": "tsclient-1" } },
  body: {
    candidate: { name: "Dana Scully", email: "dana@example.com" },
    referees: [{ name: "Walter Skinner", email: "walter@example.com", relationship: "manager" }],
    sendInvitations: true,
  },
});
const ref = started.data;
check(started.response.status === 201 && ref?.status === "sent" && ref.referees.length === 1, "references_start", ref ?? started.error);
check(ref?.testInvitationLinks?.length === 1, "a test key gets the invitation links", ref);

const got = await veref.GET("/v1/api/references/{id}", { params: { path: { id: ref!.id } } });
check(got.data?.id === ref!.id && got.data.referees[0]?.state === "sent", "references_get", got.data ?? got.error);

// Problems decode into the documented type with their stable code.
const missing = await veref.GET("/v1/api/candidates/{id}", { params: { path: { id: "cand_missing" } } });
check(missing.response.status === 404 && missing.error?.code === "NOT_FOUND", "candidates_get of a missing id", missing.error);

console.log("generated TypeScript client: all calls answered as documented");
