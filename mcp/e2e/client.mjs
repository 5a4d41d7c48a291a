// End-to-end check of Veref's MCP endpoint with the official MCP TypeScript
// SDK, run by TestOfficialTypeScriptClient (mcp/e2e_test.go). It prints one
// JSON document on stdout for the Go test to assert on; the key is read from
// the environment and never printed.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = process.env.VEREF_MCP_URL;
const key = process.env.VEREF_API_KEY;
const hidden = process.env.VEREF_HIDDEN_TOOL;
const echo = process.env.VEREF_ECHO_TOOL;
if (!url || !key) {
  console.error("VEREF_MCP_URL and VEREF_API_KEY are required");
  process.exit(2);
}

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${key}` } },
});
const client = new Client({ name: "veref-e2e", version: "1.0.0" });
await client.connect(transport);

const out = {
  protocolVersion: transport.protocolVersion ?? null,
  sessionId: transport.sessionId ?? null,
  server: client.getServerVersion(),
  instructions: client.getInstructions() ?? null,
};

const listed = await client.listTools();
out.tools = listed.tools.map((t) => ({
  name: t.name,
  title: t.title ?? null,
  annotations: t.annotations ?? null,
  inputType: t.inputSchema?.type ?? null,
  outputType: t.outputSchema?.type ?? null,
}));

// callTool validates structuredContent against the tool's outputSchema, so
// a schema that does not match the output fails here.
const whoami = await client.callTool({ name: "whoami", arguments: {} });
out.whoami = {
  isError: whoami.isError ?? false,
  structuredContent: whoami.structuredContent ?? null,
  text: whoami.content?.[0]?.type === "text" ? whoami.content[0].text : null,
};

// A tool whose output is not an object (wrapped as {"result": …}) and a
// refused input, which must come back as a tool result, not a thrown error.
if (echo) {
  const ok = await client.callTool({ name: echo, arguments: { text: "hi" } });
  const bad = await client.callTool({ name: echo, arguments: {} });
  out.echo = {
    structuredContent: ok.structuredContent ?? null,
    badIsError: bad.isError ?? false,
    badText: bad.content?.[0]?.type === "text" ? bad.content[0].text : null,
  };
}

// Read tools that need no input, each validated against its outputSchema.
out.reads = {};
for (const name of (process.env.VEREF_READ_TOOLS ?? "").split(",").filter(Boolean)) {
  const r = await client.callTool({ name, arguments: {} });
  out.reads[name] = {
    isError: r.isError ?? false,
    structured: r.structuredContent !== undefined,
    text: r.isError && r.content?.[0]?.type === "text" ? r.content[0].text : null,
  };
}

if (hidden) {
  try {
    await client.callTool({ name: hidden, arguments: {} });
    out.hidden = { called: true };
  } catch (err) {
    out.hidden = { called: false, code: err.code ?? null, message: String(err.message ?? err) };
  }
}

await client.close();
process.stdout.write(JSON.stringify(out) + "\n");
