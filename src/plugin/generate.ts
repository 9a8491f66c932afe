import type { DescService } from "@bufbuild/protobuf";
import type { GeneratedFile, Schema, Target } from "@bufbuild/protoplugin";
import { getComments } from "@bufbuild/protoplugin";
import { methodFacts, serviceNames } from "./method-facts.js";
import { RUNTIME_MODULE } from "./runtime-module.js";

/**
 * Writes one `<name>_otel.<ext>` per proto file that declares services, beside protoc-gen-es's
 * `<name>_pb.<ext>`; files without services get nothing. `target` selects TypeScript, JavaScript
 * or declarations; protoplugin applies `import_extension` and `js_import_style` to the imports.
 */
export function generate(schema: Schema, target: Target): void {
  for (const file of schema.files) {
    if (file.services.length === 0) continue;
    const f = schema.generateFile(`${file.name}_otel.${extension(target)}`);
    f.preamble(file);
    for (const service of file.services) {
      if (target === "dts") printDeclarations(f, service);
      else printService(f, service, target === "ts");
    }
  }
}

function extension(target: Target): string {
  return target === "dts" ? "d.ts" : target;
}

/** The method table and the two factories of one service, with types when `typed`. */
function printService(f: GeneratedFile, service: DescService, typed: boolean): void {
  const names = serviceNames(service);
  const desc = f.importSchema(service);
  const createTracedClient = f.import("createTracedClient", RUNTIME_MODULE);
  const traceService = f.import("traceService", RUNTIME_MODULE);
  const t = typed ? typeImports(f) : undefined;

  f.print(f.jsDoc(`What the schema says of each method of ${service.typeName}, for the connect-otel runtime.`));
  if (t) f.print("const ", names.table, ": ", t.ServiceTable, "<typeof ", desc, "> = {");
  else f.print("const ", names.table, " = {");
  for (const method of service.methods) {
    const facts = methodFacts(method);
    f.print(
      "  ",
      propertyKey(method.localName),
      ": { name: ",
      f.string(facts.name),
      ", kind: ",
      f.string(facts.kind),
      ", idempotency: ",
      f.string(facts.idempotency),
      " },",
    );
  }
  f.print("};");
  f.print();
  f.print(f.jsDoc(clientDoc(service)));
  if (t) {
    f.print(
      f.export("function", names.client),
      "(transport: ",
      t.Transport,
      ", options?: ",
      t.TracedClientOptions,
      "): ",
      t.Client,
      "<typeof ",
      desc,
      "> {",
    );
  } else {
    f.print(f.export("function", names.client), "(transport, options) {");
  }
  f.print("  return ", createTracedClient, "(", desc, ", ", names.table, ", transport, options);");
  f.print("}");
  f.print();
  f.print(f.jsDoc(serverDoc(service)));
  if (t) {
    f.print(
      f.export("function", names.server),
      "(impl: Partial<",
      t.ServiceImpl,
      "<typeof ",
      desc,
      ">>, options?: ",
      t.TracedServiceOptions,
      "): ",
      t.ServiceImpl,
      "<typeof ",
      desc,
      "> {",
    );
  } else {
    f.print(f.export("function", names.server), "(impl, options) {");
  }
  f.print("  return ", traceService, "(", desc, ", ", names.table, ", impl, options);");
  f.print("}");
  f.print();
}

/** The `.d.ts` of one service: both factories, declared with explicit types. */
function printDeclarations(f: GeneratedFile, service: DescService): void {
  const names = serviceNames(service);
  const desc = f.importSchema(service, true);
  const t = typeImports(f);
  f.print(f.jsDoc(clientDoc(service)));
  f.print(
    f.export("declare function", names.client),
    "(transport: ",
    t.Transport,
    ", options?: ",
    t.TracedClientOptions,
    "): ",
    t.Client,
    "<typeof ",
    desc,
    ">;",
  );
  f.print();
  f.print(f.jsDoc(serverDoc(service)));
  f.print(
    f.export("declare function", names.server),
    "(impl: Partial<",
    t.ServiceImpl,
    "<typeof ",
    desc,
    ">>, options?: ",
    t.TracedServiceOptions,
    "): ",
    t.ServiceImpl,
    "<typeof ",
    desc,
    ">;",
  );
  f.print();
}

function typeImports(f: GeneratedFile) {
  return {
    Client: f.import("Client", "@connectrpc/connect", true),
    ServiceImpl: f.import("ServiceImpl", "@connectrpc/connect", true),
    Transport: f.import("Transport", "@connectrpc/connect", true),
    ServiceTable: f.import("ServiceTable", RUNTIME_MODULE, true),
    TracedClientOptions: f.import("TracedClientOptions", RUNTIME_MODULE, true),
    TracedServiceOptions: f.import("TracedServiceOptions", RUNTIME_MODULE, true),
  };
}

/** An object literal key: bare when it is an identifier, quoted otherwise. */
function propertyKey(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(name);
}

function clientDoc(service: DescService): string {
  return [
    ...protoComments(service),
    `Creates a traced client of ${service.typeName}: every call runs in a CLIENT span named`,
    "`package.Service/Method`, carries the span's context in its request headers (W3C trace context",
    "by default), records an `rpc.message` event per message and ends with the call's status code.",
    "Give `options.baseUrl` and `options.protocol` the transport's values to record",
    "`server.address`, `server.port` and `rpc.system.name` at span start.",
    "",
    ...serviceTags(service),
  ].join("\n");
}

function serverDoc(service: DescService): string {
  return [
    ...protoComments(service),
    `Wraps an implementation of ${service.typeName} for \`router.service(${service.name}, ...)\`: every`,
    "method, also those the implementation leaves out (UNIMPLEMENTED), runs in a SERVER span that",
    "continues the caller's trace from the request headers; handler code, streaming handlers",
    "included, runs with the span active; per-message events and the status code are recorded.",
    "",
    ...serviceTags(service),
  ].join("\n");
}

/** The service's leading and trailing proto comments, as lines, followed by a blank line. */
function protoComments(service: DescService): string[] {
  const comments = getComments(service);
  const text = [comments.leading, comments.trailing]
    .filter((c): c is string => c !== undefined && c.trim() !== "")
    .map((c) =>
      c
        .replace(/\n$/, "")
        .split("\n")
        .map((line) => (line.startsWith(" ") ? line.slice(1) : line))
        .join("\n"),
    )
    .join("\n\n");
  return text === "" ? [] : [...text.split("\n"), ""];
}

function serviceTags(service: DescService): string[] {
  const tags = [`@generated from service ${service.typeName}`];
  if (service.deprecated || service.file.deprecated) tags.push("@deprecated");
  return tags;
}
